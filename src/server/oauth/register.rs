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

use super::{json_object, new_secret, sha256, store_failed};

/// The scope the seed walkthrough registers with, used when a client names none.
pub const DEFAULT_SCOPE: &str = "launch/patient patient/*.read offline_access";

const AUTH_METHODS: &[&str] = &["client_secret_basic", "client_secret_post", "none"];
const GRANT_TYPES: &[&str] = &["authorization_code", "refresh_token"];
/// Optional RFC 7591 string metadata, echoed back when given.
const ECHOED_STRINGS: &[&str] = &[
    "client_uri",
    "logo_uri",
    "tos_uri",
    "policy_uri",
    "software_id",
    "software_version",
];

fn bad_metadata(description: impl Into<String>) -> OAuthError {
    OAuthError::bad_request("invalid_client_metadata", description)
}

fn bad_redirect(description: impl Into<String>) -> OAuthError {
    OAuthError::bad_request("invalid_redirect_uri", description)
}

/// Register a client. Metadata the server does not understand is ignored, as RFC 7591 §2
/// requires; metadata it does understand is checked strictly.
pub async fn register(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OAuthError> {
    let metadata = json_object(&headers, body)?;
    let client_id = new_secret();
    let mut client = parse_metadata(&metadata, &client_id)?;
    let secret = (client.token_endpoint_auth_method != "none").then(new_secret);
    client.secret_sha256 = secret.as_deref().map(sha256);
    state
        .store
        .insert_client(client.clone())
        .await
        .map_err(store_failed)?;
    let mut body = json!({
        "client_id": client.client_id,
        "client_id_issued_at": client.issued_at,
        "client_secret_expires_at": 0,
        "client_name": client.client_name,
        "redirect_uris": client.redirect_uris,
        "scope": client.scope,
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "grant_types": client.grant_types,
        "response_types": ["code"],
    });
    if let Some(secret) = secret {
        body["client_secret"] = Value::String(secret);
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

fn parse_metadata(m: &Map<String, Value>, client_id: &str) -> Result<Client, OAuthError> {
    let redirect_uris = parse_redirect_uris(m.get("redirect_uris"))?;
    let client_name = match m.get("client_name") {
        None | Some(Value::Null) => client_id.to_string(),
        Some(Value::String(name)) if !name.trim().is_empty() => name.trim().to_string(),
        Some(_) => return Err(bad_metadata("client_name must be a non-empty string")),
    };
    let scope = match m.get("scope") {
        None | Some(Value::Null) => DEFAULT_SCOPE.to_string(),
        Some(Value::String(text)) => {
            let scopes = Scopes::parse(text).map_err(|e| bad_metadata(e.to_string()))?;
            if scopes.is_empty() {
                return Err(bad_metadata(
                    "scope is empty; ask for e.g. \"launch/patient patient/*.read offline_access\"",
                ));
            }
            if scopes
                .resource_scopes()
                .any(|s| s.context == Context::System)
            {
                return Err(bad_metadata("system/ scopes need the client_credentials grant, which this server does not offer; use patient/ or user/ scopes"));
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
                "token_endpoint_auth_method {other} is not supported; use one of {}",
                AUTH_METHODS.join(", ")
            )))
        }
    };
    let grant_types = match m.get("grant_types") {
        None | Some(Value::Null) => GRANT_TYPES.iter().map(|g| g.to_string()).collect(),
        Some(value) => string_list(value, "grant_types")?
            .into_iter()
            .map(|g| {
                if GRANT_TYPES.contains(&g.as_str()) {
                    Ok(g)
                } else {
                    Err(bad_metadata(format!("grant type {g:?} is not supported; use authorization_code and refresh_token")))
                }
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    if let Some(value) = m.get("response_types").filter(|v| !v.is_null()) {
        if string_list(value, "response_types")?
            .iter()
            .any(|r| r != "code")
        {
            return Err(bad_metadata("the only response type is \"code\""));
        }
    }
    let mut extra = Map::new();
    for key in ECHOED_STRINGS {
        match m.get(*key) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => {
                extra.insert(key.to_string(), Value::String(s.clone()));
            }
            Some(_) => return Err(bad_metadata(format!("{key} must be a string"))),
        }
    }
    if let Some(contacts) = m.get("contacts").filter(|v| !v.is_null()) {
        extra.insert(
            "contacts".to_string(),
            json!(string_list(contacts, "contacts")?),
        );
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

fn string_list(value: &Value, field: &str) -> Result<Vec<String>, OAuthError> {
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

fn parse_redirect_uris(value: Option<&Value>) -> Result<Vec<String>, OAuthError> {
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
    for uri in &uris {
        // The URL parser forgives spaces, tabs, newlines and backslashes by cleaning them up,
        // but the URI is stored and compared as sent and must fit in a Location header.
        if !uri.bytes().all(is_uri_byte) {
            return Err(bad_redirect(format!(
                "redirect URI {uri:?} has spaces, control characters, non-ASCII or characters such as \\ < > {{ }} that a URI cannot contain (RFC 3986); percent-encode them"
            )));
        }
        let parsed = url::Url::parse(uri).map_err(|_| {
            bad_redirect(format!("redirect URI {uri:?} is not an absolute URI with a scheme such as http:// or https://"))
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
        if matches!(
            parsed.scheme(),
            "javascript" | "data" | "file" | "vbscript" | "mailto"
        ) {
            return Err(bad_redirect(format!(
                "redirect URI {uri:?} uses the {} scheme, which cannot receive a code safely",
                parsed.scheme()
            )));
        }
        if matches!(parsed.scheme(), "http" | "https")
            && parsed.host_str().is_none_or(str::is_empty)
        {
            return Err(bad_redirect(format!("redirect URI {uri:?} has no host")));
        }
    }
    Ok(uris)
}

/// A byte RFC 3986 allows somewhere in a URI (printable ASCII, less what it excludes).
fn is_uri_byte(b: u8) -> bool {
    b.is_ascii_graphic() && !b"\"<>\\^`{|}".contains(&b)
}
