//! Clients with keys and backend services in the helper commands: `keys`, `register
//! --backend` / `--auth private_key_jwt`, the assertions `exchange`, `refresh` and `backend`
//! sign, `assertion`, and the Bundle table's patient column across patients.

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::session_support::*;
use smartnb::session::{Output, Session};

/// The one key of `$jwks`.
fn the_key(s: &Session) -> Value {
    let set: Value = serde_json::from_str(&var(s, "jwks")).expect("$jwks is JSON");
    let keys = set["keys"].as_array().expect("a JWK Set");
    assert_eq!(keys.len(), 1, "{set}");
    keys[0].clone()
}

/// Verify `token` with the public JWK, as the server does; its claims.
fn verified_claims(token: &str, jwk: &Value, alg: Algorithm, aud: &str) -> Value {
    let jwk: Jwk = serde_json::from_value(jwk.clone()).unwrap();
    let mut validation = Validation::new(alg);
    validation.set_audience(&[aud]);
    jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(&jwk).unwrap(), &validation)
        .expect("the assertion verifies with the registered public key")
        .claims
}

/// The rows of the `assertion` table as (part, name, value, meaning).
fn assertion_rows(out: &[Output]) -> Vec<Vec<String>> {
    tables(out)[0].rows.clone()
}

#[test]
fn keys_bind_a_public_jwk_set_and_never_show_the_private_key() {
    let mut s = session();
    assert_eq!(fails(&mut s, "keys show").kind, "NoKey");
    let out = ok(&mut s, "keys");
    let jwk = the_key(&s);
    assert_eq!(jwk["kty"], "EC");
    assert_eq!(jwk["crv"], "P-384");
    assert_eq!(jwk["alg"], "ES384");
    assert_eq!(jwk["use"], "sig");
    assert_eq!(jwk["kid"].as_str(), Some(var(&s, "kid").as_str()));
    assert!(jwk.get("d").is_none(), "the private scalar was exported");
    assert_eq!(
        jsons(&out),
        [&serde_json::from_str::<Value>(&var(&s, "jwks")).unwrap()]
    );
    let shown = ok(&mut s, "keys show");
    assert_eq!(jsons(&shown)[0]["keys"][0], jwk);

    let first = var(&s, "kid");
    let out = ok(&mut s, "keys --alg RS384");
    let rsa = the_key(&s);
    assert_eq!(
        (rsa["kty"].as_str(), rsa["alg"].as_str()),
        (Some("RSA"), Some("RS384"))
    );
    assert!(rsa.get("d").is_none() && rsa.get("p").is_none());
    assert_ne!(var(&s, "kid"), first);
    assert!(notes(&out).iter().any(|n| n.contains(&first)), "{out:#?}");

    let e = fails(&mut s, "keys --alg HS256");
    assert_eq!(e.kind, "BadValue");
    assert!(e.hint.unwrap().contains("ES384"));
    assert_eq!(fails(&mut s, "keys show --alg ES256").kind, "BadFlag");
    assert_eq!(fails(&mut s, "keys shwo").kind, "UnexpectedArgument");
}

#[test]
fn registering_with_keys_needs_keys_and_a_backend_needs_no_browser() {
    let mut s = session();
    let e = fails(&mut s, "register --auth private_key_jwt");
    assert_eq!(e.kind, "NoKey");
    assert!(e.hint.unwrap().contains("`keys`"));
    assert_eq!(fails(&mut s, "register --backend").kind, "NoKey");
    ok(&mut s, "keys");
    assert_eq!(fails(&mut s, "register --backend --public").kind, "BadFlag");
    assert_eq!(
        fails(&mut s, "register --backend --redirect-uri http://x/cb").kind,
        "BadFlag"
    );
    assert_eq!(
        fails(&mut s, "register --backend --auth client_secret_basic").kind,
        "BadFlag"
    );
    assert_eq!(
        fails(&mut s, "register --auth private_key_jwt --jwks not-json").kind,
        "BadValue"
    );
}

#[test]
fn backend_needs_a_client_registered_with_keys() {
    let mut s = session();
    register(&mut s);
    let e = fails(&mut s, "backend");
    assert_eq!(e.kind, "NotABackendClient");
    assert!(e.hint.unwrap().contains("register --backend"));
    let e = fails(&mut s, "assertion");
    assert_eq!(e.kind, "UndefinedVariable");
    assert_eq!(fails(&mut s, "assertion not-a-jwt").kind, "NotAJwt");
    ok(&mut s, "set token_endpoint_auth_method private_key_jwt");
    assert_eq!(fails(&mut s, "backend").kind, "NoKey");
    assert_eq!(fails(&mut s, "backend --replay").kind, "UndefinedVariable");
    assert_eq!(fails(&mut s, "backend --expires soon").kind, "BadValue");
    ok(&mut s, "keys");
    assert_eq!(
        fails(&mut s, "backend --replay --aud http://x").kind,
        "BadFlag"
    );
}

