//! POST /oauth/register: dynamic client registration (RFC 7591).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use crate::server::clock;
use crate::server::error::OAuthError;
use crate::server::scopes::{Context, Scopes};
use crate::server::state::AppState;
use crate::server::store::Client;

use super::client_keys;
use super::limits::{
    check_metadata_len, MAX_CLIENT_NAME, MAX_CONTACTS, MAX_SOFTWARE_FIELD, MAX_URI, METADATA_URIS,
};
use super::redirect_uris::parse_redirect_uris;
use super::{json_object, new_secret, sha256, store_failed};

/// The scope a backend service registers with when it names none.
pub const BACKEND_SCOPE: &str = "system/*.rs";
/// The scope the seed walkthrough registers with, used when a client names none.
pub const DEFAULT_SCOPE: &str = "launch/patient patient/*.read offline_access";

const AUTH_METHODS: &[&str] = &[
    "client_secret_basic",
    "client_secret_post",
    "none",
    "private_key_jwt",
];
const GRANT_TYPES: &[&str] = &["authorization_code", "refresh_token", "client_credentials"];
/// What a client that names no grant_types gets (RFC 7591's default is authorization_code;
/// refresh_token too, as the seed's clients had). Backend services name client_credentials.
const DEFAULT_GRANT_TYPES: &[&str] = &["authorization_code", "refresh_token"];
/// Optional RFC 7591 string metadata, kept and echoed back when given, with its limit.
const ECHOED_STRINGS: &[(&str, usize)] = &[
    ("client_uri", MAX_URI),
    ("logo_uri", MAX_URI),
    ("tos_uri", MAX_URI),
    ("policy_uri", MAX_URI),
    ("software_id", MAX_SOFTWARE_FIELD),
    ("software_version", MAX_SOFTWARE_FIELD),
];

fn bad_metadata(description: impl Into<String>) -> OAuthError {
    OAuthError::bad_request("invalid_client_metadata", description)
}

