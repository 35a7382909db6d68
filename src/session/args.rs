//! A command's resolved words checked against its spec: flags, switches and positionals.

use std::collections::HashMap;

use super::output::CommandError;
use super::spec::{did_you_mean, CommandSpec};

/// Parsed arguments of one command.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Args {
    /// Positional arguments in order.
    pub positionals: Vec<String>,
    values: HashMap<&'static str, Vec<String>>,
}

impl Args {
    /// Check words against a spec: unknown flags, missing values, repeats and counts.
    pub fn parse(spec: &CommandSpec, words: &[String]) -> Result<Args, CommandError> {
        let mut args = Args::default();
        let usage = || format!("usage: {}", spec.usage);
        let mut iter = words.iter();
        while let Some(word) = iter.next() {
            let Some(body) = word.strip_prefix("--").filter(|b| !b.is_empty()) else {
                args.positionals.push(word.clone());
                continue;
            };
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            let Some(flag) = spec.flags.iter().find(|f| f.name == name) else {
                let mut err =
                    CommandError::new("UnknownFlag", format!("{} has no flag --{name}", spec.name));
                err = match did_you_mean(name, spec.flags.iter().map(|f| f.name)) {
                    Some(near) => err.hint(format!("did you mean --{near}? {}", usage())),
                    None => err.hint(usage()),
                };
                return Err(err);
            };
            let value = match (flag.value, inline) {
                (None, None) => String::new(),
                (None, Some(_)) => {
                    return Err(CommandError::new(
                        "BadFlag",
                        format!("--{name} is a switch and takes no value"),
                    )
                    .hint(usage()))
                }
                (Some(_), Some(v)) => v,
                // An optional value is the next word unless that is another flag (or none).
                (Some(_), None) if flag.optional => match iter.as_slice().first() {
                    Some(next) if !next.starts_with("--") => {
                        iter.next().cloned().unwrap_or_default()
                    }
                    _ => String::new(),
                },
                (Some(placeholder), None) => iter.next().cloned().ok_or_else(|| {
                    CommandError::new(
                        "MissingValue",
                        format!("--{name} needs a value ({placeholder})"),
                    )
                    .hint(usage())
                })?,
            };
            let slot = args.values.entry(flag.name).or_default();
            if !slot.is_empty() && !flag.repeats {
                return Err(
                    CommandError::new("BadFlag", format!("--{name} was given twice")).hint(usage()),
                );
            }
            slot.push(value);
        }
        let (min, max) = spec.positionals;
        let n = args.positionals.len();
        if n < min {
            return Err(CommandError::new(
                "MissingArgument",
                format!(
                    "{} needs {min} argument{}",
                    spec.name,
                    if min == 1 { "" } else { "s" }
                ),
            )
            .hint(usage()));
        }
        if n > max {
            let extra = &args.positionals[max];
            return Err(CommandError::new(
                "UnexpectedArgument",
                format!("{} does not take the argument {extra:?}", spec.name),
            )
            .hint(format!("{}; quote values that contain spaces", usage())));
        }
        Ok(args)
    }

    /// The value of a flag given once (an optional-value flag given alone has "").
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .and_then(|v| v.first())
            .map(String::as_str)
    }

    /// Every value of a repeatable flag.
    pub fn values(&self, name: &str) -> &[String] {
        self.values.get(name).map(Vec::as_slice).unwrap_or_default()
    }

    /// Whether a switch was given.
    pub fn has(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// Positional argument `i`.
    pub fn positional(&self, i: usize) -> Option<&str> {
        self.positionals.get(i).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::super::spec::spec;
    use super::*;

    fn parse(name: &str, words: &[&str]) -> Result<Args, CommandError> {
        let words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        Args::parse(spec(name).unwrap(), &words)
    }

    #[test]
    fn flags_switches_and_repeats() {
        let a = parse(
            "register",
            &[
                "--name",
                "A B",
                "--redirect-uri=http://x",
                "--redirect-uri",
                "http://y",
                "--public",
            ],
        )
        .unwrap();
        assert_eq!(a.value("name"), Some("A B"));
        assert_eq!(a.values("redirect-uri"), ["http://x", "http://y"]);
        assert!(a.has("public") && !a.has("scope"));
    }

    #[test]
    fn an_optional_value_is_the_next_word_unless_it_is_a_flag() {
        let a = parse("authorize", &["--launch", "--as", "dr-carter:x"]).unwrap();
        assert_eq!(a.value("launch"), Some(""));
        assert_eq!(a.value("as"), Some("dr-carter:x"));
        let a = parse("authorize", &["--as", "u:p", "--launch"]).unwrap();
        assert_eq!(a.value("launch"), Some(""));
        let a = parse("authorize", &["--launch", "abc", "--listen"]).unwrap();
        assert_eq!(a.value("launch"), Some("abc"));
        assert!(a.has("listen"));
        let a = parse("authorize", &["--launch=def"]).unwrap();
        assert_eq!(a.value("launch"), Some("def"));
        assert_eq!(
            parse("authorize", &["--launch", "a", "--launch"])
                .unwrap_err()
                .kind,
            "BadFlag"
        );
        // A word after it is its value, so a stray one is not taken for a positional.
        assert_eq!(
            parse("authorize", &["--launch", "a", "b"])
                .unwrap_err()
                .kind,
            "UnexpectedArgument"
        );
    }

    #[test]
    fn mistakes_say_what_to_fix() {
        let e = parse("register", &["--nmae", "x"]).unwrap_err();
        assert_eq!(e.kind, "UnknownFlag");
        assert!(e.hint.unwrap().contains("--name"));
        assert_eq!(
            parse("register", &["--name"]).unwrap_err().kind,
            "MissingValue"
        );
        assert_eq!(
            parse("register", &["--name", "a", "--name", "b"])
                .unwrap_err()
                .kind,
            "BadFlag"
        );
        assert_eq!(
            parse("register", &["--public=yes"]).unwrap_err().kind,
            "BadFlag"
        );
        assert_eq!(parse("fetch", &[]).unwrap_err().kind, "MissingArgument");
        assert_eq!(
            parse("fetch", &["a", "b"]).unwrap_err().kind,
            "UnexpectedArgument"
        );
    }
}