#[test]
fn an_assertion_names_the_client_and_the_token_endpoint_and_verifies_with_the_jwk() {
    // Signed for a client id set by hand: whatever the server answers, what was sent is
    // bound and decodes.
    let mut s = session();
    ok(&mut s, "keys --alg ES256");
    ok(&mut s, "set client_id hand-made-client");
    ok(&mut s, "set token_endpoint_auth_method private_key_jwt");
    let _ = run(&mut s, "backend --scope system/Patient.rs");
    let token = var(&s, "client_assertion");
    let base = s.embedded_url().unwrap().to_string();
    let aud = format!("{base}/oauth/token");
    let claims = verified_claims(&token, &the_key(&s), Algorithm::ES256, &aud);
    assert_eq!(claims["iss"], "hand-made-client");
    assert_eq!(claims["sub"], "hand-made-client");
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert_eq!(exp - iat, 300);
    assert_eq!(claims["jti"].as_str().map(str::len), Some(36));

    let out = ok(&mut s, "assertion");
    let rows = assertion_rows(&out);
    let row = |name: &str| rows.iter().find(|r| r[1] == name).unwrap().clone();
    assert_eq!(row("kid")[2], var(&s, "kid"));
    assert_eq!(row("typ")[2], "JWT");
    assert_eq!(row("aud")[2], aud);
    let exp_words = &row("exp")[3];
    assert!(
        exp_words.ends_with("expires in 5 min") || exp_words.ends_with("expires in 4 min"),
        "{exp_words}"
    );
    assert!(texts(&out)
        .iter()
        .any(|t| t.contains("this session's ES256 key")));
    let response = the_var_json(&s, "response");
    assert_eq!(response["claims"]["jti"], claims["jti"]);

    // Another assertion: another jti; --aud and --expires shape it.
    let _ = run(
        &mut s,
        "backend --aud http://elsewhere/token --expires -120",
    );
    let other = var(&s, "client_assertion");
    let decoded = smartnb::session::jwt::decode_unverified(&other).unwrap();
    assert_ne!(decoded.claims["jti"], claims["jti"]);
    assert_eq!(decoded.claims["aud"], "http://elsewhere/token");
    let (iat, exp) = (
        decoded.claims["iat"].as_i64().unwrap(),
        decoded.claims["exp"].as_i64().unwrap(),
    );
    assert_eq!(exp - iat, -120);
    let out = ok(&mut s, "assertion");
    let rows = assertion_rows(&out);
    assert!(rows
        .iter()
        .any(|r| r[1] == "exp" && r[3].contains("expired 2 min ago")));
}

fn the_var_json(s: &Session, name: &str) -> Value {
    s.vars().get(name).cloned().expect("bound")
}

/// A session with a backend service registered with a fresh `keys` key pair; the
/// registration's answer.
fn backend_service(alg: &str) -> (Session, Value) {
    let mut s = session();
    ok(&mut s, &format!("keys --alg {alg}"));
    let out = ok(&mut s, "register --backend");
    assert_eq!(statuses(&out), [201]);
    let reply = the_json(&out).clone();
    (s, reply)
}

#[test]
fn a_backend_service_reads_every_patients_observations_with_a_system_token() {
    let (mut s, reply) = backend_service("ES384");
    assert!(reply.get("client_secret").is_none(), "{reply}");
    assert_eq!(reply["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(
        reply["grant_types"],
        serde_json::json!(["client_credentials"])
    );
    assert_eq!(reply["jwks"]["keys"][0], the_key(&s));
    assert!(!bound(&s, "client_secret") && !bound(&s, "redirect_uri"));
    assert_eq!(var(&s, "token_endpoint_auth_method"), "private_key_jwt");

    let out = ok(&mut s, "backend");
    assert_eq!(statuses(&out), [200]);
    let token = the_json(&out);
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["scope"], "system/*.rs");
    assert!(token["expires_in"]
        .as_i64()
        .is_some_and(|e| e > 0 && e <= 300));
    assert!(token.get("refresh_token").is_none() && token.get("patient").is_none());
    assert_eq!(
        var(&s, "access_token"),
        token["access_token"].as_str().unwrap()
    );
    assert!(!bound(&s, "refresh_token") && !bound(&s, "patient"));

    let out = ok(&mut s, "fetch Observation?code=29463-7");
    assert_eq!(statuses(&out), [200]);
    let table = tables(&out)[0];
    assert_eq!(table.columns, ["resource", "patient", "date", "summary"]);
    let mut patients: Vec<&str> = table.rows.iter().map(|r| r[1].as_str()).collect();
    patients.sort();
    patients.dedup();
    assert_eq!(
        patients,
        ["smart-1032702", "smart-1081332", "smart-1288992"],
        "{table:#?}"
    );
    assert!(table.rows.iter().all(|r| r[3].starts_with("Body weight")));

    let out = ok(&mut s, "introspect");
    let looked_up = tables(&out)[0];
    assert_eq!(field(looked_up, "active"), Some("true"));
    assert_eq!(field(looked_up, "scope"), Some("system/*.rs"));
    // The debug view lists every field; a system token's patient and user are empty.
    for name in ["patient", "username"] {
        assert!(
            field(looked_up, name).is_none_or(str::is_empty),
            "{looked_up:#?}"
        );
    }
    assert!(
        !texts(&out).iter().any(|t| t.contains("keeps only a hash")),
        "a system token has no refresh token to hide: {out:#?}"
    );
}

