//! Session variables: values bound by commands or `set`, and `$name.path` interpolation.

use std::collections::BTreeMap;

use serde_json::Value;

use super::output::{CommandError, Table};
use super::parse::{Piece, Word};

/// The session's variables, sorted by name.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Vars {
    values: BTreeMap<String, Value>,
    /// Bumped on every change, so a Rust bridge knows when to refresh its copies.
    generation: u64,
}

impl Vars {
    /// Bind a name to a value.
    pub fn set(&mut self, name: &str, value: Value) {
        self.values.insert(name.to_string(), value);
        self.generation += 1;
    }

    /// Bind a name to a string.
    pub fn set_str(&mut self, name: &str, value: &str) {
        self.set(name, Value::String(value.to_string()));
    }

    /// Forget a name; whether it was bound.
    pub fn unset(&mut self, name: &str) -> bool {
        let had = self.values.remove(name).is_some();
        self.generation += 1;
        had
    }

    /// A variable's value.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values.get(name)
    }

    /// A variable as text (strings as they are, anything else as JSON).
    pub fn text(&self, name: &str) -> Option<String> {
        self.get(name).map(as_text)
    }

    /// Every name and value.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.values.iter()
    }

    /// Changes so far.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Resolve a word's variable references to text.
    pub fn resolve(&self, word: &Word) -> Result<String, CommandError> {
        let mut out = String::new();
        for piece in &word.0 {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Var { name, path } => out.push_str(&as_text(self.lookup(name, path)?)),
            }
        }
        Ok(out)
    }

    /// A bound name one edit from `name` (two for names past six letters), so `$nope` is
    /// not taken for `$scope`.
    fn near(&self, name: &str) -> Option<&str> {
        let allowed = if name.len() > 6 { 2 } else { 1 };
        self.values
            .keys()
            .map(|bound| (strsim::damerau_levenshtein(name, bound), bound.as_str()))
            .filter(|(d, _)| *d <= allowed)
            .min_by_key(|(d, _)| *d)
            .map(|(_, bound)| bound)
    }

    fn lookup(&self, name: &str, path: &[String]) -> Result<&Value, CommandError> {
        let mut value = self.get(name).ok_or_else(|| {
            // Past the names commands bind, a bound name a typo away is the likeliest
            // meaning (`$acess_token`).
            let near = self.near(name);
            let hint = match (name, near) {
                ("client_id" | "client_secret", _) => {
                    "run `register` first (it binds client_id and client_secret)".to_string()
                }
                ("access_token" | "refresh_token", _) => "run `token` or `exchange` first".to_string(),
                ("code", _) => {
                    "run `authorize --as USER` or `authorize --listen` first, or `set code VALUE`"
                        .to_string()
                }
                ("id_token", _) => {
                    "authorize with openid and fhirUser in --scope, then `exchange` binds it"
                        .to_string()
                }
                ("nonce", _) => {
                    "`authorize` binds it when the scope has openid (or with --nonce N)".to_string()
                }
                ("launch" | "iss", _) => {
                    "run `launch` first (it mints an EHR launch), or `authorize --listen` under the EHR"
                        .to_string()
                }
                ("launch_uri" | "launch_url", _) => {
                    "register the app's launch URL with `register --launch-uri URL`".to_string()
                }
                ("encounter" | "fhir_context" | "intent", _) => {
                    "`exchange` binds it when the token answer carries that launch context (an EHR launch: `launch`, then `authorize --launch`)"
                        .to_string()
                }
                ("response" | "status", _) => "run a command that makes a request first".to_string(),
                (_, Some(near)) => format!("did you mean `${near}`? `vars` lists what is bound"),
                (_, _) => format!("set it with `set {name} VALUE`; `vars` lists what is bound"),
            };
            CommandError::new("UndefinedVariable", format!("${name} is not set")).hint(hint)
        })?;
        for (i, key) in path.iter().enumerate() {
            let next = match value {
                Value::Object(map) => map.get(key),
                Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => None,
            };
            value = next.ok_or_else(|| {
                let walked = if i == 0 {
                    format!("${name}")
                } else {
                    format!("${name}.{}", path[..i].join("."))
                };
                CommandError::new(
                    "UndefinedVariable",
                    format!("{walked} has no field {key:?}"),
                )
                .hint(format!("its keys are: {}", keys_of(value)))
            })?;
        }
        Ok(value)
    }

    /// The variables as a table (long JSON values summarised), with the Rust type each has
    /// in a Rust cell.
    pub fn table(&self) -> Table {
        let rows = self
            .values
            .iter()
            .map(|(name, value)| {
                vec![
                    name.clone(),
                    summary(value),
                    rust_type(name, value).to_string(),
                ]
            })
            .collect();
        Table {
            columns: vec!["name".into(), "value".into(), "Rust type".into()],
            rows,
            json: Some(Value::Object(self.values.clone().into_iter().collect())),
        }
    }
}

