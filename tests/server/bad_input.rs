//! Malformed requests of every kind: each gets a 4xx with a JSON reason, none a 5xx, and the
//! server goes on answering afterwards.

use crate::common::raw::{self, RawReply};
use crate::common::*;

/// One malformed request: a label, then method, raw target, content type and body.
struct Case {
    label: &'static str,
    method: &'static str,
    target: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
}

fn case(label: &'static str, method: &'static str, target: &str) -> Case {
    Case {
        label,
        method,
        target: target.to_string(),
        content_type: None,
        body: Vec::new(),
    }
}

fn post(label: &'static str, target: &str, content_type: &'static str, body: &[u8]) -> Case {
    Case {
        label,
        method: "POST",
        target: target.to_string(),
        content_type: Some(content_type),
        body: body.to_vec(),
    }
}

fn bad_bodies() -> Vec<Case> {
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let huge = format!("{{\"client_name\": \"{}\"}}", "z".repeat(200 * 1024));
    let mut cases = Vec::new();
    for target in ["/oauth/register", "/oauth/debug/token"] {
        cases.extend([
            post(
                "truncated JSON",
                target,
                "application/json",
                b"{\"client_name\":",
            ),
            post("JSON null", target, "application/json", b"null"),
            post("JSON number", target, "application/json", b"42"),
            post("JSON string", target, "application/json", b"\"hello\""),
            post("JSON array", target, "application/json", b"[]"),
            post("trailing garbage", target, "application/json", b"{} {}"),
            post("NUL bytes", target, "application/json", b"\0\0\0\0"),
            post("not UTF-8", target, "application/json", b"\xff\xfe\xfd"),
            post(
                "number out of range",
                target,
                "application/json",
                b"{\"access_lifetime\": 1e999}",
            ),
            post(
                "form body",
                target,
                "application/x-www-form-urlencoded",
                b"a=b&c=d",
            ),
            post("plain text", target, "text/plain", b"register me please"),
            post(
                "XML",
                target,
                "application/xml",
                b"<client><name>x</name></client>",
            ),
            post("empty body", target, "application/json", b""),
            post("deeply nested", target, "application/json", deep.as_bytes()),
            post("over 64 KiB", target, "application/json", huge.as_bytes()),
        ]);
    }
    cases
}

fn bad_targets() -> Vec<Case> {
    vec![
        case("%zz in a FHIR id", "GET", "/api/open-fhir/Patient/%zz"),
        case("%zz in a FHIR type", "GET", "/api/open-fhir/%zz"),
        case(
            "%ff%fe in a FHIR id",
            "GET",
            "/api/open-fhir/Patient/%ff%fe",
        ),
        case("%ff%fe in a FHIR type", "GET", "/api/open-fhir/%ff%fe/x"),
        case("%ff%fe protected", "GET", "/api/fhir/Patient/%ff%fe"),
        case(
            "%zz in a query name",
            "GET",
            "/api/open-fhir/Observation?%zz=1",
        ),
        case(
            "%zz in a query value",
            "GET",
            "/api/open-fhir/Observation?patient=%zz",
        ),
        case(
            "%ff%fe in a query",
            "GET",
            "/api/open-fhir/Observation?code=%ff%fe",
        ),
        case(
            "%ff%fe as the query name",
            "GET",
            "/api/open-fhir/Observation?%ff%fe=1",
        ),
        case("bad _count", "GET", "/api/open-fhir/Observation?_count=%zz"),
        case(
            "huge _count",
            "GET",
            "/api/open-fhir/Observation?_count=99999999999999999999999",
        ),
        case(
            "huge _offset",
            "GET",
            "/api/open-fhir/Observation?_offset=99999999999999999999999",
        ),
        case("bad date", "GET", "/api/open-fhir/Observation?date=ge%ff"),
        case(
            "bad date instant",
            "GET",
            "/api/open-fhir/Observation?date=ge2018-13-45T99:99:99Z",
        ),
        case(
            "bad format on metadata",
            "GET",
            "/api/fhir/metadata?_format=%ff",
        ),
        case(
            "unknown reads parameter",
            "GET",
            "/api/open-fhir/Patient/smart-1288992?x=%zz",
        ),
        case(
            "introspect %ff%fe",
            "GET",
            "/oauth/debug/introspect?token=%ff%fe",
        ),
        case("introspect %zz", "GET", "/oauth/debug/introspect?token=%zz"),
        case("unknown root path", "GET", "/nope"),
        case("unknown api path", "GET", "/api/nope"),
        case("unknown oauth path", "GET", "/oauth/nope"),
        case(
            "unknown operation",
            "GET",
            "/api/open-fhir/Patient/smart-1288992/$nope",
        ),
        case(
            "operation on a non-patient",
            "GET",
            "/api/open-fhir/Observation/x/$everything",
        ),
        case(
            "too deep",
            "GET",
            "/api/open-fhir/Patient/smart-1288992/$everything/x/y",
        ),
        case("%ff%fe at the root", "GET", "/%ff%fe"),
        case("a NUL in the path", "GET", "/api/open-fhir/Patient/%00"),
    ]
}