#[test]
fn the_server_refuses_a_replayed_an_expired_and_a_misaddressed_assertion_and_says_why() {
    let (mut s, _) = backend_service("RS384");
    ok(&mut s, "backend --scope system/Observation.rs");
    for (cell, says) in [
        ("backend --replay", "jti"),
        ("backend --expires -120", "exp"),
        ("backend --expires 600", "exp"),
        ("backend --aud https://other-ehr.example/oauth/token", "aud"),
    ] {
        let before = var(&s, "access_token");
        let e = fails(&mut s, cell);
        assert_eq!(e.kind, "HttpError", "{cell}: {e}");
        assert!(
            e.message.contains("HTTP 401: invalid_client: "),
            "{cell}: {}",
            e.message
        );
        assert!(e.message.contains(says), "{cell}: {}", e.message);
        assert!(e.hint.unwrap().contains("`assertion`"), "{cell}");
        assert_eq!(
            var(&s, "access_token"),
            before,
            "{cell} changed $access_token"
        );
    }
    // A scope beyond the registration is the scope's fault, not the assertion's.
    let e = fails(&mut s, "backend --scope system/*.write");
    assert!(e.message.contains("invalid_scope"), "{e}");
}

#[test]
fn a_client_with_keys_runs_the_code_flow_and_refreshes_with_assertions() {
    let mut s = session();
    ok(&mut s, "keys --alg RS384");
    let out = ok(
        &mut s,
        "register --auth private_key_jwt --name \"Keyed App\" --redirect-uri http://not-a-real-site",
    );
    assert!(the_json(&out).get("client_secret").is_none());
    ok(&mut s, "authorize --as daniel-adams:demo-password");
    let out = ok(&mut s, "exchange");
    assert_eq!(statuses(&out), [200]);
    let first = var(&s, "client_assertion");
    let base = s.embedded_url().unwrap().to_string();
    let aud = format!("{base}/oauth/token");
    let claims = verified_claims(&first, &the_key(&s), Algorithm::RS384, &aud);
    assert_eq!(claims["iss"].as_str(), Some(var(&s, "client_id").as_str()));
    assert_eq!(statuses(&ok(&mut s, "fetch Patient/$patient")), [200]);

    let out = ok(&mut s, "refresh");
    assert_eq!(statuses(&out), [200]);
    let second = var(&s, "client_assertion");
    assert_ne!(second, first);
    let again = verified_claims(&second, &the_key(&s), Algorithm::RS384, &aud);
    assert_ne!(again["jti"], claims["jti"]);

    // A new key the server never saw: the next refresh's assertion is refused.
    ok(&mut s, "keys");
    let e = fails(&mut s, "refresh");
    assert!(e.message.contains("HTTP 401: invalid_client"), "{e}");
    assert!(e.hint.unwrap().contains("`assertion`"));
}

#[test]
fn keys_registered_by_jwks_uri_are_fetched_from_there() {
    let mut s = session();
    ok(&mut s, "keys");
    let jwks = var(&s, "jwks");
    let server = std::sync::Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
    let port = server.server_addr().to_ip().unwrap().port();
    let serving = server.clone();
    let thread = std::thread::spawn(move || {
        for request in serving.incoming_requests() {
            let header = tiny_http::Header::from_bytes("Content-Type", "application/json").unwrap();
            let _ =
                request.respond(tiny_http::Response::from_string(jwks.clone()).with_header(header));
        }
    });
    let out = ok(
        &mut s,
        &format!("register --backend --jwks-uri http://127.0.0.1:{port}/jwks.json"),
    );
    let reply = the_json(&out);
    assert_eq!(
        reply["jwks_uri"],
        format!("http://127.0.0.1:{port}/jwks.json")
    );
    assert!(reply.get("jwks").is_none(), "{reply}");
    assert_eq!(statuses(&ok(&mut s, "backend")), [200]);
    server.unblock();
    thread.join().unwrap();
}

#[test]
fn the_server_names_what_is_wrong_with_a_registration_with_keys() {
    let mut s = session();
    ok(&mut s, "keys");
    let e = fails(
        &mut s,
        "register --auth private_key_jwt --jwks $jwks --jwks-uri http://127.0.0.1:1/jwks",
    );
    assert!(e.message.contains("invalid_client_metadata"), "{e}");
    assert!(e.message.contains("not both"), "{e}");
    assert!(e.hint.unwrap().contains("public keys only"));
    let e = fails(
        &mut s,
        "register --auth private_key_jwt --scope system/*.rs",
    );
    assert!(e.message.contains("client_credentials"), "{e}");
    assert!(!bound(&s, "token_endpoint_auth_method"));
}
