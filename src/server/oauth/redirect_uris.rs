//! The redirect URIs a client registers: absolute, exactly as they will be compared, within
//! the length and count limits, and only of schemes that can receive a code safely.

use serde_json::Value;

use crate::server::error::OAuthError;

use super::limits::{too_long, MAX_REDIRECT_URIS, MAX_URI};
use super::register::string_list;

fn bad_redirect(description: impl Into<String>) -> OAuthError {
    OAuthError::bad_request("invalid_redirect_uri", description)
}

/// What the refusal of a scheme says is allowed.
const ALLOWED_SCHEMES: &str = "use http:// or https://, or a private-use scheme named after a domain you own, in reverse order, such as com.example.app:/callback (RFC 8252 §7.1)";

/// `redirect_uris` from the registration metadata, each checked.
pub fn parse_redirect_uris(value: Option<&Value>) -> Result<Vec<String>, OAuthError> {
    let uris = match value {
        None | Some(Value::Null) => {
            return Err(bad_redirect(
                "redirect_uris is required: an array with the URI the server sends codes to, e.g. [\"http://localhost:9001/authorized\"]",
            ))
        }
        Some(v) => string_list(v, "redirect_uris")?,
    };
    if uris.is_empty() {
        return Err(bad_redirect(
            "redirect_uris is empty; give at least one absolute URI",
        ));
    }
    if uris.len() > MAX_REDIRECT_URIS {
        return Err(bad_redirect(format!(
            "redirect_uris has {} entries; at most {MAX_REDIRECT_URIS} are allowed",
            uris.len()
        )));
    }
    for uri in &uris {
        check(uri)?;
    }
    Ok(uris)
}

fn check(uri: &str) -> Result<(), OAuthError> {
    if uri.len() > MAX_URI {
        let start: String = uri.chars().take(64).collect();
        return Err(bad_redirect(too_long(
            &format!("the redirect URI starting {start:?}"),
            uri.len(),
            MAX_URI,
        )));
    }
    // The URL parser forgives spaces, tabs, newlines and backslashes by cleaning them up,
    // but the URI is stored and compared as sent and must fit in a Location header.
    if !uri.bytes().all(is_uri_byte) {
        return Err(bad_redirect(format!(
            "redirect URI {uri:?} has spaces, control characters, non-ASCII or characters such as \\ < > {{ }} that a URI cannot contain (RFC 3986); percent-encode them"
        )));
    }
    if lacks_scheme(uri) {
        return Err(bad_redirect(format!(
            "redirect URI {uri:?} has no scheme; add http:// or https://, e.g. {:?}",
            format!("http://{uri}")
        )));
    }
    let parsed = url::Url::parse(uri).map_err(|_| {
        bad_redirect(format!(
            "redirect URI {uri:?} is not an absolute URI with a scheme such as http:// or https://"
        ))
    })?;
    if uri.contains('#') {
        return Err(bad_redirect(format!(
            "redirect URI {uri:?} has a fragment (#…), which RFC 6749 §3.1.2 forbids"
        )));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad_redirect(format!(
            "redirect URI {uri:?} carries credentials (user:password@); leave them out"
        )));
    }
    if uri == "urn:ietf:wg:oauth:2.0:oob" {
        return Err(bad_redirect(
            "the out-of-band redirect urn:ietf:wg:oauth:2.0:oob is not supported; use a loopback URI such as http://localhost:9001/authorized",
        ));
    }
    // What is registered is compared as written, but a browser follows the parsed URL: a
    // URI whose parsed form differs (`http:///cb` is `http://cb/`, `%65vil` is `evil`, dot
    // segments collapse) would send the code somewhere the text does not say.
    let canonical = parsed.as_str();
    if canonical != uri && canonical.strip_suffix('/') != Some(uri) {
        return Err(bad_redirect(format!(
            "redirect URI {uri:?} is not written the way a browser reads it; register it as {canonical:?}"
        )));
    }
    let scheme = parsed.scheme();
    if matches!(scheme, "http" | "https") {
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(bad_redirect(format!("redirect URI {uri:?} has no host")));
        }
    } else if !is_private_use_scheme(scheme) {
        return Err(bad_redirect(format!(
            "redirect URI {uri:?} uses the {scheme}: scheme, which cannot receive a code safely; {ALLOWED_SCHEMES}"
        )));
    }
    Ok(())
}

/// Whether a URI is a host (and port) written without `http://`: `localhost:9001/cb`,
/// `127.0.0.1:9000/x`, `example.com:8080`, `[::1]:9001/cb` (a URL parser takes
/// `localhost:` or `example.com:` for a scheme, or reads none at all), or a dotted host and
/// path such as `www.example.org/cb`. A private-use scheme's `com.example.app:/cb` is none
/// of these: after its colon comes a path, not a port.
fn lacks_scheme(uri: &str) -> bool {
    let authority = uri.split(['/', '?', '#']).next().unwrap_or_default();
    let is_port = |p: &str| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit());
    let is_host = |h: &str| {
        !h.is_empty()
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    };
    if let Some(inside) = authority.strip_prefix('[') {
        return match inside.split_once(']') {
            Some((address, rest)) => {
                address.parse::<std::net::Ipv6Addr>().is_ok()
                    && (rest.is_empty() || rest.strip_prefix(':').is_some_and(is_port))
            }
            None => false,
        };
    }
    match authority.split_once(':') {
        Some((host, port)) => is_host(host) && is_port(port),
        // No colon at all: a relative reference, which names a host only when its first
        // segment looks like one.
        None => {
            is_host(authority)
                && (authority.contains('.') || authority.eq_ignore_ascii_case("localhost"))
        }
    }
}

/// A private-use scheme of the reverse-domain form RFC 8252 §7.1 asks native apps to use:
/// two or more dot-separated labels of letters, digits and hyphens (`com.example.app`).
/// Browser-internal schemes (`about`, `blob`, `chrome`, `view-source`, …) have no dot.
fn is_private_use_scheme(scheme: &str) -> bool {
    let labels: Vec<&str> = scheme.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// A byte RFC 3986 allows somewhere in a URI (printable ASCII, less what it excludes).
fn is_uri_byte(b: u8) -> bool {
    b.is_ascii_graphic() && !b"\"<>\\^`{|}".contains(&b)
}
