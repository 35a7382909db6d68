//! Content negotiation by `Accept`: the FHIR API speaks JSON only, so a request whose
//! `Accept` admits no JSON type (`application/fhir+xml`, `text/xml`, a JSON type at q=0)
//! is 406, as `_format=xml` is. `_format` overrides the header (FHIR R4 §2.21.0.6), and a
//! header with no readable media range is treated as absent.

use axum::extract::Request;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::server::error::FhirError;

/// The JSON types this server answers in (`application/json+fhir` is DSTU2's spelling,
/// still sent by older clients).
const SERVED: &[&str] = &[
    "application/fhir+json",
    "application/json",
    "application/json+fhir",
];

/// The most of a refused header shown back.
const SHOWN: usize = 120;

/// Middleware: 406 OperationOutcome when `Accept` rules out JSON and `_format` is absent.
pub async fn negotiate(request: Request, next: Next) -> Response {
    if request.method() == Method::OPTIONS || has_format(request.uri().query()) {
        return next.run(request).await;
    }
    match refused(request.headers()) {
        Some(asked) => not_acceptable(&asked).into_response(),
        None => next.run(request).await,
    }
}

fn has_format(query: Option<&str>) -> bool {
    query.is_some_and(|q| form_urlencoded::parse(q.as_bytes()).any(|(name, _)| name == "_format"))
}

/// The `Accept` value, when it admits none of the served types.
fn refused(headers: &HeaderMap) -> Option<String> {
    let mut values = Vec::new();
    for value in headers.get_all(header::ACCEPT) {
        // Bytes outside visible ASCII: not a header this server can read; ignored.
        values.push(value.to_str().ok()?);
    }
    let asked = values.join(", ");
    let ranges: Vec<Range> = asked.split(',').filter_map(Range::parse).collect();
    if ranges.is_empty() || SERVED.iter().any(|t| weight(&ranges, t) > 0.0) {
        return None;
    }
    Some(asked)
}

fn not_acceptable(asked: &str) -> FhirError {
    let shown: String = if asked.chars().count() > SHOWN {
        asked.chars().take(SHOWN).chain("…".chars()).collect()
    } else {
        asked.to_string()
    };
    FhirError::new(
        StatusCode::NOT_ACCEPTABLE,
        "not-supported",
        format!(
            "Accept: {shown} names no format this server serves; it speaks JSON only: ask for application/fhir+json (or send no Accept, or _format=json)"
        ),
    )
}

/// One media range of `Accept`, lower-cased, with its q-value.
struct Range {
    kind: String,
    subtype: String,
    q: f32,
}

impl Range {
    fn parse(text: &str) -> Option<Range> {
        let mut parts = text.split(';');
        let media = parts.next()?.trim().to_ascii_lowercase();
        let (kind, subtype) = media.split_once('/')?;
        if kind.is_empty() || subtype.is_empty() {
            return None;
        }
        let q = parts
            .filter_map(|p| p.split_once('='))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
            .map_or(1.0, |(_, value)| {
                value
                    .trim()
                    .parse::<f32>()
                    .ok()
                    .filter(|q| (0.0..=1.0).contains(q))
                    .unwrap_or(1.0)
            });
        Some(Range {
            kind: kind.to_string(),
            subtype: subtype.to_string(),
            q,
        })
    }

    /// How specifically this range names `media` (`type/subtype`): 3 exactly, 2 by
    /// `type/*`, 1 by `*/*`, 0 not at all.
    fn specificity(&self, media: &str) -> u8 {
        let (kind, subtype) = media.split_once('/').unwrap_or((media, ""));
        match (self.kind.as_str(), self.subtype.as_str()) {
            ("*", "*") => 1,
            (k, "*") if k == kind => 2,
            (k, s) if k == kind && s == subtype => 3,
            _ => 0,
        }
    }
}

/// The q-value `Accept` gives `media`: that of the most specific range naming it (the
/// highest among equally specific ones), 0 when none does (RFC 9110 §12.5.1).
fn weight(ranges: &[Range], media: &str) -> f32 {
    let best = ranges
        .iter()
        .map(|r| r.specificity(media))
        .max()
        .unwrap_or(0);
    if best == 0 {
        return 0.0;
    }
    ranges
        .iter()
        .filter(|r| r.specificity(media) == best)
        .map(|r| r.q)
        .fold(0.0, f32::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refuses(accept: &str) -> bool {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, accept.parse().unwrap());
        refused(&headers).is_some()
    }

    #[test]
    fn json_must_keep_a_positive_weight() {
        assert!(refuses("application/fhir+xml"));
        assert!(refuses("text/xml, application/xml;q=0.5"));
        assert!(refuses(
            "*/*;q=0.5, application/fhir+json;q=0, application/json;q=0, application/json+fhir;q=0"
        ));
        assert!(!refuses("application/xml, application/json;q=0.001"));
        assert!(!refuses("application/*;q=0.2"));
        assert!(!refuses("*/*"));
        assert!(!refuses("nonsense"), "an unreadable header is ignored");
        assert!(!refuses(""), "an empty header is ignored");
        assert!(!refuses("application/json;q=abc"), "a bad q counts as 1");
    }
}
