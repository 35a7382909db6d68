//! How long each input the server keeps or echoes may be: authorize parameters (kept with
//! the pending request, echoed on the error redirect) and registration metadata (kept with
//! the client, echoed in the answer). Lengths are in bytes of the decoded value.
//!
//! Scope strings have their own limits, in [`crate::server::scopes`].

use crate::server::error::OAuthError;

/// Authorize parameters and the most bytes each may have (`invalid_request` above it).
/// `state`, `redirect_uri` and `nonce` (OpenID Connect) are kept while the participant
/// signs in; the others are echoed in error descriptions or will be kept by later features
/// (`launch` by EHR launch). `scope` has its own limits, reported as
/// `invalid_scope` ([`crate::server::scopes::MAX_SCOPE_BYTES`] and the others beside it).
/// Parameters not named here are ignored, as RFC 6749 §3.1 requires.
pub const AUTHORIZE_PARAMS: &[(&str, usize)] = &[
    ("client_id", 256),
    ("redirect_uri", MAX_URI),
    ("response_type", 64),
    ("state", 2048),
    ("aud", MAX_URI),
    ("code_challenge", 128),
    ("code_challenge_method", 64),
    ("nonce", 512),
    ("launch", 1024),
    ("prompt", 64),
    ("max_age", 20),
];

/// The longest URI kept anywhere (redirect URIs, client metadata URIs, `aud`). With the
/// limits below, a registration keeps about 15 KiB at most (31 KiB with a `jwks`, see
/// `client_keys`).
pub const MAX_URI: usize = 1024;
/// The most redirect URIs one client registers.
pub const MAX_REDIRECT_URIS: usize = 5;
/// The longest client_name.
pub const MAX_CLIENT_NAME: usize = 256;
/// The most contacts, and the longest contact (an e-mail address is at most 254).
pub const MAX_CONTACTS: (usize, usize) = (5, 256);
/// The longest software_id and software_version.
pub const MAX_SOFTWARE_FIELD: usize = 128;
/// Client metadata holding a URI (RFC 7591 §2, OpenID Connect Registration §2): capped at
/// [`MAX_URI`] when given, whether the server keeps the field or (not yet supporting what
/// it is for) ignores it.
pub const METADATA_URIS: &[&str] = &[
    "client_uri",
    "logo_uri",
    "tos_uri",
    "policy_uri",
    "jwks_uri",
    "initiate_login_uri",
    "sector_identifier_uri",
];

/// The limit for an authorize parameter, if it has one.
pub fn authorize_limit(name: &str) -> Option<usize> {
    AUTHORIZE_PARAMS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, limit)| *limit)
}

/// "`name` is N bytes long; at most L are allowed", for any field of any endpoint.
pub fn too_long(name: &str, len: usize, limit: usize) -> String {
    format!("{name} is {len} bytes long; at most {limit} bytes are allowed")
}

/// `invalid_client_metadata` for a string field longer than `limit`.
pub fn check_metadata_len(name: &str, value: &str, limit: usize) -> Result<(), OAuthError> {
    if value.len() > limit {
        return Err(OAuthError::bad_request(
            "invalid_client_metadata",
            too_long(name, value.len(), limit),
        ));
    }
    Ok(())
}
