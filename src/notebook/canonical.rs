//! Outputs as they read with the embedded server on its canonical port (9000), so what
//! `smartnb run --write` stores does not depend on which port was free, or asked for with
//! `--port`, on the machine that ran it.

use regex::Regex;
use serde_json::Value;

use crate::session::{CommandError, Output, Table};

/// The port stored outputs show for the embedded server: its default.
pub const CANONICAL_PORT: u16 = 9000;

/// Rewrites the embedded server's actual port to the canonical one.
pub struct Canonical {
    /// The actual port beside a loopback name, plain or percent-encoded; `None` when the
    /// server already runs on the canonical port (then only the fallback note changes).
    port: Option<Regex>,
    taken: Regex,
}

impl Canonical {
    /// For an embedded server whose base URL is `base_url` (`None`: no server runs yet).
    pub fn new(base_url: Option<&str>) -> Canonical {
        let actual = base_url
            .and_then(|base| url::Url::parse(base).ok())
            .and_then(|url| url.port_or_known_default())
            .filter(|port| *port != CANONICAL_PORT);
        Canonical {
            port: actual.map(|port| {
                Regex::new(&format!(r"(localhost|127\.0\.0\.1)(:|%3A|%3a){port}\b"))
                    .expect("a pattern of a number")
            }),
            taken: Regex::new(r"port \d+ was taken; ").expect("static pattern"),
        }
    }

    /// A string with the actual port replaced, and no note that the canonical port was taken.
    pub fn text(&self, text: &str) -> String {
        let text = self.taken.replace_all(text, "");
        match &self.port {
            Some(port) => port
                .replace_all(&text, format!("${{1}}${{2}}{CANONICAL_PORT}"))
                .into_owned(),
            None => text.into_owned(),
        }
    }

    fn value(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.text(s)),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.value(v)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.value(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    fn bundle(&self, bundle: &serde_json::Map<String, Value>) -> serde_json::Map<String, Value> {
        bundle
            .iter()
            .map(|(k, v)| (k.clone(), self.value(v)))
            .collect()
    }

    /// An output with every string in it rewritten (tables before they are drawn, so their
    /// columns stay aligned).
    pub fn output(&self, output: &Output) -> Output {
        let all = |items: &[String]| items.iter().map(|s| self.text(s)).collect::<Vec<_>>();
        match output {
            Output::Json(value) => Output::Json(self.value(value)),
            Output::Table(table) => Output::Table(Table {
                columns: all(&table.columns),
                rows: table.rows.iter().map(|row| all(row)).collect(),
                json: table.json.as_ref().map(|json| self.value(json)),
            }),
            Output::Link { label, url } => Output::Link {
                label: self.text(label),
                url: self.text(url),
            },
            Output::Text(text) => Output::Text(self.text(text)),
            Output::Note(note) => Output::Note(self.text(note)),
            Output::Error(error) => Output::Error(CommandError {
                kind: error.kind.clone(),
                message: self.text(&error.message),
                detail: error.detail.as_deref().map(|d| self.text(d)),
                hint: error.hint.as_deref().map(|h| self.text(h)),
            }),
            Output::Stdout(text) => Output::Stdout(self.text(text)),
            Output::Stderr(text) => Output::Stderr(self.text(text)),
            Output::Value(bundle) => Output::Value(self.bundle(bundle)),
            Output::Rich(bundle) => Output::Rich(self.bundle(bundle)),
            Output::Status(_) | Output::Simulated(_) => output.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_fallback_port_reads_as_the_canonical_one() {
        let c = Canonical::new(Some("http://localhost:41234"));
        assert_eq!(
            c.text("Started the embedded SMART server on http://localhost:41234 (port 9000 was taken; FHIR base http://localhost:41234/api/fhir)"),
            "Started the embedded SMART server on http://localhost:9000 (FHIR base http://localhost:9000/api/fhir)"
        );
        assert_eq!(
            c.text("aud=http%3A%2F%2Flocalhost%3A41234%2Fapi 127.0.0.1:41234"),
            "aud=http%3A%2F%2Flocalhost%3A9000%2Fapi 127.0.0.1:9000"
        );
        // Other ports (an app's redirect URI, a longer number) are left alone.
        assert_eq!(
            c.text("http://localhost:9001/cb localhost:412345"),
            "http://localhost:9001/cb localhost:412345"
        );
    }

    #[test]
    fn tables_are_rewritten_before_they_are_drawn() {
        let c = Canonical::new(Some("http://localhost:9250"));
        let table = Output::Table(Table {
            columns: vec!["name".into(), "value".into()],
            rows: vec![vec!["iss".into(), "http://localhost:9250/api/fhir".into()]],
            json: Some(json!({"iss": "http://localhost:9250/api/fhir", "n": 1})),
        });
        assert_eq!(
            c.output(&table),
            Output::Table(Table {
                columns: vec!["name".into(), "value".into()],
                rows: vec![vec!["iss".into(), "http://localhost:9000/api/fhir".into()]],
                json: Some(json!({"iss": "http://localhost:9000/api/fhir", "n": 1})),
            })
        );
    }

    #[test]
    fn on_the_canonical_port_or_with_no_server_nothing_but_the_note_changes() {
        for base in [Some("http://localhost:9000"), None] {
            let c = Canonical::new(base);
            assert_eq!(c.text("http://localhost:9000/x"), "http://localhost:9000/x");
            assert_eq!(c.text("(port 9000 was taken; FHIR"), "(FHIR");
        }
    }
}