/// Register a client. Metadata the server does not understand is ignored (neither kept
/// nor echoed), as RFC 7591 §2 allows; metadata it does understand is checked strictly,
/// each field within its limit (see [`super::limits`]), so a client holds about 15 KiB at most
/// (31 KiB with a `jwks`).
pub async fn register(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OAuthError> {
    let metadata = json_object(&headers, body)?;
    let client_id = new_secret();
    let mut client = parse_metadata(&metadata, &client_id)?;
    let secret = matches!(
        client.token_endpoint_auth_method.as_str(),
        "client_secret_basic" | "client_secret_post"
    )
    .then(new_secret);
    client.secret_sha256 = secret.as_deref().map(sha256);
    state
        .store
        .insert_client(client.clone())
        .await
        .map_err(store_failed)?;
    crate::server::request_log::note_client(&client.client_id);
    // Dropping the oldest idle registration rather than refusing this one: a refusal at
    // the cap would let anyone who fills it block registration for everyone else.
    if state.config.max_idle_clients > 0 {
        let dropped = state
            .store
            .evict_idle_clients(state.config.max_idle_clients, &client.client_id)
            .await
            .map_err(store_failed)?;
        if dropped > 0 {
            tracing::debug!(
                "dropped {dropped} registered client(s) that never got an approval: more than {} were kept (--max-idle-clients)",
                state.config.max_idle_clients
            );
        }
    }
    let mut body = json!({
        "client_id": client.client_id,
        "client_id_issued_at": client.issued_at,
        "client_name": client.client_name,
        "redirect_uris": client.redirect_uris,
        "scope": client.scope,
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "grant_types": client.grant_types,
        "response_types": if client.grant_types.iter().any(|g| g == "authorization_code") {
            json!(["code"])
        } else {
            json!([])
        },
    });
    // RFC 7591 §3.2.1: client_secret_expires_at goes with a secret; a public or
    // private_key_jwt client has none to expire.
    if let Some(secret) = secret {
        body["client_secret"] = Value::String(secret);
        body["client_secret_expires_at"] = json!(0);
    }
    for (key, value) in client.extra {
        body[key] = value;
    }
    Ok((
        StatusCode::CREATED,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        Json(body),
    )
        .into_response())
}

/// Text shown to participants (the consent page names the app) holds no control characters
/// and no bidirectional overrides, which could make one app's name read as another's.
fn check_display_text(field: &str, text: &str) -> Result<(), OAuthError> {
    let bidi = |c: char| matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    match text.chars().find(|&c| c.is_control() || bidi(c)) {
        Some(c) => Err(bad_metadata(format!(
            "{field} holds the character U+{:04X}; control characters and bidirectional overrides are not allowed in text shown to participants",
            c as u32
        ))),
        None => Ok(()),
    }
}

fn parse_metadata(m: &Map<String, Value>, client_id: &str) -> Result<Client, OAuthError> {
    let client_name = match m.get("client_name") {
        None | Some(Value::Null) => client_id.to_string(),
        Some(Value::String(name)) if !name.trim().is_empty() => {
            check_metadata_len("client_name", name.trim(), MAX_CLIENT_NAME)?;
            check_display_text("client_name", name.trim())?;
            name.trim().to_string()
        }
        Some(_) => return Err(bad_metadata("client_name must be a non-empty string")),
    };
    // A backend service (client_credentials and no authorization_code) defaults to
    // system/*.rs, any other client to the seed's patient scopes.
    let backend_only = m
        .get("grant_types")
        .and_then(Value::as_array)
        .is_some_and(|g| {
            g.iter().any(|v| v == "client_credentials")
                && !g.iter().any(|v| v == "authorization_code")
        });
    let scope = match m.get("scope") {
        None | Some(Value::Null) if backend_only => BACKEND_SCOPE.to_string(),
        None | Some(Value::Null) => DEFAULT_SCOPE.to_string(),
        Some(Value::String(text)) => {
            let scopes = Scopes::parse_request(text).map_err(|e| bad_metadata(e.to_string()))?;
            if scopes.is_empty() {
                return Err(bad_metadata(
                    "scope is empty; ask for e.g. \"launch/patient patient/*.read offline_access\"",
                ));
            }
            scopes.to_string()
        }
        Some(_) => {
            return Err(bad_metadata(
                "scope must be one space-separated string, e.g. \"launch/patient patient/*.read\"",
            ))
        }
    };
    let token_endpoint_auth_method = match m.get("token_endpoint_auth_method") {
        None | Some(Value::Null) => "client_secret_basic".to_string(),
        Some(Value::String(method)) if AUTH_METHODS.contains(&method.as_str()) => method.clone(),
        Some(other) => {
            return Err(bad_metadata(format!(
                "token_endpoint_auth_method {} is not supported; use one of {}",
                shorten(&other.to_string()),
                AUTH_METHODS.join(", ")
            )))
        }
    };
    let grant_types = match m.get("grant_types") {
        None | Some(Value::Null) => DEFAULT_GRANT_TYPES.iter().map(|g| g.to_string()).collect(),
        Some(value) => {
            let mut kept: Vec<String> = Vec::new();
            for g in string_list(value, "grant_types")? {
                if !GRANT_TYPES.contains(&g.as_str()) {
                    return Err(bad_metadata(format!(
                        "grant type {:?} is not supported; use {}",
                        shorten(&g),
                        GRANT_TYPES.join(", ")
                    )));
                }
                // Each once, whatever was sent: the list kept is at most the supported ones.
                if !kept.contains(&g) {
                    kept.push(g);
                }
            }
            kept
        }
    };
    let has = |grant: &str| grant_types.iter().any(|g| g == grant);
    // A backend service never sends anyone to authorize: it needs no redirect URI.
    let redirect_uris = if has("authorization_code") || m.get("redirect_uris").is_some() {
        parse_redirect_uris(m.get("redirect_uris"))?
    } else {
        Vec::new()
    };
    let asymmetric = token_endpoint_auth_method == "private_key_jwt";
    if has("client_credentials") && !asymmetric {
        return Err(bad_metadata(
            "the client_credentials grant (SMART Backend Services) needs token_endpoint_auth_method private_key_jwt with jwks or jwks_uri",
        ));
    }
    let system = Scopes::parse(&scope)
        .unwrap_or_default()
        .resource_scopes()
        .any(|s| s.context == Context::System);
    if has("client_credentials") && !has("authorization_code") && !system {
        return Err(bad_metadata(
            "a backend service (client_credentials only) needs system/ scopes, e.g. system/*.rs; patient/ and user/ scopes need a person to approve",
        ));
    }
    if system && !has("client_credentials") {
        return Err(bad_metadata(
            "system/ scopes are for backend services: register grant_types [\"client_credentials\"] (with private_key_jwt), or use patient/ or user/ scopes",
        ));
    }
    if let Some(value) = m.get("response_types").filter(|v| !v.is_null()) {
        if string_list(value, "response_types")?
            .iter()
            .any(|r| r != "code")
        {
            return Err(bad_metadata("the only response type is \"code\""));
        }
    }
    let mut extra = Map::new();
    for (key, limit) in ECHOED_STRINGS {
        match m.get(*key) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => {
                check_metadata_len(key, s, *limit)?;
                extra.insert(key.to_string(), Value::String(s.clone()));
            }
            Some(_) => return Err(bad_metadata(format!("{key} must be a string"))),
        }
    }
    // URIs for what this server does not do yet (jwks_uri, …) are not kept, but are held to
    // the same limit, ready for the day they are.
    for key in METADATA_URIS {
        match m.get(*key) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => check_metadata_len(key, s, MAX_URI)?,
            Some(_) => return Err(bad_metadata(format!("{key} must be a string"))),
        }
    }
    keys(m, asymmetric, &mut extra)?;
    if let Some(uri) = m.get("initiate_login_uri").filter(|v| !v.is_null()) {
        let uri = uri
            .as_str()
            .ok_or_else(|| bad_metadata("initiate_login_uri must be a string"))?;
        check_launch_uri(uri)?;
        extra.insert("initiate_login_uri".to_string(), json!(uri));
    }
    if let Some(contacts) = m.get("contacts").filter(|v| !v.is_null()) {
        let contacts = string_list(contacts, "contacts")?;
        let (most, longest) = MAX_CONTACTS;
        if contacts.len() > most {
            return Err(bad_metadata(format!(
                "contacts has {} entries; at most {most} are allowed",
                contacts.len()
            )));
        }
        for contact in &contacts {
            check_metadata_len("each contact", contact, longest)?;
        }
        extra.insert("contacts".to_string(), json!(contacts));
    }
    Ok(Client {
        client_id: client_id.to_string(),
        secret_sha256: None,
        client_name,
        redirect_uris,
        scope,
        token_endpoint_auth_method,
        grant_types,
        issued_at: clock::now(),
        extra,
    })
}

