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
use smartnb::session::{Output, Session, Table};

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

const OIDC_SCOPE: &str = "openid fhirUser launch/patient patient/*.read offline_access";

/// A client registered for the identity scopes, signed in as `who` through the portal's
/// pages and exchanged; the outputs of `exchange`.
fn signed_in(s: &mut Session, who: &str) -> Vec<Output> {
    let out = ok(
        s,
        &format!(r#"register --scope "{OIDC_SCOPE}" --redirect-uri http://not-a-real-site"#),
    );
    assert_eq!(statuses(&out), [201]);
    ok(
        s,
        &format!(r#"authorize --scope "{OIDC_SCOPE}" --as {who}"#),
    );
    let out = ok(s, "exchange");
    assert_eq!(statuses(&out), [200]);
    out
}

fn detail_of<'c>(rows: &'c [(String, String, String)], check: &str) -> &'c str {
    rows.iter()
        .find(|(c, _, _)| c == check)
        .map(|(_, _, d)| d.as_str())
        .unwrap_or_else(|| panic!("no check {check:?} in {rows:#?}"))
}

fn claim<'t>(outputs: &'t [Output], name: &str) -> &'t str {
    tables(outputs)[0]
        .rows
        .iter()
        .find(|r| r[0] == "claim" && r[1] == name)
        .map(|r| r[2].as_str())
        .unwrap_or_else(|| panic!("no claim {name}: {outputs:#?}"))
}

#[test]
fn daniel_adams_signs_in_and_his_id_tokens_verify_before_and_after_a_refresh() {
    let mut s = session();
    let out = signed_in(&mut s, "daniel-adams:demo-password --patient smart-1288992");
    assert!(
        !texts(&out).iter().any(|t| t.contains("Warning")),
        "{out:#?}"
    );
    let first = var(&s, "id_token");
    assert_eq!(the_json(&out)["id_token"], first.as_str());

    let out = ok(&mut s, "id-token");
    let rows = checks(&out);
    assert!(
        rows.iter().all(|(_, r, _)| r == "passed"),
        "every check passes: {rows:#?}"
    );
    assert!(
        detail_of(&rows, "fhirUser resolves").starts_with("Patient/smart-1288992: Daniel"),
        "{rows:#?}"
    );
    assert!(detail_of(&rows, "fhirUser resolves").ends_with("Adams"));
    assert_eq!(claim(&out, "nonce"), var(&s, "nonce"));
    assert_eq!(claim(&out, "sub"), "daniel-adams");
    let base = s.embedded_url().unwrap().to_string();
    assert_eq!(claim(&out, "iss"), base);
    assert_eq!(
        var(&s, "fhir_user"),
        format!("{base}/api/fhir/Patient/smart-1288992")
    );
    assert!(texts(&out)
        .iter()
        .any(|t| t == &format!("All {} checks passed.", rows.len())));
    let out = ok(&mut s, "fetch $fhir_user");
    assert_eq!(statuses(&out), [200]);

    let out = ok(&mut s, "refresh");
    assert_eq!(statuses(&out), [200]);
    let second = var(&s, "id_token");
    assert_ne!(first, second, "a refresh brings a new id_token");
    let out = ok(&mut s, "id-token");
    let rows = checks(&out);
    assert!(rows.iter().all(|(_, r, _)| r == "passed"), "{rows:#?}");
    assert!(
        detail_of(&rows, "nonce matches").contains("§12.2"),
        "{rows:#?}"
    );
    assert!(!tables(&out)[0].rows.iter().any(|r| r[1] == "nonce"));
}

#[test]
fn a_chosen_nonce_is_echoed_and_a_changed_one_is_caught() {
    let mut s = session();
    ok(
        &mut s,
        &format!(r#"register --scope "{OIDC_SCOPE}" --redirect-uri http://not-a-real-site"#),
    );
    ok(
        &mut s,
        &format!(
            r#"authorize --scope "{OIDC_SCOPE}" --nonce chosen-nonce-7 --as daniel-adams:demo-password --patient smart-1288992"#
        ),
    );
    ok(&mut s, "exchange");
    let out = ok(&mut s, "id-token");
    assert_eq!(claim(&out, "nonce"), "chosen-nonce-7");

    ok(
        &mut s,
        &format!(
            r#"authorize --scope "{OIDC_SCOPE}" --as daniel-adams:demo-password --patient smart-1288992"#
        ),
    );
    ok(&mut s, "set nonce not-the-one-sent");
    let out = ok(&mut s, "exchange");
    assert!(
        texts(&out)
            .iter()
            .any(|t| t.starts_with("Warning") && t.contains("not-the-one-sent")),
        "{out:#?}"
    );
    let (_, out) = run(&mut s, "id-token");
    assert_eq!(result_of(&checks(&out), "nonce matches"), "FAILED");
    assert!(errors(&out)[0].message.ends_with("nonce matches"));
}

#[test]
fn an_answer_without_an_id_token_unbinds_the_previous_one() {
    let mut s = session();
    signed_in(&mut s, "daniel-adams:demo-password --patient smart-1288992");
    assert!(bound(&s, "id_token"));
    ok(
        &mut s,
        r#"authorize --scope "launch/patient patient/*.read" --as daniel-adams:demo-password --patient smart-1288992"#,
    );
    assert!(!bound(&s, "nonce"));
    let out = ok(&mut s, "exchange");
    assert!(the_json(&out).get("id_token").is_none());
    assert!(!bound(&s, "id_token"));
    assert!(notes(&out).iter().any(|n| n.contains("unbound")));
}

/// The fhirUser row's detail after signing in as `who` and verifying the id_token, which
/// must pass every check.
fn fhir_user_after_signing_in(who: &str) -> String {
    let mut s = session();
    signed_in(&mut s, who);
    let out = ok(&mut s, "id-token");
    let rows = checks(&out);
    assert!(rows.iter().all(|(_, r, _)| r == "passed"), "{rows:#?}");
    detail_of(&rows, "fhirUser resolves").to_string()
}

#[test]
fn a_representative_and_a_practitioner_resolve_to_their_own_resources() {
    assert_eq!(
        fhir_user_after_signing_in("daniel-adams:demo-password --patient smart-1032702"),
        "RelatedPerson/related-daniel-for-amy: Daniel Adams"
    );
    assert_eq!(
        fhir_user_after_signing_in("dr-carter:demo-password --patient smart-1081332"),
        "Practitioner/practitioner-carter: Rose Carter"
    );
}
