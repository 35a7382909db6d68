//! Values that change from run to run (ids, tokens, codes, dates, ports) replaced by
//! placeholders, so stored and fresh outputs can be compared.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

static PATTERNS: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        // id_tokens (signed anew each run), then the 43-character base64url values of
        // OpenID Connect: nonces and key ids (RFC 7638 thumbprints of a fresh key).
        (r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*", "<jwt>"),
        // An id_token's at_hash (22 base64url characters) beside its claim name, in text,
        // JSON and HTML table cells.
        (
            r"(at_hash(?:</td><td[^>]*>|[^A-Za-z0-9_<-])+)[A-Za-z0-9_-]{22}([^A-Za-z0-9_-]|$)",
            "$1<at_hash>$2",
        ),
        // A fresh public key's coordinates or modulus (a JWK's x, y, n) beside their names.
        (r#"("(?:x|y|n)":\s*")[A-Za-z0-9_-]{43,}""#, "$1<key>\""),
        (r"(^|[^A-Za-z0-9_-])[A-Za-z0-9_-]{43}($|[^A-Za-z0-9_-])", "$1<b64url>$2"),
        // Claim times in words and in UTC, which move with the clock.
        (r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC", "<utc>"),
        (r"\bjust now\b|\b\d+ (?:s|min|h|days)(?: \d+ min)?(?: ago)?\b", "<when>"),
        (r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<uuid>"),
        (r"\b[0-9a-f]{32}(?:[0-9a-f]{32})?\b", "<hex>"),
        (r"code_challenge=[A-Za-z0-9_-]{43}", "code_challenge=<challenge>"),
        (r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT", "<http-date>"),
        (r"\d{2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4}", "<date>"),
        (r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", "<instant>"),
        (r"\b1[5-9]\d{8}\b|\b[23]\d{9}\b", "<unix-time>"),
        (r"(localhost|127\.0\.0\.1)(:|%3A)\d{2,5}", "$1$2<port>"),
        // The embedded server falls back to a free port when 9000 is taken, and says so.
        (r"port \d+ was taken; ", ""),
        (r"[ ─]{2,}", " "),
    ]
    .into_iter()
    .map(|(pattern, replacement)| (Regex::new(pattern).expect("static pattern"), replacement))
    .collect()
});

/// A string with run-to-run values replaced.
pub fn normalise_text(text: &str) -> String {
    PATTERNS
        .iter()
        .fold(text.to_string(), |acc, (re, replacement)| {
            re.replace_all(&acc, *replacement).into_owned()
        })
}

fn normalise_value(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(normalise_text(s)),
        Value::Number(n)
            if n.as_i64()
                .is_some_and(|i| (1_500_000_000..4_000_000_000).contains(&i)) =>
        {
            Value::String("<unix-time>".into())
        }
        Value::Array(items) => Value::Array(items.iter().map(normalise_value).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    // A JSON view of a public JWK: its key material, new for every key.
                    ("x" | "y" | "n", Value::String(_)) if map.contains_key("kty") => {
                        (k.clone(), Value::String("<key>".into()))
                    }
                    // A JSON view of id_token claims: the value alone has no name beside it.
                    ("at_hash", Value::String(_)) => (k.clone(), Value::String("<at_hash>".into())),
                    _ => (k.clone(), normalise_value(v)),
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Outputs with run-to-run values replaced and execution counts dropped.
pub fn normalise_outputs(outputs: &[Value]) -> Vec<Value> {
    outputs
        .iter()
        .map(|o| {
            let mut o = normalise_value(o);
            if let Some(map) = o.as_object_mut() {
                map.remove("execution_count");
                map.remove("metadata");
            }
            o
        })
        .collect()
}

/// A readable diff of two cells' normalised outputs, or `None` when they agree.
pub fn diff(stored: &[Value], fresh: &[Value]) -> Option<String> {
    let (a, b) = (normalise_outputs(stored), normalise_outputs(fresh));
    if a == b {
        return None;
    }
    let show = |v: &[Value]| serde_json::to_string_pretty(v).unwrap_or_default();
    let (a, b) = (show(&a), show(&b));
    let text = similar::TextDiff::from_lines(&a, &b)
        .unified_diff()
        .context_radius(2)
        .header("stored", "fresh")
        .to_string();
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn changing_values_become_placeholders() {
        let text = "client 59b2f830-965e-4a9d-be34-79283df73d24 code 04cb9fff7e5b4770bb1a56ef48879f80 at Thu, 05 Jul 2018 17:41:24 GMT on http://localhost:41234/api and localhost%3A9000";
        assert_eq!(normalise_text(text), "client <uuid> code <hex> at <http-date> on http://localhost:<port>/api and localhost%3A<port>");
        assert_eq!(
            normalise_value(&json!({"iat": 1795444724, "n": 3})),
            json!({"iat": "<unix-time>", "n": 3})
        );
    }

    #[test]
    fn id_tokens_nonces_and_claim_times_become_placeholders() {
        let a = "id_token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln-_x nonce=Xk3_9-aZ0123456789012345678901234567890abcd& | 2024-05-30 16:26:40 UTC, expires in 59 min | issued just now |";
        let b = "id_token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ5In0.b3RoZXI nonce=Qq3_9-aZ0123456789012345678901234567890cdef& | 2024-05-30 17:00:01 UTC, expires in 60 min | issued 1 s ago |";
        assert_eq!(normalise_text(a), normalise_text(b));
        assert_eq!(
            normalise_text(a),
            "id_token <jwt> nonce=<b64url>& | <utc>, expires in <when> | issued <when> |"
        );
        assert_eq!(
            normalise_text("signed in just now"),
            normalise_text("signed in 5 s ago")
        );
        assert_eq!(normalise_text("Dr. Rose Carter"), "Dr. Rose Carter");
        for (text, seen) in [
            (
                r#""at_hash": "ydDS-MDCmGE4siYluIFhH_","#,
                r#""at_hash": "<at_hash>","#,
            ),
            (
                r#"at_hash</td><td style="a">WrV-Ehm53zRQkdT51NDv4g</td>"#,
                r#"at_hash</td><td style="a"><at_hash></td>"#,
            ),
            (
                "│ at_hash │ v-0z6MvoPY7HNyUn9FIzWg │",
                "│ at_hash │ <at_hash> │",
            ),
        ] {
            assert_eq!(normalise_text(text), seen);
        }
        assert_eq!(
            normalise_value(&json!({"claims": {"at_hash": "ydDS-MDCmGE4siYluIFhHQ"}})),
            json!({"claims": {"at_hash": "<at_hash>"}})
        );
        // Only beside the claim's name: other 22-character words stay.
        assert_eq!(
            normalise_text(r#""authorization_endpoint""#),
            r#""authorization_endpoint""#
        );
    }

    #[test]
    fn fresh_public_keys_become_placeholders() {
        let p384 = "A5pB1xAW3q0XiXSyLwZ-j0TvuFdnA8-zgPqKNJYl1QffPP7Sq5mPMsyuYVXpnbfm";
        let text = format!(r#""crv": "P-384", "x": "{p384}", "y":"{p384}", "kty": "EC""#);
        assert_eq!(
            normalise_text(&text),
            r#""crv": "P-384", "x": "<key>", "y":"<key>", "kty": "EC""#
        );
        assert_eq!(
            normalise_value(
                &json!({"keys": [{"kty": "EC", "x": p384, "y": p384, "crv": "P-384"}]})
            ),
            json!({"keys": [{"kty": "EC", "x": "<key>", "y": "<key>", "crv": "P-384"}]})
        );
        // Only in a JWK: an `x` elsewhere stays.
        assert_eq!(
            normalise_value(&json!({"x": "short"})),
            json!({"x": "short"})
        );
        assert_eq!(normalise_text(r#""x": "short""#), r#""x": "short""#);
    }

    #[test]
    fn a_taken_port_does_not_matter() {
        let first = "Started the embedded SMART server on http://localhost:9000 (FHIR base http://localhost:9000/api/fhir)";
        let fallback = "Started the embedded SMART server on http://localhost:41234 (port 9000 was taken; FHIR base http://localhost:41234/api/fhir)";
        assert_eq!(normalise_text(first), normalise_text(fallback));
    }

    #[test]
    fn fixture_data_is_left_alone() {
        let text = "\"effectiveDateTime\": \"2018-03-14T09:30:00-05:00\", \"value\": 1288992";
        assert_eq!(normalise_text(text), text);
    }

    #[test]
    fn table_padding_does_not_matter() {
        let a = vec![json!({"output_type": "stream", "text": "│ a    │ localhost:9000  │"})];
        let b = vec![json!({"output_type": "stream", "text": "│ a    │ localhost:41234 │"})];
        assert_eq!(diff(&a, &b), None);
        let c = vec![json!({"output_type": "stream", "text": "│ b    │ localhost:41234 │"})];
        assert!(diff(&a, &c).unwrap().contains("-"));
    }
}
