//! What every Rust cell can use without writing it: `serde_json`, the `smart` function and
//! its `SmartError`, and the helper variables as typed `let`s.

use std::path::PathBuf;

use serde_json::Value;

use super::bridge::{ADDR_VARIABLE, TOKEN_VARIABLE};
use crate::session::vars::{as_text, rust_type};

/// The dependency line evcxr is given for `serde_json`.
pub const SERDE_JSON_DEP: &str = ":dep serde_json = \"1\"";

/// The items defined once in a new evaluator (evcxr keeps items across cells and restarts).
pub fn items() -> String {
    format!(
        r####"
/// Why a helper command run by `smart` failed: the helper's own error kind, message and hint.
#[derive(Debug, Clone, PartialEq)]
pub struct SmartError {{
    pub kind: String,
    pub message: String,
    pub hint: Option<String>,
}}

impl std::fmt::Display for SmartError {{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {{
        write!(f, "{{}}: {{}}", self.kind, self.message)?;
        if let Some(hint) = &self.hint {{
            write!(f, " (hint: {{}})", hint)?;
        }}
        Ok(())
    }}
}}

impl std::error::Error for SmartError {{}}

/// JSON text as a `serde_json::Value` (`Value::Null` when it is not JSON): how a cell's copy
/// of `response` is made, here so that the parser is compiled once, not into every cell.
pub fn smartnb_json(text: &str) -> serde_json::Value {{
    serde_json::from_str(text).unwrap_or_default()
}}

/// Run one helper command (`smart("fetch Patient/smart-1288992")`) in this notebook's
/// session: it binds helper variables as the command does (the next cell sees them), and
/// returns the JSON it showed last (`Value::Null` when it showed none).
pub fn smart(command: &str) -> Result<serde_json::Value, SmartError> {{
    use std::io::{{BufRead, Write}};
    let broken = |message: String| SmartError {{
        kind: "HelperUnavailable".to_string(),
        message,
        hint: None,
    }};
    let addr = std::env::var("{ADDR_VARIABLE}")
        .map_err(|_| broken("this Rust evaluator was not started by a smartnb session".to_string()))?;
    let token = std::env::var("{TOKEN_VARIABLE}").unwrap_or_default();
    let mut stream = std::net::TcpStream::connect(&addr)
        .map_err(|e| broken(format!("cannot reach the session at {{}}: {{}}", addr, e)))?;
    let request = serde_json::json!({{ "token": token, "command": command }});
    writeln!(stream, "{{}}", request).map_err(|e| broken(e.to_string()))?;
    let mut line = String::new();
    std::io::BufReader::new(stream)
        .read_line(&mut line)
        .map_err(|e| broken(e.to_string()))?;
    let answer: serde_json::Value =
        serde_json::from_str(&line).map_err(|e| broken(format!("unreadable answer: {{}}", e)))?;
    if let Some(error) = answer.get("error") {{
        let text = |key: &str| error.get(key).and_then(|v| v.as_str()).map(str::to_string);
        return Err(SmartError {{
            kind: text("kind").unwrap_or_else(|| "Error".to_string()),
            message: text("message").unwrap_or_default(),
            hint: text("hint"),
        }});
    }}
    Ok(answer.get("value").cloned().unwrap_or(serde_json::Value::Null))
}}
"####
    )
}

/// Whether some `serde_json` 1.x source is in the local cargo registry cache (building
/// smartnb puts it there), so evcxr can build it with `--offline`.
pub fn serde_json_cached() -> bool {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    let Some(cache) = home.map(|h| h.join("registry").join("cache")) else {
        return false;
    };
    let Ok(registries) = std::fs::read_dir(cache) else {
        return false;
    };
    registries.flatten().any(|registry| {
        std::fs::read_dir(registry.path()).is_ok_and(|crates| {
            crates.flatten().any(|c| {
                let name = c.file_name();
                let name = name.to_string_lossy();
                name.starts_with("serde_json-1.") && name.ends_with(".crate")
            })
        })
    })
}

