//! OpenID Connect: id_tokens from the code exchange and from refresh for every kind of
//! participant, verified as a relying party would (discovery, JWKS, RS256 and every claim),
//! introspection agreeing with them, and signing keys that survive restarts and rotation.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};
use smartnb::server::{Config, StateLocation};

use crate::portal::*;

const IDENTITY: &str = "openid fhirUser launch/patient patient/*.read offline_access";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// What a relying party learns from discovery: the issuer and its keys.
struct Provider {
    issuer: String,
    jwks: JwkSet,
}

impl Provider {
    /// Discovery as a relying party does it: openid-configuration, then its jwks_uri.
    async fn discover(server: &TestServer) -> Provider {
        let config = server
            .get(&server.url("/.well-known/openid-configuration"))
            .await;
        assert_eq!(config.status, 200, "{}", config.text);
        let jwks_uri = config.str("jwks_uri").to_string();
        let keys = server.get(&jwks_uri).await;
        assert_eq!(keys.status, 200, "{}", keys.text);
        Provider {
            issuer: config.str("issuer").to_string(),
            jwks: serde_json::from_value(keys.json.clone()).expect("a JWK Set"),
        }
    }

    /// Verify an id_token's signature (key chosen by `kid`), `iss`, `aud` and `exp`, and
    /// return its claims.
    fn verify(&self, id_token: &str, client_id: &str) -> Value {
        let header = decode_header(id_token).expect("a JWS header");
        assert_eq!(header.alg, Algorithm::RS256);
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        let kid = header.kid.expect("a kid");
        let jwk: &Jwk = self.jwks.find(&kid).expect("the kid is in the JWKS");
        let mut rules = Validation::new(Algorithm::RS256);
        rules.set_issuer(&[&self.issuer]);
        rules.set_audience(&[client_id]);
        rules.set_required_spec_claims(&["iss", "sub", "aud", "exp", "iat"]);
        rules.leeway = 0;
        decode::<Value>(id_token, &DecodingKey::from_jwk(jwk).unwrap(), &rules)
            .expect("the id_token verifies")
            .claims
    }
}

/// OpenID Connect Core §3.1.3.6: base64url of the left half of SHA-256 for RS256.
fn at_hash(access_token: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    let digest = sha2::Sha256::digest(access_token.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16])
}

fn kid_of(id_token: &str) -> String {
    decode_header(id_token).unwrap().kid.unwrap()
}