/// The type a helper variable has in a Rust cell: `response` is the last answer's JSON
/// body, `status` its HTTP status code, everything else text.
pub fn rust_type(name: &str, value: &Value) -> &'static str {
    match name {
        "response" => "serde_json::Value",
        "status" if value.as_u64().is_some_and(|n| n <= u64::from(u16::MAX)) => "u16",
        _ => "String",
    }
}

/// A value as text: strings raw, everything else as compact JSON.
pub fn as_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn keys_of(value: &Value) -> String {
    match value {
        Value::Object(map) if !map.is_empty() => map.keys().cloned().collect::<Vec<_>>().join(", "),
        Value::Array(items) => format!("indexes 0 to {}", items.len().saturating_sub(1)),
        _ => "none (it is not an object or array)".to_string(),
    }
}

fn summary(value: &Value) -> String {
    match value {
        Value::Object(map) => match map.get("resourceType").and_then(Value::as_str) {
            Some(kind) => format!("{kind} ({} fields)", map.len()),
            None => format!("{{…}} ({} fields)", map.len()),
        },
        Value::Array(items) => format!("[…] ({} items)", items.len()),
        other => as_text(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn var(name: &str, path: &[&str]) -> Word {
        Word(vec![Piece::Var {
            name: name.into(),
            path: path.iter().map(|s| s.to_string()).collect(),
        }])
    }

    #[test]
    fn paths_walk_objects_and_arrays() {
        let mut vars = Vars::default();
        vars.set(
            "response",
            json!({"entry": [{"resource": {"id": "x1", "n": 3}}]}),
        );
        assert_eq!(
            vars.resolve(&var("response", &["entry", "0", "resource", "id"]))
                .unwrap(),
            "x1"
        );
        assert_eq!(
            vars.resolve(&var("response", &["entry", "0", "resource", "n"]))
                .unwrap(),
            "3"
        );
        let err = vars.resolve(&var("response", &["entry", "1"])).unwrap_err();
        assert!(
            err.message.contains("$response.entry has no field \"1\""),
            "{}",
            err.message
        );
        let err = vars.resolve(&var("nope", &[])).unwrap_err();
        assert_eq!(err.kind, "UndefinedVariable");
        let err = vars.resolve(&var("encounter", &[])).unwrap_err();
        assert!(err.hint.unwrap().contains("authorize --launch"));
    }

    #[test]
    fn a_mistyped_name_suggests_the_bound_one() {
        let mut vars = Vars::default();
        vars.set_str("access_token", "abc");
        vars.set_str("state", "s1");
        let err = vars.resolve(&var("acess_token", &[])).unwrap_err();
        assert_eq!(err.message, "$acess_token is not set");
        assert_eq!(
            err.hint.as_deref(),
            Some("did you mean `$access_token`? `vars` lists what is bound")
        );
        // A name a command binds keeps its own advice, even a typo away from a bound one.
        let err = vars.resolve(&var("status", &[])).unwrap_err();
        assert!(err.hint.unwrap().contains("makes a request"));
        vars.set_str("scope", "openid");
        let err = vars.resolve(&var("nope", &[])).unwrap_err();
        assert!(err.hint.unwrap().contains("set nope VALUE"));
        let err = vars.resolve(&var("zzz", &[])).unwrap_err();
        assert!(err.hint.unwrap().contains("set zzz VALUE"));
    }

    #[test]
    fn the_table_names_each_variables_rust_type() {
        let mut vars = Vars::default();
        vars.set("response", json!({"resourceType": "Bundle"}));
        vars.set("status", json!(200));
        vars.set_str("access_token", "abc");
        let table = vars.table();
        assert_eq!(table.columns[2], "Rust type");
        let types: Vec<(&str, &str)> = table
            .rows
            .iter()
            .map(|row| (row[0].as_str(), row[2].as_str()))
            .collect();
        assert_eq!(
            types,
            [
                ("access_token", "String"),
                ("response", "serde_json::Value"),
                ("status", "u16")
            ]
        );
        assert_eq!(rust_type("status", &json!("weird")), "String");
    }

    #[test]
    fn changes_bump_the_generation() {
        let mut vars = Vars::default();
        let g = vars.generation();
        vars.set_str("a", "1");
        assert!(vars.generation() > g);
        assert_eq!(vars.text("a").unwrap(), "1");
        assert!(vars.unset("a") && !vars.unset("a"));
    }
}