/// A `private_key_jwt` client's `jwks` or `jwks_uri` (exactly one), checked and kept.
fn keys(
    m: &Map<String, Value>,
    asymmetric: bool,
    extra: &mut Map<String, Value>,
) -> Result<(), OAuthError> {
    let jwks = m.get("jwks").filter(|v| !v.is_null());
    let jwks_uri = m.get("jwks_uri").filter(|v| !v.is_null());
    match (asymmetric, jwks, jwks_uri) {
        (false, None, None) => Ok(()),
        (false, _, _) => Err(bad_metadata(
            "jwks and jwks_uri are for clients with token_endpoint_auth_method private_key_jwt",
        )),
        (true, None, None) => Err(bad_metadata(
            "a private_key_jwt client registers its public keys: jwks (a JWK Set) or jwks_uri",
        )),
        (true, Some(_), Some(_)) => Err(bad_metadata(
            "give jwks or jwks_uri, not both (RFC 7591 §2)",
        )),
        (true, Some(set), None) => {
            client_keys::check_jwks(set).map_err(bad_metadata)?;
            extra.insert("jwks".to_string(), set.clone());
            Ok(())
        }
        (true, None, Some(uri)) => {
            let uri = uri
                .as_str()
                .ok_or_else(|| bad_metadata("jwks_uri must be a string"))?;
            client_keys::check_jwks_uri(uri).map_err(bad_metadata)?;
            extra.insert("jwks_uri".to_string(), Value::String(uri.to_string()));
            Ok(())
        }
    }
}

/// OpenID Connect Registration's `initiate_login_uri`, the app's launch URL for EHR
/// launches: https, or http on a loopback host (a developer's machine); no fragment, since
/// the EHR appends `?iss=…&launch=…`.
fn check_launch_uri(uri: &str) -> Result<(), OAuthError> {
    let parsed = url::Url::parse(uri).map_err(|e| {
        bad_metadata(format!(
            "initiate_login_uri {uri:?} is not an absolute URL: {e}"
        ))
    })?;
    let loopback = match parsed.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match parsed.scheme() {
        "https" if parsed.host().is_some() => {}
        "http" if loopback => {}
        _ => {
            return Err(bad_metadata(format!(
                "initiate_login_uri {uri:?} must be https, or http on localhost/127.0.0.1/[::1]"
            )))
        }
    }
    if parsed.fragment().is_some() {
        return Err(bad_metadata(
            "initiate_login_uri must not have a #fragment (the EHR adds iss and launch to its query)",
        ));
    }
    Ok(())
}

/// A JSON array of strings, or `invalid_client_metadata` naming the field.
pub(super) fn string_list(value: &Value, field: &str) -> Result<Vec<String>, OAuthError> {
    let items = value
        .as_array()
        .ok_or_else(|| bad_metadata(format!("{field} must be an array of strings")))?;
    items
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| bad_metadata(format!("{field} must be an array of strings")))
        })
        .collect()
}

/// The first characters of a value too long to echo whole.
fn shorten(value: &str) -> String {
    let mut short: String = value.chars().take(64).collect();
    if short.len() < value.len() {
        short.push('…');
    }
    short
}
