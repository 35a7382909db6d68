//! Asymmetric client authentication and SMART Backend Services: registration of public
//! keys, every assertion rule broken in turn (each refusal naming its rule), the
//! client_credentials grant with system/ scopes reading across patients, keys rotated
//! through a jwks_uri, and an authorization-code flow authenticated by assertions.

use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use smartnb::server::Config;

use crate::portal::*;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A key pair as a client holds it: the private half for signing, the public JWK.
#[derive(Clone)]
struct Keys {
    alg: Algorithm,
    kid: String,
    private: EncodingKey,
    jwk: Value,
}

impl Keys {
    fn rs384(kid: &str) -> Keys {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::traits::PublicKeyParts;
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        let pem = key.to_pkcs1_pem(rsa::pkcs1::LineEnding::LF).unwrap();
        Keys {
            alg: Algorithm::RS384,
            kid: kid.into(),
            private: EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
            jwk: json!({
                "kty": "RSA", "kid": kid, "alg": "RS384", "use": "sig",
                "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
                "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
            }),
        }
    }

    fn es384(kid: &str) -> Keys {
        use p384::pkcs8::EncodePrivateKey;
        let secret = p384::SecretKey::random(&mut rsa::rand_core::OsRng);
        let pem = secret.to_pkcs8_pem(p384::pkcs8::LineEnding::LF).unwrap();
        let mut jwk: Value = serde_json::from_str(&secret.public_key().to_jwk_string()).unwrap();
        jwk["kid"] = json!(kid);
        jwk["alg"] = json!("ES384");
        Keys {
            alg: Algorithm::ES384,
            kid: kid.into(),
            private: EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
            jwk,
        }
    }

    fn set(&self) -> Value {
        json!({ "keys": [self.jwk] })
    }