/// The code flow with this nonce (if any); the token response.
async fn sign_in_with(server: &TestServer, app: &App, who: Person, nonce: Option<&str>) -> Reply {
    let mut request = Authorize::new(server, app);
    if let Some(nonce) = nonce {
        request = request.set("nonce", nonce);
    }
    let code = authorize(server, &request, who).await.code();
    let reply = app.exchange(server, &code, None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply
}

#[tokio::test]
async fn each_participant_gets_an_id_token_naming_them_and_their_fhir_user() {
    let server = TestServer::start().await;
    let provider = Provider::discover(&server).await;
    assert_eq!(
        provider.issuer, server.base_url,
        "the issuer is the base URL"
    );
    let app = server
        .register_app("Identity App", "client_secret_basic", IDENTITY)
        .await;
    let cases = [
        (DANIEL, "Patient/smart-1288992", "Daniel Adams", "Patient"),
        (
            AMY,
            "RelatedPerson/related-daniel-for-amy",
            "Daniel Adams",
            "RelatedPerson",
        ),
        (JOSEPH, "Patient/smart-1081332", "Joseph Ross", "Patient"),
        (
            CARTER,
            "Practitioner/practitioner-carter",
            "Dr. Rose Carter",
            "Practitioner",
        ),
    ];
    for (who, fhir_user, name, resource_type) in cases {
        let started = now();
        let nonce = format!("n-{} ünï ✓ &=?", uuid::Uuid::new_v4());
        let reply = sign_in_with(&server, &app, who, Some(&nonce)).await;
        let id_token = reply.str("id_token").to_string();
        let claims = provider.verify(&id_token, &app.client_id);
        let expected_user = format!("{}/{fhir_user}", server.fhir_base());
        assert_eq!(claims["iss"], json!(server.base_url));
        assert_eq!(claims["sub"], json!(who.username), "{claims}");
        assert_eq!(claims["aud"], json!(app.client_id));
        assert_eq!(claims["nonce"], json!(nonce), "echoed exactly");
        assert_eq!(claims["fhirUser"], json!(expected_user), "{}", who.username);
        assert_eq!(claims["name"], json!(name));
        assert!(claims.get("profile").is_none(), "profile was not asked for");
        let iat = claims["iat"].as_i64().unwrap();
        let exp = claims["exp"].as_i64().unwrap();
        let auth_time = claims["auth_time"].as_i64().unwrap();
        assert!((started..=now()).contains(&iat), "{claims}");
        assert_eq!(exp - iat, 3600, "lives as long as the access token");
        assert!(started <= auth_time && auth_time <= iat, "{claims}");

        // The fhirUser resource is readable with the access token that came with it, whose
        // hash the id_token carries.
        let tokens = reply.tokens();
        assert_eq!(claims["at_hash"], json!(at_hash(&tokens.access)));
        let read = server.fhir(&tokens.access, fhir_user).await;
        assert_eq!(read.status, 200, "{}: {}", who.username, read.text);
        assert_eq!(read.json["resourceType"], json!(resource_type));

        // Introspection names the same issuer, subject and fhirUser.
        let seen = server.introspect(&app.auth(), &tokens.access).await;
        assert_eq!(seen.json["active"], json!(true));
        assert_eq!(seen.json["iss"], claims["iss"]);
        assert_eq!(seen.json["sub"], claims["sub"]);
        assert_eq!(seen.json["fhirUser"], claims["fhirUser"]);

        // A refresh brings a new id_token: fresh iat and exp, the same sub, aud and
        // auth_time, and no nonce (OpenID Connect Core §12.2).
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let renewed = app.refresh(&server, tokens.refresh(), None).await;
        assert_eq!(renewed.status, 200, "{}", renewed.text);
        let again = provider.verify(renewed.str("id_token"), &app.client_id);
        assert!(again["iat"].as_i64().unwrap() > iat, "{again}");
        assert_eq!(
            again["exp"].as_i64().unwrap() - again["iat"].as_i64().unwrap(),
            3600
        );
        for same in ["iss", "sub", "aud", "auth_time", "fhirUser", "name"] {
            assert_eq!(again[same], claims[same], "{same} after a refresh");
        }
        assert!(again.get("nonce").is_none(), "{again}");
        assert_eq!(
            again["at_hash"],
            json!(at_hash(renewed.str("access_token")))
        );
        let debug = server.debug_introspect(renewed.str("access_token")).await;
        assert_eq!(debug.json["fhirUser"], claims["fhirUser"], "{}", debug.text);
        assert_eq!(debug.json["sub"], claims["sub"]);
    }
}

#[tokio::test]
async fn the_nonce_is_only_there_when_asked_and_profile_is_the_legacy_claim() {
    let server = TestServer::start().await;
    let provider = Provider::discover(&server).await;
    let app = server
        .register_app(
            "Profile App",
            "client_secret_post",
            "openid profile launch/patient patient/*.read",
        )
        .await;
    let reply = sign_in_with(&server, &app, JOSEPH, None).await;
    let claims = provider.verify(reply.str("id_token"), &app.client_id);
    assert!(claims.get("nonce").is_none(), "{claims}");
    let record = format!("{}/Patient/smart-1081332", server.fhir_base());
    assert_eq!(claims["profile"], json!(record));
    assert!(
        claims.get("fhirUser").is_none(),
        "fhirUser was not asked for: {claims}"
    );
    assert_eq!(claims["name"], json!("Joseph Ross"));
    assert!(reply.json.get("refresh_token").is_none());
}

/// The debug endpoint grants `openid fhirUser` as the token endpoint does, id_token
/// included (no sign-in is behind it, so no auth_time and no nonce); without an identity
/// scope it answers as the seed's did, with the two tokens only.
#[tokio::test]
async fn a_debug_mint_of_an_identity_scope_carries_an_id_token() {
    let server = TestServer::start().await;
    let provider = Provider::discover(&server).await;
    let app = server
        .register_app("Identity App", "client_secret_basic", IDENTITY)
        .await;
    let mint = |scope: Option<&str>| {
        let mut body = json!({
            "client_id": app.client_id,
            "username": JOSEPH.username,
            "patient_id": JOSEPH.patient,
        });
        if let Some(scope) = scope {
            body["scope"] = json!(scope);
        }
        body
    };
    let reply = server.post_json("/oauth/debug/token", &mint(None)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let claims = provider.verify(reply.str("id_token"), &app.client_id);
    assert_eq!(claims["sub"], json!(JOSEPH.username));
    assert_eq!(
        claims["fhirUser"],
        json!(format!("{}/Patient/smart-1081332", server.fhir_base()))
    );
    assert_eq!(claims["at_hash"], json!(at_hash(reply.str("access_token"))));
    assert!(
        claims.get("nonce").is_none() && claims.get("auth_time").is_none(),
        "{claims}"
    );
    let narrowed = mint(Some("launch/patient patient/*.read offline_access"));
    let plain = server.post_json("/oauth/debug/token", &narrowed).await;
    assert_eq!(plain.status, 200, "{}", plain.text);
    assert!(plain.json.get("id_token").is_none(), "{}", plain.text);
}

#[tokio::test]
async fn without_openid_and_an_identity_scope_there_is_no_id_token() {
    let server = TestServer::start().await;
    for scope in [
        "fhirUser launch/patient patient/*.read",
        "openid launch/patient patient/*.read",
        "launch/patient patient/*.read offline_access",
    ] {
        let app = server
            .register_app("No Identity", "client_secret_basic", scope)
            .await;
        let reply = sign_in_with(&server, &app, JOSEPH, Some("a-nonce")).await;
        assert!(
            reply.json.get("id_token").is_none(),
            "{scope}: {}",
            reply.text
        );
    }
}

#[tokio::test]
async fn a_narrowed_refresh_without_openid_carries_no_id_token() {
    let server = TestServer::start().await;
    let app = server
        .register_app("Identity App", "client_secret_basic", IDENTITY)
        .await;
    let tokens = sign_in_with(&server, &app, JOSEPH, None).await.tokens();
    let narrowed = app
        .refresh(
            &server,
            tokens.refresh(),
            Some("launch/patient patient/*.read offline_access"),
        )
        .await;
    assert_eq!(narrowed.status, 200, "{}", narrowed.text);
    assert!(narrowed.json.get("id_token").is_none(), "{}", narrowed.text);
}

#[tokio::test]
async fn discovery_documents_agree_and_the_jwks_holds_only_public_rsa_keys() {
    let server = TestServer::start().await;
    let config = server
        .get(&server.url("/.well-known/openid-configuration"))
        .await;
    assert!(config
        .header("content-type")
        .starts_with("application/json"));
    assert_eq!(config.header("access-control-allow-origin"), "*");
    for field in [
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "response_types_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
        "scopes_supported",
        "claims_supported",
        "token_endpoint_auth_methods_supported",
        "code_challenge_methods_supported",
    ] {
        assert!(
            config.json.get(field).is_some(),
            "{field} missing: {}",
            config.text
        );
    }
    assert!(config.json["id_token_signing_alg_values_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("RS256")));
    for claim in ["sub", "fhirUser", "nonce", "auth_time"] {
        assert!(config.json["claims_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(claim)));
    }
    for path in [
        "/.well-known/smart-configuration",
        "/api/fhir/.well-known/smart-configuration",
    ] {
        let smart = server.get(&server.url(path)).await;
        assert_eq!(smart.json["issuer"], config.json["issuer"], "{path}");
        assert_eq!(smart.json["jwks_uri"], config.json["jwks_uri"], "{path}");
        assert_eq!(smart.json["token_endpoint"], config.json["token_endpoint"]);
        let capabilities = smart.json["capabilities"].as_array().unwrap();
        for needed in ["sso-openid-connect", "permission-user"] {
            assert!(capabilities.contains(&json!(needed)), "{path}: {needed}");
        }
        let scopes = smart.json["scopes_supported"].as_array().unwrap();
        for scope in [
            "openid",
            "fhirUser",
            "profile",
            "online_access",
            "offline_access",
            "launch/patient",
            "patient/*.rs",
            "user/*.rs",
        ] {
            assert!(scopes.contains(&json!(scope)), "{path}: {scope}");
        }
    }
    let jwks = server.get(config.str("jwks_uri")).await;
    assert_eq!(jwks.header("access-control-allow-origin"), "*");
    let keys = jwks.json["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{}", jwks.text);
    for key in keys {
        let members: Vec<&str> = key
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut sorted = members.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            ["alg", "e", "kid", "kty", "n", "use"],
            "public members only"
        );
        assert_eq!(key["kty"], "RSA");
        assert_eq!(key["alg"], "RS256");
        assert_eq!(key["use"], "sig");
        let jwk: Jwk = serde_json::from_value(key.clone()).unwrap();
        let jsonwebtoken::jwk::AlgorithmParameters::RSA(rsa) = &jwk.algorithm else {
            panic!("an RSA key");
        };
        use base64::Engine;
        let modulus = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&rsa.n)
            .unwrap();
        assert!(modulus.len() * 8 >= 2048, "{} bits", modulus.len() * 8);
    }
}

/// An id_token from a debug-minted grant refreshed with the identity scope (no browser
/// needed): enough to see which key signs.
async fn id_token_via_refresh(server: &TestServer) -> (App, String) {
    let app = server
        .register_app("Key Check", "client_secret_basic", IDENTITY)
        .await;
    let minted = server
        .debug_token(json!({
            "client_id": app.client_id,
            "username": "joseph-ross",
            "patient_id": "smart-1081332",
            "scope": IDENTITY,
        }))
        .await;
    let reply = app.refresh(server, minted.refresh(), None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    (app, reply.str("id_token").to_string())
}

#[tokio::test]
async fn the_signing_key_survives_a_restart_and_rotation_keeps_old_tokens_verifiable() {
    let dir = tempfile::tempdir().unwrap();
    let state = StateLocation::Sqlite(dir.path().join("state.db"));
    let config = || Config {
        state: state.clone(),
        ..Config::default()
    };
    let first = TestServer::start_with(config()).await;
    let (app, before) = id_token_via_refresh(&first).await;
    first.shutdown().await;

    let second = TestServer::start_with(config()).await;
    let provider = Provider::discover(&second).await;
    assert_eq!(provider.jwks.keys.len(), 1);
    // Issued before the restart, by a server on another port: its iss is the first
    // server's, so check the signature against the second's JWKS directly.
    let mut lenient = Validation::new(Algorithm::RS256);
    lenient.validate_aud = false;
    let jwk = provider
        .jwks
        .find(&kid_of(&before))
        .expect("the same key after a restart");
    decode::<Value>(&before, &DecodingKey::from_jwk(jwk).unwrap(), &lenient).expect("verifies");
    let (_, after) = id_token_via_refresh(&second).await;
    assert_eq!(kid_of(&after), kid_of(&before), "signs with the same key");
    second.shutdown().await;

    let rotated = TestServer::start_with(Config {
        rotate_signing_key: true,
        ..config()
    })
    .await;
    let provider = Provider::discover(&rotated).await;
    assert_eq!(provider.jwks.keys.len(), 2, "the old key stays published");
    let (new_app, fresh) = id_token_via_refresh(&rotated).await;
    assert_ne!(kid_of(&fresh), kid_of(&before), "a new key signs");
    provider.verify(&fresh, &new_app.client_id);
    let old = provider
        .jwks
        .find(&kid_of(&before))
        .expect("old key still in the JWKS");
    decode::<Value>(&before, &DecodingKey::from_jwk(old).unwrap(), &lenient)
        .expect("an id_token from before the rotation still verifies");
    let _ = app;
}
