//! `Content-Type: application/json` on the JSON endpoints (415 otherwise), and `no-store`
//! on every route group that carries tokens or patient data.

use super::*;
use crate::common::raw::RawReply;

#[tokio::test]
async fn json_endpoints_take_only_application_json() {
    let server = start().await;
    let client_id = register_locally(server.addr).await;
    let registration = seed_registration().to_string();
    let debug = debug_body(&client_id).to_string();
    for (path, body) in [
        ("/oauth/register", &registration),
        ("/oauth/debug/token", &debug),
    ] {
        for content_type in [
            Some("text/plain"),
            Some("text/plain; charset=utf-8"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            Some("application/problem+json"),
            Some("application/json; charset=latin1"),
            Some("application/jsonp"),
            Some("json"),
            None,
        ] {
            let mut headers = Vec::new();
            if let Some(c) = content_type {
                headers.push(("Content-Type", c));
            }
            let reply = raw_to(server.addr, "POST", path, &headers, body.as_bytes()).await;
            let label = format!("{path} as {content_type:?}");
            assert_eq!(reply.status, 415, "{label}: {}", reply.text());
            let json = reply.json().expect("JSON");
            assert_eq!(json["error"], "invalid_request", "{label}");
            assert!(
                json["error_description"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("Content-Type: application/json"),
                "{label}: {json}"
            );
        }
        for content_type in [
            "application/json",
            "Application/JSON; charset=UTF-8",
            "application/json;charset=\"utf-8\"",
        ] {
            let reply = raw_to(
                server.addr,
                "POST",
                path,
                &[("Content-Type", content_type)],
                body.as_bytes(),
            )
            .await;
            assert!(
                reply.status == 200 || reply.status == 201,
                "{path} as {content_type}: {} {}",
                reply.status,
                reply.text()
            );
        }
    }
}

/// `Cache-Control: no-store` and `Pragma: no-cache`.
fn assert_no_store(reply: &RawReply, label: &str) {
    assert_eq!(
        reply.header("cache-control"),
        Some("no-store"),
        "{label}: {} {:?}",
        reply.status,
        reply.headers
    );
    assert_eq!(
        reply.header("pragma"),
        Some("no-cache"),
        "{label}: {} {:?}",
        reply.status,
        reply.headers
    );
}

#[tokio::test]
async fn every_answer_carrying_a_token_or_patient_data_says_no_store() {
    let server = start().await;
    let addr = server.addr;
    let local = format!("localhost:{}", addr.port());
    let client_id = register_locally(addr).await;
    let reply = post_json_as(addr, "/oauth/register", &local, &[], &seed_registration()).await;
    assert_no_store(&reply, "register");
    let reply = debug_token_as(addr, &local, &[], &client_id).await;
    assert_eq!(reply.status, 200);
    assert_no_store(&reply, "debug token");
    let access = reply.json().unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let bearer = format!("Bearer {access}");
    let get = |path: String, headers: Vec<(&'static str, String)>| {
        let local = local.clone();
        async move {
            let mut all: Vec<(&str, &str)> = vec![("Host", &local)];
            all.extend(headers.iter().map(|(n, v)| (*n, v.as_str())));
            raw_to(addr, "GET", &path, &all, b"").await
        }
    };
    let auth = || vec![("Authorization", bearer.clone())];
    let cases = [
        (
            "debug introspect",
            get(format!("/oauth/debug/introspect?token={access}"), vec![]).await,
        ),
        (
            "debug introspect error",
            get("/oauth/debug/introspect?token=nope".into(), vec![]).await,
        ),
        (
            "FHIR read",
            get("/api/fhir/Patient/smart-1288992".into(), auth()).await,
        ),
        (
            "FHIR search",
            get("/api/fhir/Observation?patient=smart-1288992".into(), auth()).await,
        ),
        (
            "FHIR $everything",
            get("/api/fhir/Patient/smart-1288992/$everything".into(), auth()).await,
        ),
        (
            "FHIR 401",
            get("/api/fhir/Patient/smart-1288992".into(), vec![]).await,
        ),
        (
            "FHIR 404",
            get("/api/fhir/Patient/smart-0000000".into(), auth()).await,
        ),
        (
            "open FHIR read",
            get("/api/open-fhir/Patient/smart-1288992".into(), vec![]).await,
        ),
        (
            "open FHIR search",
            get("/api/open-fhir/Condition".into(), vec![]).await,
        ),
        ("login page", get("/login".into(), vec![]).await),
        ("apps, signed out", get("/apps".into(), vec![]).await),
        (
            "consent, no request",
            get("/oauth/consent".into(), vec![]).await,
        ),
        (
            "authorize error page",
            get("/oauth/authorize?client_id=nope".into(), vec![]).await,
        ),
    ];
    for (label, reply) in &cases {
        assert!(reply.status < 500, "{label}");
        assert_no_store(reply, label);
    }
    let form = |body: &str| {
        let local = local.clone();
        let body = body.to_string();
        async move {
            let headers = [
                ("Host", local.as_str()),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ];
            raw_to(addr, "POST", "/oauth/introspect", &headers, body.as_bytes()).await
        }
    };
    let reply = form(&format!("token={access}&client_id={client_id}")).await;
    assert_no_store(&reply, "introspect");
    let reply = raw_to(addr, "POST", "/logout", &[("Host", &local)], b"").await;
    assert_no_store(&reply, "logout");
    // The documents that describe the server, not a patient, stay cacheable.
    for path in [
        "/api/fhir/metadata",
        "/api/open-fhir/metadata",
        "/.well-known/smart-configuration",
        "/api/fhir/.well-known/smart-configuration",
    ] {
        let reply = get(path.to_string(), vec![]).await;
        assert_eq!(reply.status, 200, "{path}");
        assert!(
            reply.header("cache-control").is_none(),
            "{path}: {:?}",
            reply.headers
        );
    }
}
