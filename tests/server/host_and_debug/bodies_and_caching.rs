//! `Content-Type: application/json` on the JSON endpoints (415 otherwise).

use super::*;

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
