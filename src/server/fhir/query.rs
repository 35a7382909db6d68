//! Query strings as name/value pairs, decoded strictly: a malformed escape is refused rather
//! than guessed at, so a search never quietly runs on something other than what was sent.

use crate::server::error::FhirError;

/// The `application/x-www-form-urlencoded` pairs of a query string.
pub fn pairs(query: Option<&str>) -> Result<Vec<(String, String)>, FhirError> {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((decode(name)?, decode(value)?))
        })
        .collect()
}

/// `+` is a space and `%XX` a byte; the bytes must spell UTF-8.
fn decode(text: &str) -> Result<String, FhirError> {
    let malformed = || {
        FhirError::invalid(format!(
            "the query part {text:?} is not valid percent-encoded UTF-8; escape each byte as %XX with two hex digits"
        ))
    };
    let mut bytes = Vec::with_capacity(text.len());
    let mut input = text.bytes();
    while let Some(b) = input.next() {
        match b {
            b'+' => bytes.push(b' '),
            b'%' => {
                let mut hex = || input.next().and_then(|c| (c as char).to_digit(16));
                let (high, low) = (hex().ok_or_else(malformed)?, hex().ok_or_else(malformed)?);
                bytes.push((high * 16 + low) as u8);
            }
            other => bytes.push(other),
        }
    }
    String::from_utf8(bytes).map_err(|_| malformed())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(query: &str) -> Vec<(String, String)> {
        pairs(Some(query)).unwrap()
    }

    #[test]
    fn decodes_like_a_form() {
        assert_eq!(
            ok("code=http%3A%2F%2Floinc.org%7C8867-4&&_count=5&flag&name=a+b"),
            vec![
                ("code".into(), "http://loinc.org|8867-4".into()),
                ("_count".into(), "5".into()),
                ("flag".into(), "".into()),
                ("name".into(), "a b".into()),
            ]
        );
        assert_eq!(ok("x=caf%C3%A9"), vec![("x".into(), "caf\u{e9}".into())]);
        assert!(ok("").is_empty());
        assert!(pairs(None).unwrap().is_empty());
    }

    #[test]
    fn refuses_malformed_escapes_and_non_utf8() {
        for query in [
            "patient=%zz",
            "code=%ff%fe",
            "%ff=1",
            "x=%",
            "x=%4",
            "x=%C3",
        ] {
            let err = pairs(Some(query)).unwrap_err();
            assert_eq!(err.status, 400, "{query}");
        }
    }
}