/// The `let` that copies one helper variable into Rust, with its type; `None` for names
/// Rust cannot bind. Without serde_json every variable is a `String`.
pub fn binding(name: &str, value: &Value, typed: bool) -> Option<String> {
    if !is_rust_identifier(name) {
        return None;
    }
    let kind = if typed {
        rust_type(name, value)
    } else {
        "String"
    };
    Some(match kind {
        "serde_json::Value" => format!(
            "let {name}: serde_json::Value = smartnb_json({:?});\n",
            value.to_string()
        ),
        "u16" => format!("let {name}: u16 = {};\n", value.as_u64().unwrap_or(0)),
        _ => format!("let {name}: String = {:?}.to_string();\n", as_text(value)),
    })
}

/// Whether a cell (its copied variables included) uses what the setup adds: serde_json,
/// `smart` or `SmartError`. One that does not runs before the setup, as it is.
pub fn needs_setup(code: &str) -> bool {
    ["serde_json", "smart", "SmartError"]
        .iter()
        .any(|word| mentions(code, word))
}

/// Whether `code` has `name` as a whole word anywhere, strings included (a format string's
/// `{status}` names `status`); a word in a comment counts too, which only costs a copy.
pub fn mentions(code: &str, name: &str) -> bool {
    let word_char = |c: char| c.is_alphanumeric() || c == '_';
    !name.is_empty()
        && code.match_indices(name).any(|(at, _)| {
            let before = code[..at].chars().next_back();
            let after = code[at + name.len()..].chars().next();
            !before.is_some_and(word_char) && !after.is_some_and(word_char)
        })
}

/// Whether `name` can be a Rust variable (letters, digits, `_`; not a keyword).
pub fn is_rust_identifier(name: &str) -> bool {
    const KEYWORDS: &[&str] = &[
        "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum",
        "extern", "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod",
        "move", "mut", "pub", "ref", "return", "self", "static", "struct", "super", "trait",
        "true", "type", "unsafe", "use", "where", "while", "abstract", "become", "box", "do",
        "final", "macro", "override", "priv", "try", "typeof", "unsized", "virtual", "yield",
    ];
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name != "_"
        && !KEYWORDS.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bindings_are_typed_and_escaped() {
        let body = json!({"resourceType": "Bundle", "note": "a \"quoted\" word"});
        let response = binding("response", &body, true).unwrap();
        assert!(
            response.starts_with("let response: serde_json::Value = smartnb_json("),
            "{response}"
        );
        // The literal is the JSON text escaped once more, as Rust reads it back.
        let literal = format!("{:?}", body.to_string());
        assert!(response.contains(&literal), "{response}");
        assert_eq!(
            binding("status", &json!(404), true).unwrap(),
            "let status: u16 = 404;\n"
        );
        assert_eq!(
            binding("status", &json!(404), false).unwrap(),
            "let status: String = \"404\".to_string();\n"
        );
        assert_eq!(
            binding("access_token", &json!("a\"b"), true).unwrap(),
            "let access_token: String = \"a\\\"b\".to_string();\n"
        );
        assert!(binding("type", &json!("x"), true).is_none());
    }

    #[test]
    fn a_name_is_mentioned_only_as_a_whole_word() {
        assert!(mentions("println!(\"{}\", status);", "status"));
        assert!(mentions("println!(\"{status}\");", "status"));
        assert!(mentions("response[\"entry\"]", "response"));
        assert!(!mentions("let statuses = 1; my_status", "status"));
        assert!(!mentions("responses", "response"));
        assert!(!mentions("anything", ""));
        assert!(needs_setup(
            "let v: serde_json::Value = serde_json::json!(1);"
        ));
        assert!(needs_setup("smart(\"vars\")?"));
        assert!(!needs_setup("println!(\"hi\"); let smartness = 1;"));
    }

    #[test]
    fn the_items_use_the_bridge_variables() {
        let items = items();
        assert!(items.contains("pub fn smart(command: &str)"));
        assert!(items.contains(ADDR_VARIABLE) && items.contains(TOKEN_VARIABLE));
    }
}
