//! Where a browser may be sent after signing in: the one check every redirect target taken
//! from a request (`next` on /login, its hidden form field) goes through.
//!
//! A target is accepted only when it is a path on this server: it starts with a single `/`,
//! holds no control character (C0, DEL, C1), no Unicode whitespace and no backslash, neither
//! as written nor once percent-decoded (repeatedly, so `%2509` is looked at as `%09` and then
//! as a tab), is at most `MAX_LEN` bytes, and, parsed by the `url` crate against the server's
//! base URL, lands on the base's scheme, host and port at a path that starts with a single
//! `/`. The Location sent is that parsed URL's path and query, serialised again by `url`,
//! never the text that came in. Browsers drop tabs and newlines from URLs and read `\` as
//! `/`, so `/\t/evil.example` or `/\evil.example` would otherwise leave for `//evil.example`.

use url::Url;

/// Where sign-in goes when `next` is missing or refused: the participant's list of apps.
pub const DEFAULT: &str = "/apps";
/// The longest `next` accepted, in bytes (the server's own are under 100).
pub const MAX_LEN: usize = 2048;
/// How many rounds of percent-decoding are looked through before giving up.
const DECODE_ROUNDS: usize = 4;

/// Why a `next` value was refused; each names the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Longer than `MAX_LEN`.
    #[error("it is longer than {MAX_LEN} bytes")]
    TooLong,
    /// Not a path: it does not start with `/`.
    #[error("it is not a path on this server (it must start with a single /)")]
    NotAPath,
    /// `//` or `/\` at the start: another host, to a browser.
    #[error("it starts with // (or decodes to it), which names another host")]
    SchemeRelative,
    /// A control character, whitespace or backslash, as written or percent-decoded.
    #[error("it holds {0} (control characters, whitespace and backslashes are refused, also percent-encoded)")]
    Forbidden(&'static str),
    /// Percent-encoded more deeply than anything this server makes.
    #[error("it is percent-encoded more than {DECODE_ROUNDS} times over")]
    TooEncoded,
    /// Parsed against the base URL, it leaves this server's origin or path space.
    #[error("it does not resolve to a path on this server")]
    OtherOrigin,
}

/// The Location for `raw` if it is a path on the server at `base`, or why not.
pub fn check(base: &Url, raw: &str) -> Result<String, Refused> {
    if raw.len() > MAX_LEN {
        return Err(Refused::TooLong);
    }
    if !raw.starts_with('/') {
        return Err(Refused::NotAPath);
    }
    look_through_encoding(raw.as_bytes())?;
    let joined = base.join(raw).map_err(|_| Refused::OtherOrigin)?;
    if joined.origin() != base.origin() || joined.cannot_be_a_base() {
        return Err(Refused::OtherOrigin);
    }
    let mut location = joined.path().to_string();
    if let Some(query) = joined.query() {
        location.push('?');
        location.push_str(query);
    }
    // Dot segments can collapse to `//` (`/.//evil`): check what will be sent, too.
    if location.starts_with("//") {
        return Err(Refused::SchemeRelative);
    }
    if !location.starts_with('/') || !location.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Refused::OtherOrigin);
    }
    // Resolving dot segments can uncover what the first look passed (`/%2E%2E/%2F/evil`
    // becomes `/%2F/evil`): what is sent must pass every rule on its own.
    look_through_encoding(location.as_bytes())?;
    Ok(location)
}

/// The Location for `next` on the server at `base_url`, or `DEFAULT` with the reason
/// `next` was refused.
pub fn or_default(base_url: &str, next: Option<&str>) -> (String, Option<Refused>) {
    let Some(next) = next else {
        return (DEFAULT.to_string(), None);
    };
    let checked = Url::parse(base_url)
        .map_err(|_| Refused::OtherOrigin)
        .and_then(|base| check(&base, next));
    match checked {
        Ok(location) => (location, None),
        Err(why) => (DEFAULT.to_string(), Some(why)),
    }
}

/// Check the text and each percent-decoding of it until nothing changes.
fn look_through_encoding(raw: &[u8]) -> Result<(), Refused> {
    let mut text = raw.to_vec();
    for _ in 0..=DECODE_ROUNDS {
        forbidden(&text)?;
        if text.starts_with(b"//") {
            return Err(Refused::SchemeRelative);
        }
        let decoded = percent_decode(&text);
        if decoded == text {
            return Ok(());
        }
        text = decoded;
    }
    Err(Refused::TooEncoded)
}

