//! Completion and inspection for helper commands: command names, flags, `$variables`,
//! user names, patient ids, FHIR resource types and simulated faults.

use super::faults::{self, PLACES};
use super::keys::ALGS;
use super::parse::HELPERS;
use super::spec::{self, help_text};
use super::vars::Vars;
use crate::server::fhir::data::SERVED_TYPES;

/// Candidates to replace `code[start..end]`.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Completion {
    /// Byte offset where the replaced text starts.
    pub start: usize,
    /// Byte offset where it ends (the cursor).
    pub end: usize,
    /// Replacements, sorted.
    pub matches: Vec<String>,
}

const USERS: &[&str] = &["daniel-adams", "dr-carter", "joseph-ross"];
const PATIENTS: &[&str] = &["smart-1288992", "smart-1032702", "smart-1081332"];
const AUTH_METHODS: &[&str] = &["private_key_jwt", "client_secret_basic", "none"];
const SYSTEM_SCOPES: &[&str] = &[
    "system/*.rs",
    "system/*.read",
    "system/Observation.rs",
    "system/Patient.rs",
];

/// Complete the word before `cursor` (a byte offset, clamped to a char boundary).
pub fn complete(vars: &Vars, code: &str, cursor: usize) -> Completion {
    let mut cursor = cursor.min(code.len());
    while !code.is_char_boundary(cursor) {
        cursor -= 1;
    }
    let line_start = code[..cursor].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line = &code[line_start..cursor];
    let word_start = line
        .rfind(|c: char| c.is_whitespace())
        .map(|i| i + 1)
        .unwrap_or(0);
    let word = &line[word_start..];
    let start = line_start + word_start;
    let before: Vec<&str> = line[..word_start].split_whitespace().collect();
    let pick = |options: &mut dyn Iterator<Item = String>| {
        let mut m: Vec<String> = options.collect();
        m.sort();
        m.dedup();
        m
    };
    let matches = if let Some(partial) = word.strip_prefix('$') {
        let partial = partial.trim_start_matches('{');
        pick(
            &mut vars
                .iter()
                .map(|(n, _)| n)
                .filter(|n| n.starts_with(partial))
                .map(|n| format!("${n}")),
        )
    } else if before.is_empty() {
        let (prefix, bare) = match word.strip_prefix('%') {
            Some(rest) => ("%", rest),
            None => ("", word),
        };
        pick(
            &mut HELPERS
                .iter()
                .filter(|h| h.starts_with(bare))
                .map(|h| format!("{prefix}{h}")),
        )
    } else {
        let command = before[0].trim_start_matches('%');
        let previous = before.last().copied().unwrap_or_default();
        if let Some(flag) = word.strip_prefix("--") {
            let flags = spec::spec(command).map(|s| s.flags).unwrap_or_default();
            pick(
                &mut flags
                    .iter()
                    .filter(|f| f.name.starts_with(flag))
                    .map(|f| format!("--{}", f.name)),
            )
        } else {
            let pool: Vec<String> = match (command, previous) {
                (_, "--user") => USERS.iter().map(|s| s.to_string()).collect(),
                (_, "--as") => USERS.iter().map(|u| format!("{u}:demo-password")).collect(),
                (_, "--patient") => PATIENTS.iter().map(|s| s.to_string()).collect(),
                ("keys", "--alg") => ALGS.iter().map(|s| s.to_string()).collect(),
                ("register", "--auth") => AUTH_METHODS.iter().map(|s| s.to_string()).collect(),
                ("backend", "--scope") | ("register", "--scope") if word.starts_with('s') => {
                    SYSTEM_SCOPES.iter().map(|s| s.to_string()).collect()
                }
                ("keys", _) if before.len() == 1 => vec!["show".to_string()],
                ("simulate", "--at") => PLACES.iter().map(|s| s.to_string()).collect(),
                ("simulate", "--delay") => ["500ms", "2s", "5s"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                ("simulate", "--times") | ("simulate", "--client") => Vec::new(),
                ("simulate", _) if positionals(command, &before[1..]) == 0 => faults::names()
                    .chain(["clear"])
                    .map(str::to_string)
                    .collect(),
                ("launch", "--encounter") => vec!["auto".to_string()],
                ("authorize", "--encounter") => vec!["none".to_string()],
                ("launch", "--context") => SERVED_TYPES.iter().map(|t| format!("{t}/")).collect(),
                ("fetch", _) => SERVED_TYPES
                    .iter()
                    .chain(&["metadata"])
                    .map(|t| t.to_string())
                    .chain(PATIENTS.iter().map(|p| format!("Patient/{p}")))
                    .collect(),
                ("help", _) => HELPERS.iter().map(|s| s.to_string()).collect(),
                ("server", _) => ["start", "stop", "status"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                ("http", _) if before.len() == 1 => ["GET", "POST", "PUT", "DELETE"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                _ => Vec::new(),
            };
            pick(&mut pool.into_iter().filter(|c| c.starts_with(word)))
        }
    };
    Completion {
        start,
        end: cursor,
        matches,
    }
}

/// How many of a command's words are positional arguments (not flags, nor their values).
fn positionals(command: &str, words: &[&str]) -> usize {
    let flags = spec::spec(command).map(|s| s.flags).unwrap_or_default();
    let mut count = 0;
    let mut words = words.iter();
    while let Some(word) = words.next() {
        match word.strip_prefix("--") {
            Some(name) if !name.contains('=') => {
                if flags
                    .iter()
                    .any(|f| f.name == name && f.value.is_some() && !f.optional)
                {
                    words.next();
                }
            }
            Some(_) => {}
            None => count += 1,
        }
    }
    count
}

/// The help text of the helper command on the cursor's line, if it is one.
pub fn inspect(code: &str, cursor: usize) -> Option<String> {
    let mut cursor = cursor.min(code.len());
    while !code.is_char_boundary(cursor) {
        cursor -= 1;
    }
    let line_start = code[..cursor].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line_end = code[cursor..]
        .find('\n')
        .map(|i| cursor + i)
        .unwrap_or(code.len());
    let first = code[line_start..line_end].split_whitespace().next()?;
    spec::spec(first.trim_start_matches('%')).map(help_text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(code: &str) -> Vec<String> {
        let mut vars = Vars::default();
        vars.set_str("access_token", "a");
        vars.set_str("client_id", "c");
        complete(&vars, code, code.len()).matches
    }

    #[test]
    fn completes_every_kind_of_word() {
        assert_eq!(matches("reg"), vec!["register"]);
        assert_eq!(matches("%ex"), vec!["%exchange"]);
        assert_eq!(matches("register --na"), vec!["--name"]);
        assert_eq!(matches("fetch Patient/$ac"), Vec::<String>::new());
        assert_eq!(matches("fetch $ac"), vec!["$access_token"]);
        assert_eq!(matches("token --user j"), vec!["joseph-ross"]);
        assert_eq!(
            matches("authorize --as dr"),
            vec!["dr-carter:demo-password"]
        );
        assert_eq!(matches("id"), vec!["id-token"]);
        assert_eq!(matches("authorize --no"), vec!["--nonce"]);
        assert_eq!(matches("id-token $ac"), vec!["$access_token"]);
        assert_eq!(
            matches("token --patient smart-10"),
            vec!["smart-1032702", "smart-1081332"]
        );
        assert_eq!(matches("fetch Obs"), vec!["Observation"]);
        assert_eq!(matches("server st"), vec!["start", "status", "stop"]);
        assert_eq!(matches("ke"), vec!["keys"]);
        assert_eq!(matches("keys s"), vec!["show"]);
        assert_eq!(matches("keys --alg RS"), vec!["RS256", "RS384"]);
        assert_eq!(matches("register --auth pr"), vec!["private_key_jwt"]);
        assert_eq!(matches("register --ba"), vec!["--backend"]);
        assert_eq!(
            matches("backend --scope system/*"),
            vec!["system/*.read", "system/*.rs"]
        );
        assert_eq!(matches("backend --re"), vec!["--replay"]);
        assert_eq!(matches("ass"), vec!["assertion"]);
        assert_eq!(matches("la"), vec!["launch"]);
        assert_eq!(
            matches("launch --"),
            vec![
                "--banner",
                "--client",
                "--context",
                "--encounter",
                "--intent",
                "--patient",
                "--user"
            ]
        );
        assert_eq!(matches("launch --encounter a"), vec!["auto"]);
        assert_eq!(matches("launch --context Obs"), vec!["Observation/"]);
        assert_eq!(matches("launch --user dr"), vec!["dr-carter"]);
        assert_eq!(matches("authorize --la"), vec!["--launch"]);
        assert_eq!(matches("register --la"), vec!["--launch-uri"]);
        assert_eq!(matches("sim"), vec!["simulate"]);
        assert_eq!(matches("simulate fhir_e"), vec!["fhir_expired_token"]);
        assert_eq!(matches("simulate cl"), vec!["clear"]);
        assert_eq!(
            matches("simulate token_"),
            vec![
                "token_expired_refresh",
                "token_invalid_client",
                "token_invalid_grant",
                "token_invalid_scope",
                "token_replayed_jti",
                "token_unavailable"
            ]
        );
        assert_eq!(matches("simulate slow --at f"), vec!["fhir"]);
        assert_eq!(matches("simulate --times 2 sl"), vec!["slow"]);
        assert_eq!(matches("simulate slow sl"), Vec::<String>::new());
        assert_eq!(matches("simulate slow --de"), vec!["--delay"]);
        assert_eq!(matches("simulate --client $cl"), vec!["$client_id"]);
    }

    #[test]
    fn cursor_positions_are_byte_offsets_on_char_boundaries() {
        let vars = Vars::default();
        let c = complete(&vars, "set ü reg", 3);
        assert_eq!((c.start, c.end), (0, 3));
        let c = complete(&vars, "é", 1);
        assert_eq!(c.end, 0);
    }

    #[test]
    fn inspect_shows_the_command_help() {
        assert!(inspect("fetch Patient/x", 3)
            .unwrap()
            .starts_with("fetch PATH"));
        assert!(inspect("let x = 1;", 2).is_none());
        let help = inspect("launch --patient smart-1081332", 1).unwrap();
        assert!(help.starts_with("launch [--patient P]"), "{help}");
        assert!(help.contains("--context REF") && help.contains("Binds: launch, iss"));
        assert!(inspect("authorize --launch", 2)
            .unwrap()
            .contains("--launch [ID]"));
    }
}
