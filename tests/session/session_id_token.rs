//! OpenID Connect in the helper commands: the nonce `authorize` sends, and `id-token`
//! verifying an id_token from another issuer (a small OpenID Provider of the test's own:
//! a discovery document and a JWKS served over HTTP, tokens it signs with its RSA key).

use std::sync::Arc;
use std::thread::JoinHandle;

use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{json, Value};

use crate::session_support::*;
use smartnb::session::{Output, Table};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// An issuer on a free port that serves its openid-configuration and JWKS until dropped.
struct Issuer {
    url: String,
    key: EncodingKey,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl Issuer {
    fn start() -> Issuer {
        let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        let pem = private.to_pkcs1_pem(rsa::pkcs1::LineEnding::LF).unwrap();
        let key = EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let url = format!(
            "http://127.0.0.1:{}",
            server.server_addr().to_ip().unwrap().port()
        );
        let config = json!({
            "issuer": url,
            "authorization_endpoint": format!("{url}/authorize"),
            "token_endpoint": format!("{url}/token"),
            "jwks_uri": format!("{url}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        });
        let jwks = json!({"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": "test-key",
            "n": b64(&private.n().to_bytes_be()), "e": b64(&private.e().to_bytes_be())}]});
        let serving = server.clone();
        let thread = std::thread::spawn(move || {
            for request in serving.incoming_requests() {
                let body = match request.url() {
                    "/.well-known/openid-configuration" => Some(&config),
                    "/jwks" => Some(&jwks),
                    _ => None,
                };
                let header =
                    tiny_http::Header::from_bytes("Content-Type", "application/json").unwrap();
                let response = match body {
                    Some(doc) => {
                        tiny_http::Response::from_string(doc.to_string()).with_header(header)
                    }
                    None => tiny_http::Response::from_string("{}")
                        .with_header(header)
                        .with_status_code(404),
                };
                let _ = request.respond(response);
            }
        });
        Issuer {
            url,
            key,
            server,
            thread: Some(thread),
        }
    }

    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("test-key".into());
        header.typ = Some("JWT".into());
        encode(&header, claims, &self.key).unwrap()
    }
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The check rows of an `id-token` run: (check, result, detail).
fn checks(outputs: &[Output]) -> Vec<(String, String, String)> {
    let table: &Table = tables(outputs)
        .into_iter()
        .find(|t| t.columns.first().map(String::as_str) == Some("check"))
        .expect("id-token shows its checks");
    table
        .rows
        .iter()
        .map(|r| (r[0].clone(), r[1].clone(), r[2].clone()))
        .collect()
}

fn result_of<'c>(rows: &'c [(String, String, String)], check: &str) -> &'c str {
    rows.iter()
        .find(|(c, _, _)| c == check)
        .map(|(_, r, _)| r.as_str())
        .unwrap_or_else(|| panic!("no check {check:?} in {rows:#?}"))
}

#[test]
fn authorize_sends_a_nonce_only_when_openid_is_asked_for() {
    let mut s = session();
    register_fake_app(&mut s);
    let out = ok(
        &mut s,
        r#"authorize --scope "openid fhirUser launch/patient patient/*.read""#,
    );
    let params = link_params(&out);
    let nonce = var(&s, "nonce");
    assert!(nonce.len() >= 32, "{nonce}");
    assert_eq!(param(&params, "nonce"), Some(nonce.as_str()));

    let out = ok(&mut s, r#"authorize --scope "openid fhirUser""#);
    assert_ne!(param(&link_params(&out), "nonce"), Some(nonce.as_str()));

    let out = ok(
        &mut s,
        r#"authorize --scope "launch/patient patient/*.read""#,
    );
    assert_eq!(param(&link_params(&out), "nonce"), None);
    assert!(!bound(&s, "nonce"), "a stale $nonce stays bound");

    let out = ok(
        &mut s,
        r#"authorize --scope "openid profile" --nonce my-nonce-1"#,
    );
    assert_eq!(param(&link_params(&out), "nonce"), Some("my-nonce-1"));
    assert_eq!(var(&s, "nonce"), "my-nonce-1");
}

#[test]
fn id_token_refuses_what_is_not_a_jwt_and_says_where_one_comes_from() {
    let mut s = session();
    let error = fails(&mut s, "id-token");
    assert_eq!(error.kind, "UndefinedVariable");
    assert!(error.hint.unwrap().contains("openid"));
    let error = fails(&mut s, "id-token not-a-token");
    assert_eq!(error.kind, "NotAJwt");
    assert!(error.message.contains("opaque"), "{error}");
    assert!(error.hint.unwrap().contains("$id_token"));
}

#[test]
fn a_token_from_another_issuer_is_verified_with_its_keys_and_flagged() {
    let issuer = Issuer::start();
    let mut s = session();
    ok(&mut s, "set client_id app-1");
    ok(&mut s, "set nonce n-42");
    let now = smartnb::server::clock::now();
    let claims = json!({"iss": issuer.url, "sub": "someone", "aud": "app-1", "exp": now + 3599,
        "iat": now - 5, "auth_time": now - 65, "nonce": "n-42"});
    let (_, out) = run(&mut s, &format!("id-token {}", issuer.sign(&claims)));
    let rows = checks(&out);
    for check in [
        "alg is RS256",
        "kid found in JWKS",
        "signature verifies",
        "iss is the issuer",
        "aud is our client",
        "not expired",
        "iat is not in the future",
        "nonce matches",
    ] {
        assert_eq!(result_of(&rows, check), "passed", "{rows:#?}");
    }
    assert_eq!(result_of(&rows, "issuer is the target server"), "FAILED");
    assert_eq!(result_of(&rows, "fhirUser resolves"), "not checked");
    assert!(
        notes(&out).iter().any(|n| n.contains(&issuer.url)),
        "{out:#?}"
    );
    let error = errors(&out)[0];
    assert_eq!(error.kind, "IdTokenInvalid");
    assert!(
        error.message.starts_with("1 of ")
            && error.message.ends_with("issuer is the target server"),
        "{error}"
    );
    let claims_table = tables(&out)[0];
    let exp = claims_table.rows.iter().find(|r| r[1] == "exp").unwrap();
    assert!(exp[3].ends_with("expires in 59 min"), "{exp:?}");
    let auth_time = claims_table
        .rows
        .iter()
        .find(|r| r[1] == "auth_time")
        .unwrap();
    assert!(
        auth_time[3].ends_with("signed in 1 min ago"),
        "{auth_time:?}"
    );

    // The same issuer's token, altered and for another client: each shows as its row.
    let mut other = claims.clone();
    other["aud"] = json!("app-2");
    other["nonce"] = json!("n-43");
    let token = issuer.sign(&other);
    let (head, rest) = token.split_once('.').unwrap();
    let signature = rest.split_once('.').unwrap().1;
    let forged = format!(
        "{head}.{}.{signature}",
        b64(claims.to_string().replace("someone", "admin").as_bytes())
    );
    let (_, out) = run(&mut s, &format!("id-token {token}"));
    let rows = checks(&out);
    assert_eq!(result_of(&rows, "aud is our client"), "FAILED");
    assert_eq!(result_of(&rows, "nonce matches"), "FAILED");
    assert_eq!(result_of(&rows, "signature verifies"), "passed");
    let (_, out) = run(&mut s, &format!("id-token {forged}"));
    assert_eq!(result_of(&checks(&out), "signature verifies"), "FAILED");
}