    /// A good assertion for this client at this server, with `edit` applied to the claims.
    fn assert_as(
        &self,
        server: &TestServer,
        client_id: &str,
        edit: impl FnOnce(&mut Value),
    ) -> String {
        let mut claims = json!({
            "iss": client_id,
            "sub": client_id,
            "aud": server.url("/oauth/token"),
            "exp": now() + 240,
            "iat": now(),
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        edit(&mut claims);
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        header.typ = Some("JWT".into());
        encode(&header, &claims, &self.private).unwrap()
    }
}

async fn register_backend(server: &TestServer, keys: &Value, scope: &str) -> String {
    let reply = server
        .post_json(
            "/oauth/register",
            &json!({
                "client_name": "Backend",
                "grant_types": ["client_credentials"],
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks": keys,
                "scope": scope,
            }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert!(reply.json.get("client_secret").is_none(), "{}", reply.text);
    assert!(
        reply.json.get("client_secret_expires_at").is_none(),
        "no secret, so no expiry of one (RFC 7591 §3.2.1): {}",
        reply.text
    );
    reply.str("client_id").to_string()
}

async fn system_token(server: &TestServer, assertion: &str, scope: &str) -> Reply {
    server
        .token(
            &Auth::Nobody,
            &[
                ("grant_type", "client_credentials"),
                ("scope", scope),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", assertion),
            ],
        )
        .await
}

#[tokio::test]
async fn registration_refuses_keys_it_cannot_trust_and_names_why() {
    let server = TestServer::start().await;
    let good = Keys::es384("k1").jwk;
    let mut private = good.clone();
    private["d"] = json!("AAAA");
    let small = {
        use rsa::traits::PublicKeyParts;
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 1024).unwrap();
        json!({"kty": "RSA", "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()), "e": "AQAB"})
    };
    let mut p521 = good.clone();
    p521["crv"] = json!("P-521");
    let mut no_kid = Keys::es384("x").jwk;
    no_kid.as_object_mut().unwrap().remove("kid");
    let mut no_kid2 = Keys::es384("y").jwk;
    no_kid2.as_object_mut().unwrap().remove("kid");
    let backend = |extra: Value| {
        let mut body = json!({
            "client_name": "Bad",
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt",
            "scope": "system/*.rs",
        });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let eleven: Vec<Value> = (0..11)
        .map(|i| {
            let mut key = good.clone();
            key["kid"] = json!(format!("k{i}"));
            key
        })
        .collect();
    let mut padded = good.clone();
    padded["kid"] = json!("k".repeat(17 * 1024));
    for (body, named) in [
        (backend(json!({"jwks": {"keys": eleven}})), "at most 10"),
        (
            backend(json!({"jwks": {"keys": [padded]}})),
            "bytes of JSON",
        ),
        (
            backend(json!({"jwks": {"keys": [private]}})),
            "private member",
        ),
        (backend(json!({"jwks": {"keys": [small]}})), "1024 bits"),
        (backend(json!({"jwks": {"keys": [p521]}})), "P-521"),
        (
            backend(json!({"jwks": {"keys": [no_kid, no_kid2]}})),
            "no kid",
        ),
        (
            backend(json!({"jwks": {"keys": [good.clone()]}, "jwks_uri": "https://x.example/j"})),
            "not both",
        ),
        (backend(json!({"jwks_uri": "ftp://x.example/j"})), "http"),
        (backend(json!({})), "jwks"),
        (
            json!({"client_name": "S", "grant_types": ["client_credentials"], "scope": "system/*.rs"}),
            "private_key_jwt",
        ),
        (
            json!({"client_name": "S", "redirect_uris": ["http://localhost:9001/cb"],
                   "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [good.clone()]},
                   "scope": "system/*.rs"}),
            "client_credentials",
        ),
    ] {
        let reply = server.post_json("/oauth/register", &body).await;
        reply.assert_error(400, "invalid_client_metadata");
        let said = reply.str("error_description");
        assert!(said.contains(named), "{named}: {said}");
    }
}

#[tokio::test]
async fn a_backend_service_reads_every_patients_data_of_its_scopes() {
    let server = TestServer::start().await;
    for keys in [Keys::rs384("rsa-1"), Keys::es384("ec-1")] {
        let client_id = register_backend(&server, &keys.set(), "system/*.rs").await;
        let reply = system_token(
            &server,
            &keys.assert_as(&server, &client_id, |_| {}),
            "system/Observation.rs system/Patient.rs",
        )
        .await;
        assert_eq!(reply.status, 200, "{:?}: {}", keys.alg, reply.text);
        reply.assert_not_cached();
        assert_eq!(reply.json["token_type"], json!("Bearer"));
        assert_eq!(reply.json["expires_in"], json!(300));
        assert_eq!(
            reply.json["scope"],
            json!("system/Observation.rs system/Patient.rs")
        );
        for absent in ["refresh_token", "patient", "id_token"] {
            assert!(reply.json.get(absent).is_none(), "{absent}: {}", reply.text);
        }
        let access = reply.str("access_token").to_string();
        let bundle = server
            .fhir(
                &access,
                "Observation?code=http://loinc.org|8867-4&_count=200",
            )
            .await;
        assert_eq!(bundle.status, 200, "{}", bundle.text);
        let patients: std::collections::BTreeSet<String> = bundle.json["entry"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| {
                e["resource"]["subject"]["reference"]
                    .as_str()
                    .map(str::to_string)
            })
            .collect();
        assert_eq!(
            patients.len(),
            3,
            "every patient's heart rates: {patients:?}"
        );
        assert_eq!(
            server.fhir_status(&access, "Patient/smart-1032702").await,
            200
        );
        assert_eq!(
            server
                .fhir_status(&access, "Condition?patient=smart-1032702")
                .await,
            403
        );
    }
}

#[tokio::test]
async fn a_v2_filter_on_a_system_scope_holds_across_patients() {
    let server = TestServer::start().await;
    let keys = Keys::es384("ec");
    let client_id = register_backend(
        &server,
        &keys.set(),
        "system/Observation.rs?category=laboratory",
    )
    .await;
    let reply = system_token(
        &server,
        &keys.assert_as(&server, &client_id, |_| {}),
        "system/Observation.rs?category=laboratory",
    )
    .await;
    let access = reply.tokens().access;
    let bundle = server.fhir(&access, "Observation?_count=500").await;
    let entries = bundle.json["entry"].as_array().unwrap();
    assert!(entries.len() > 3, "{}", bundle.text);
    for entry in entries {
        assert!(entry.to_string().contains("laboratory"), "{entry}");
    }
    let introspected = server
        .post_form(
            "/oauth/introspect",
            &Auth::Nobody,
            &[
                ("token", access.as_str()),
                ("client_assertion_type", JWT_BEARER),
                (
                    "client_assertion",
                    &keys.assert_as(&server, &client_id, |_| {}),
                ),
            ],
        )
        .await;
    assert_eq!(
        introspected.json["active"],
        json!(true),
        "{}",
        introspected.text
    );
    assert_eq!(introspected.json["client_id"], json!(client_id));
    for absent in ["patient", "username", "sub"] {
        assert!(
            introspected.json.get(absent).is_none(),
            "{}",
            introspected.text
        );
    }
}

#[tokio::test]
async fn every_assertion_rule_broken_in_turn_is_refused_by_name() {
    let server = TestServer::start().await;
    let keys = Keys::rs384("main");
    let client_id = register_backend(&server, &keys.set(), "system/*.rs").await;
    let other = Keys::rs384("main");
    let scope = "system/Observation.rs";
    let header_json = |alg: &str| {
        URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"main"}}"#))
    };
    let claims_json = URL_SAFE_NO_PAD.encode(
        json!({"iss": client_id, "sub": client_id, "aud": server.url("/oauth/token"),
               "exp": now() + 200, "jti": "x"})
        .to_string(),
    );
    let cases: Vec<(String, &str)> = vec![
        (
            format!("{}.{claims_json}.", header_json("none")),
            "alg \"none\"",
        ),
        (
            format!("{}.{claims_json}.c2ln", header_json("HS256")),
            "alg \"HS256\"",
        ),
        (
            keys.assert_as(&server, &client_id, |c| {
                c["aud"] = json!("https://elsewhere.example/token")
            }),
            "aud must be",
        ),
        (
            keys.assert_as(&server, &client_id, |c| c["exp"] = json!(now() - 120)),
            "in the past",
        ),
        (
            keys.assert_as(&server, &client_id, |c| c["exp"] = json!(now() + 900)),
            "at most 300",
        ),
        (
            keys.assert_as(&server, &client_id, |c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
            "exp",
        ),
        (
            keys.assert_as(&server, &client_id, |c| {
                c.as_object_mut().unwrap().remove("jti");
            }),
            "jti",
        ),
        (
            keys.assert_as(&server, &client_id, |c| c["sub"] = json!("someone")),
            "sub must equal iss",
        ),
        (
            keys.assert_as(&server, &client_id, |c| c["nbf"] = json!(now() + 600)),
            "nbf",
        ),
        (
            keys.assert_as(&server, &client_id, |c| c["iss"] = json!("no-such-client")),
            "sub must equal iss",
        ),
        (
            other.assert_as(&server, &client_id, |_| {}),
            "signature does not verify",
        ),
        (
            Keys {
                kid: "unknown".into(),
                ..keys.clone()
            }
            .assert_as(&server, &client_id, |_| {}),
            "kid \"unknown\"",
        ),
        ("not-a-jwt".to_string(), "compact JWS"),
    ];
    for (assertion, named) in cases {
        let reply = system_token(&server, &assertion, scope).await;
        reply.assert_error(401, "invalid_client");
        let said = reply.str("error_description");
        assert!(said.contains(named), "{named}: {said}");
    }
    // Replayed: the first use works, the second names the jti.
    let once = keys.assert_as(&server, &client_id, |_| {});
    assert_eq!(system_token(&server, &once, scope).await.status, 200);
    let again = system_token(&server, &once, scope).await;
    again.assert_error(401, "invalid_client");
    assert!(again.str("error_description").contains("used before"));
}

#[tokio::test]
async fn grant_and_assertion_type_errors_are_what_the_rfcs_say() {
    let server = TestServer::start().await;
    let keys = Keys::es384("k");
    let client_id = register_backend(&server, &keys.set(), "system/*.rs").await;
    let assertion = keys.assert_as(&server, &client_id, |_| {});
    let unsupported = server
        .token(
            &Auth::Nobody,
            &[
                ("grant_type", "password"),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", &assertion),
            ],
        )
        .await;
    unsupported.assert_error(400, "unsupported_grant_type");
    let wrong_type = server
        .token(
            &Auth::Nobody,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "system/*.rs"),
                ("client_assertion_type", "urn:example:wrong"),
                ("client_assertion", &assertion),
            ],
        )
        .await;
    wrong_type.assert_error(401, "invalid_client");
    for scope in ["", "patient/*.rs", "system/Observation.rs launch", "openid"] {
        let reply =
            system_token(&server, &keys.assert_as(&server, &client_id, |_| {}), scope).await;
        reply.assert_error(400, "invalid_scope");
    }
    // A narrower registration refuses more than it registered.
    let narrow = register_backend(&server, &keys.set(), "system/Observation.rs").await;
    let reply = system_token(
        &server,
        &keys.assert_as(&server, &narrow, |_| {}),
        "system/Patient.rs",
    )
    .await;
    reply.assert_error(400, "invalid_scope");
}

#[tokio::test]
async fn the_system_token_lifetime_is_capped_by_the_flag() {
    let server = TestServer::start_with(Config {
        system_token_lifetime: 60,
        ..Config::default()
    })
    .await;
    let keys = Keys::es384("k");
    let client_id = register_backend(&server, &keys.set(), "system/*.rs").await;
    let reply = system_token(
        &server,
        &keys.assert_as(&server, &client_id, |_| {}),
        "system/*.rs",
    )
    .await;
    assert_eq!(reply.json["expires_in"], json!(60), "{}", reply.text);
}

/// A JWK Set served on a loopback port, changeable while it runs.
async fn key_server(set: Arc<Mutex<Value>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let set = set.clone();
            async move { axum::Json(set.lock().unwrap().clone()) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/jwks.json")
}

#[tokio::test]
async fn keys_from_a_jwks_uri_rotate_without_registering_again() {
    let server = TestServer::start().await;
    let first = Keys::es384("2026-a");
    let served = Arc::new(Mutex::new(first.set()));
    let uri = key_server(served.clone()).await;
    let reply = server
        .post_json(
            "/oauth/register",
            &json!({"client_name": "Rotating", "grant_types": ["client_credentials"],
                    "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": uri,
                    "scope": "system/*.rs"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.json["jwks_uri"], json!(uri));
    let client_id = reply.str("client_id").to_string();
    let ok = system_token(
        &server,
        &first.assert_as(&server, &client_id, |_| {}),
        "system/*.rs",
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    // Rotate: the new key is served, the old one withdrawn; the server refetches for the
    // unknown kid.
    let second = Keys::rs384("2026-b");
    *served.lock().unwrap() = second.set();
    tokio::time::sleep(std::time::Duration::from_millis(5_200)).await;
    let rotated = system_token(
        &server,
        &second.assert_as(&server, &client_id, |_| {}),
        "system/*.rs",
    )
    .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    // jku must be the registered jwks_uri.
    let mut header = Header::new(second.alg);
    header.kid = Some(second.kid.clone());
    header.jku = Some("https://attacker.example/jwks.json".into());
    let claims = json!({"iss": client_id, "sub": client_id, "aud": server.url("/oauth/token"),
                        "exp": now() + 200, "jti": "jku-case"});
    let forged = encode(&header, &claims, &second.private).unwrap();
    let reply = system_token(&server, &forged, "system/*.rs").await;
    reply.assert_error(401, "invalid_client");
    assert!(reply.str("error_description").contains("jku"));
}

#[tokio::test]
async fn an_asymmetric_client_runs_the_code_flow_and_refreshes_with_assertions() {
    let server = TestServer::start().await;
    let keys = Keys::es384("app");
    let reply = server
        .post_json(
            "/oauth/register",
            &json!({"client_name": "Asymmetric App",
                    "redirect_uris": ["http://localhost:9001/authorized"],
                    "token_endpoint_auth_method": "private_key_jwt", "jwks": keys.set(),
                    "scope": SEED_SCOPE}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let app = App {
        client_id: reply.str("client_id").to_string(),
        client_secret: None,
        redirect_uri: "http://localhost:9001/authorized".into(),
        scope: SEED_SCOPE.into(),
        name: "Asymmetric App".into(),
        method: "private_key_jwt".into(),
    };
    let code = authorize(&server, &Authorize::new(&server, &app), JOSEPH)
        .await
        .code();
    // A bare client_id is not enough for this client.
    let bare = server
        .token(
            &Auth::Public(app.client_id.clone()),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &app.redirect_uri),
            ],
        )
        .await;
    bare.assert_error(401, "invalid_client");
    assert!(bare.str("error_description").contains("private_key_jwt"));
    let assertion = keys.assert_as(&server, &app.client_id, |_| {});
    let exchanged = server
        .token(
            &Auth::Nobody,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &app.redirect_uri),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", &assertion),
            ],
        )
        .await;
    assert_eq!(exchanged.status, 200, "{}", exchanged.text);
    let tokens = exchanged.tokens();
    let renewed = server
        .token(
            &Auth::Nobody,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens.refresh()),
                ("client_assertion_type", JWT_BEARER),
                (
                    "client_assertion",
                    &keys.assert_as(&server, &app.client_id, |_| {}),
                ),
            ],
        )
        .await;
    assert_eq!(renewed.status, 200, "{}", renewed.text);
    assert_eq!(
        server
            .fhir_status(&renewed.tokens().access, "Patient/smart-1081332")
            .await,
        200
    );
}

#[tokio::test]
async fn headers_claim_types_and_key_algs_are_checked_too() {
    let server = TestServer::start().await;
    let keys = Keys::rs384("rsa");
    let client_id = register_backend(&server, &keys.set(), "system/*.rs").await;
    let scope = "system/*.rs";
    // The key was registered for RS384: an RS256 signature by it is refused.
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("rsa".into());
    let claims = json!({"iss": client_id, "sub": client_id, "aud": server.url("/oauth/token"),
                        "exp": now() + 200, "jti": uuid::Uuid::new_v4().to_string()});
    let other_alg = encode(&header, &claims, &keys.private).unwrap();
    let reply = system_token(&server, &other_alg, scope).await;
    reply.assert_error(401, "invalid_client");
    assert!(
        reply.str("error_description").contains("RS384 registered"),
        "{}",
        reply.text
    );
    // A header with crit (Header has no such field: the JWS is put together here and
    // signed by jsonwebtoken's own signing function).
    let head = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS384","kid":"rsa","crit":["exp"]}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{head}.{body}");
    let signature =
        jsonwebtoken::crypto::sign(signing_input.as_bytes(), &keys.private, Algorithm::RS384)
            .unwrap();
    let critical = format!("{signing_input}.{signature}");
    let reply = system_token(&server, &critical, scope).await;
    assert!(
        reply.str("error_description").contains("crit"),
        "{}",
        reply.text
    );
    for (claim, value) in [("exp", json!((now() + 200).to_string())), ("jti", json!(7))] {
        let assertion = keys.assert_as(&server, &client_id, |c| c[claim] = value.clone());
        let reply = system_token(&server, &assertion, scope).await;
        reply.assert_error(401, "invalid_client");
        assert!(
            reply
                .str("error_description")
                .contains(&format!("{claim} must be")),
            "{}",
            reply.text
        );
    }
    // A backend registration without a scope gets system/*.rs; with only patient/ scopes it
    // is refused.
    let defaulted = server
        .post_json(
            "/oauth/register",
            &json!({"client_name": "B", "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt", "jwks": keys.set()}),
        )
        .await;
    assert_eq!(
        defaulted.json["scope"],
        json!("system/*.rs"),
        "{}",
        defaulted.text
    );
    let patient_only = server
        .post_json("/oauth/register", &json!({"client_name": "B", "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt", "jwks": keys.set(), "scope": "patient/*.rs"}))
        .await;
    patient_only.assert_error(400, "invalid_client_metadata");
}
