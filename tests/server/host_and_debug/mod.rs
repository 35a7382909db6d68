//! Who reaches the server: the Host check on every route (DNS rebinding gets 421), the debug
//! endpoints only for a loopback peer naming a loopback Host with the port and no proxy in
//! between, JSON endpoints only with `Content-Type: application/json`, and no-store on
//! every answer carrying a token or patient data.

mod bodies_and_caching;
mod debug_access;
mod decision;
mod hosts;
mod second_look;

use std::net::SocketAddr;

use crate::common::raw::{self, RawReply};
use crate::common::*;
use serde_json::{json, Value};

pub const REBIND: &str = "rebind.attacker.example";

/// A request to try: method, target, extra headers, body.
pub type Route = (
    &'static str,
    String,
    Vec<(&'static str, &'static str)>,
    Vec<u8>,
);

/// A raw request to the server with this Host and extra headers.
pub async fn raw_to(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawReply {
    raw::send(addr, raw::request(method, path, headers, body)).await
}

/// POST a JSON body with this Host (and extra headers).
pub async fn post_json_as(
    addr: SocketAddr,
    path: &str,
    host: &str,
    extra: &[(&str, &str)],
    body: &Value,
) -> RawReply {
    let mut headers = vec![("Host", host), ("Content-Type", "application/json")];
    headers.extend_from_slice(extra);
    raw_to(addr, "POST", path, &headers, body.to_string().as_bytes()).await
}

/// POST /oauth/debug/token for this client with this Host (and extra headers).
pub async fn debug_token_as(
    addr: SocketAddr,
    host: &str,
    extra: &[(&str, &str)],
    client_id: &str,
) -> RawReply {
    post_json_as(
        addr,
        "/oauth/debug/token",
        host,
        extra,
        &debug_body(client_id),
    )
    .await
}

pub fn seed_registration() -> Value {
    json!({
        "client_name": "Host test",
        "redirect_uris": [SEED_REDIRECT],
        "scope": SEED_SCOPE,
    })
}

/// Register through the loopback name, whatever the public URL; the client id.
pub async fn register_locally(addr: SocketAddr) -> String {
    let host = format!("localhost:{}", addr.port());
    let reply = post_json_as(addr, "/oauth/register", &host, &[], &seed_registration()).await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    let json = reply.json().expect("JSON");
    json["client_id"].as_str().expect("client_id").to_string()
}

pub fn debug_body(client_id: &str) -> Value {
    json!({"client_id": client_id, "username": DANIEL, "patient_id": DANIEL_PATIENT})
}

/// A 403 `access_denied` whose description contains `rule`.
pub fn assert_debug_refused(reply: &RawReply, rule: &str, label: &str) {
    assert_eq!(reply.status, 403, "{label}: {}", reply.text());
    let json = reply
        .json()
        .unwrap_or_else(|| panic!("{label}: {}", reply.text()));
    assert_eq!(json["error"], "access_denied", "{label}: {json}");
    let description = json["error_description"].as_str().unwrap_or_default();
    assert!(
        description.contains(rule),
        "{label}: {description:?} does not name {rule:?}"
    );
    assert!(json.get("access_token").is_none(), "{label}");
}

/// A 421 naming the host and the two ways out.
pub fn assert_misdirected(reply: &RawReply, host: &str, label: &str) {
    assert_eq!(reply.status, 421, "{label}: {}", reply.text());
    let json = reply
        .json()
        .unwrap_or_else(|| panic!("{label}: {}", reply.text()));
    assert_eq!(json["error"], "invalid_request", "{label}: {json}");
    let description = json["error_description"].as_str().unwrap_or_default();
    for needle in [host, "--public-url", "--allow-any-host"] {
        assert!(
            description.contains(needle),
            "{label}: {description:?} lacks {needle:?}"
        );
    }
}