/// The first forbidden character in `bytes` (read as UTF-8, invalid bytes as U+FFFD).
fn forbidden(bytes: &[u8]) -> Result<(), Refused> {
    for c in String::from_utf8_lossy(bytes).chars() {
        let what = if c == '\\' {
            "a backslash"
        } else if c.is_control() {
            "a control character"
        } else if c.is_whitespace() {
            "whitespace"
        } else {
            continue;
        };
        return Err(Refused::Forbidden(what));
    }
    Ok(())
}

/// One round of percent-decoding (`%XX` to its byte; anything else kept as it is).
fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    percent_encoding::percent_decode(bytes).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("http://localhost:9000").unwrap()
    }

    #[test]
    fn the_servers_own_paths_pass_and_are_serialised_again() {
        for (raw, location) in [
            ("/apps", "/apps"),
            (
                "/oauth/consent?request=0123abcd",
                "/oauth/consent?request=0123abcd",
            ),
            ("/a/../apps", "/apps"),
            ("/apps?x=%41%2F", "/apps?x=%41%2F"),
            ("/caf\u{e9}", "/caf%C3%A9"),
            ("/apps#frag", "/apps"),
            ("/apps?a=\"<x>\"", "/apps?a=%22%3Cx%3E%22"),
        ] {
            assert_eq!(check(&base(), raw).as_deref(), Ok(location), "{raw:?}");
        }
    }

    #[test]
    fn every_attack_in_the_table_is_refused() {
        let long = format!("/{}", "a".repeat(MAX_LEN));
        let attacks: Vec<&str> = vec![
            "/\t/evil.example",
            "/%09/evil.example",
            "/\n/evil.example",
            "/%0a/evil.example",
            "/%0d%0a/evil.example",
            "/\r\n/evil.example",
            "/apps?x=%0D%0ASet-Cookie:a=b",
            "/\0/evil.example",
            "/%00/evil.example",
            "/\\evil.example",
            "/%5Cevil.example",
            "/%5cevil.example",
            "\\\\evil.example",
            "/\\/evil.example",
            "//evil.example",
            "///evil.example",
            "/%2F/evil.example",
            "/%2E%2E/%2F/evil.example",
            "/%2e/%2fevil.example",
            "/./%2F/evil.example",
            "/%2f%2fevil.example",
            "/%252F/evil.example",
            "/%2509/evil.example",
            "/%25255C/evil.example",
            "https://evil.example",
            "http://localhost:9001/",
            "http://localhost:9000/apps",
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "data:text/html,<script>",
            "http:evil.example",
            "evil.example",
            "",
            " /apps",
            "/apps ",
            "/ap ps",
            "/apps?x=%20",
            "/\u{3000}/evil.example",
            "/%E3%80%80/evil.example",
            "/\u{2028}/evil.example",
            "/%E2%80%A8/evil.example",
            "/\u{2029}evil",
            "/\u{a0}evil",
            "/\u{85}evil",
            "/%C2%85evil",
            "/\u{7f}evil",
            "/%7Fevil",
            "/\u{9b}evil",
            "/\u{feff}\u{2000}evil",
            "/.//evil.example",
            "/./\t/evil.example",
            long.as_str(),
        ];
        for raw in attacks {
            assert!(check(&base(), raw).is_err(), "{raw:?} was accepted");
        }
        assert_eq!(check(&base(), &long), Err(Refused::TooLong));
        assert_eq!(
            check(&base(), "/%252525252509"),
            Err(Refused::TooEncoded),
            "deeper than anything the server makes"
        );
    }

    #[test]
    fn a_refused_next_goes_to_the_apps_page_and_says_why() {
        let (location, why) = or_default("http://localhost:9000", Some("/%09/evil.example"));
        assert_eq!(location, DEFAULT);
        assert_eq!(why, Some(Refused::Forbidden("a control character")));
        assert!(why.unwrap().to_string().contains("control characters"));
        assert_eq!(
            or_default("http://localhost:9000", None),
            (DEFAULT.to_string(), None)
        );
    }

    #[test]
    fn a_base_with_a_path_or_https_keeps_its_origin() {
        let base = Url::parse("https://smart.example.org:8443/portal").unwrap();
        assert_eq!(check(&base, "/apps").as_deref(), Ok("/apps"));
        assert!(check(&base, "//smart.example.org/apps").is_err());
    }
}