fn wrong_methods() -> Vec<Case> {
    vec![
        case("GET register", "GET", "/oauth/register"),
        case("PUT register", "PUT", "/oauth/register"),
        case("DELETE register", "DELETE", "/oauth/register"),
        case("GET debug token", "GET", "/oauth/debug/token"),
        case("POST introspect", "POST", "/oauth/debug/introspect"),
        case("POST metadata", "POST", "/api/fhir/metadata"),
        case(
            "DELETE a patient",
            "DELETE",
            "/api/fhir/Patient/smart-1288992",
        ),
        case(
            "PUT a patient",
            "PUT",
            "/api/open-fhir/Patient/smart-1288992",
        ),
        case("POST a search", "POST", "/api/open-fhir/Observation"),
        case(
            "PATCH an operation",
            "PATCH",
            "/api/fhir/Patient/smart-1288992/$everything",
        ),
        case("POST discovery", "POST", "/.well-known/smart-configuration"),
        case("made-up method", "BREW", "/api/fhir/metadata"),
    ]
}

/// A 4xx with a JSON body that says why: an OAuth error or an OperationOutcome.
fn assert_explained_4xx(reply: &RawReply, label: &str) {
    assert!(
        (400..500).contains(&reply.status),
        "{label}: {} {}",
        reply.status,
        reply.text()
    );
    let content_type = reply.header("content-type").unwrap_or_default();
    assert!(
        content_type.contains("json"),
        "{label}: content type {content_type:?}"
    );
    let json = reply
        .json()
        .unwrap_or_else(|| panic!("{label}: body is not JSON: {:?}", reply.text()));
    let oauth = json["error"].as_str().is_some_and(|e| !e.is_empty())
        && json["error_description"]
            .as_str()
            .is_some_and(|d| !d.trim().is_empty());
    let outcome = json["resourceType"] == "OperationOutcome"
        && json["issue"][0]["diagnostics"]
            .as_str()
            .is_some_and(|d| !d.trim().is_empty());
    assert!(oauth || outcome, "{label}: no reason given: {json}");
}

async fn send(server: &TestServer, case: &Case) -> RawReply {
    let mut headers = Vec::new();
    if let Some(content_type) = case.content_type {
        headers.push(("Content-Type", content_type));
    }
    let request = raw::request(case.method, &case.target, &headers, &case.body);
    raw::send(server.addr, request).await
}

async fn assert_still_answering(server: &TestServer) {
    assert_eq!(server.get(&server.fhir("/metadata")).await.status, 200);
    let client = server.register(SEED_SCOPE).await;
    let tokens = server
        .mint(
            client["client_id"].as_str().unwrap(),
            DANIEL,
            DANIEL_PATIENT,
        )
        .await;
    let reply = server
        .get_bearer(&server.fhir("/Patient/smart-1288992"), &tokens.access)
        .await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn malformed_bodies_get_a_4xx_with_a_json_reason() {
    let server = start().await;
    for case in bad_bodies() {
        let label = format!("{} to {}", case.label, case.target);
        let reply = send(&server, &case).await;
        assert_explained_4xx(&reply, &label);
        if case.label == "over 64 KiB" {
            assert_eq!(reply.status, 413, "{label}");
        } else if case.content_type != Some("application/json") {
            assert_eq!(reply.status, 415, "{label}: {}", reply.text());
        } else {
            assert_eq!(reply.status, 400, "{label}: {}", reply.text());
        }
    }
    assert_still_answering(&server).await;
}

#[tokio::test]
async fn bad_percent_encoding_and_unknown_paths_get_a_4xx_with_a_json_reason() {
    let server = start().await;
    for case in bad_targets() {
        let reply = send(&server, &case).await;
        assert_explained_4xx(&reply, case.label);
    }
    assert_still_answering(&server).await;
}

#[tokio::test]
async fn wrong_methods_get_a_4xx_with_a_json_reason() {
    let server = start().await;
    for case in wrong_methods() {
        let reply = send(&server, &case).await;
        assert_explained_4xx(&reply, case.label);
        if case.method != "BREW" {
            assert_eq!(reply.status, 405, "{}", case.label);
            let allow = reply.header("allow").unwrap_or_default();
            assert!(
                !allow.is_empty(),
                "{}: a 405 names the allowed methods",
                case.label
            );
            assert!(
                !allow.contains(case.method),
                "{}: Allow {allow:?}",
                case.label
            );
        }
    }
    assert_still_answering(&server).await;
}

#[tokio::test]
async fn a_burst_of_bad_requests_on_one_server_leaves_it_answering() {
    let server = start().await;
    let all: Vec<Case> = bad_bodies()
        .into_iter()
        .chain(bad_targets())
        .chain(wrong_methods())
        .collect();
    let replies = futures_join(&server, &all).await;
    for (case, reply) in all.iter().zip(&replies) {
        assert!(reply.status < 500, "{}: {}", case.label, reply.status);
    }
    assert_still_answering(&server).await;
}

/// Send every case concurrently, one connection each.
async fn futures_join(server: &TestServer, cases: &[Case]) -> Vec<RawReply> {
    let handles: Vec<_> = cases
        .iter()
        .map(|case| {
            let mut headers = Vec::new();
            if let Some(content_type) = case.content_type {
                headers.push(("Content-Type", content_type));
            }
            let request = raw::request(case.method, &case.target, &headers, &case.body);
            tokio::spawn(raw::send(server.addr, request))
        })
        .collect();
    let mut replies = Vec::new();
    for handle in handles {
        replies.push(handle.await.expect("the request task finishes"));
    }
    replies
}
