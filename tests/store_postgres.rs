//! The store test-suite on PostgreSQL, and servers sharing one database: two `smartnb
//! serve` processes accept each other's clients and tokens, and single-use codes and
//! refresh rotation hold across them.
//!
//! Needs SMARTNB_TEST_POSTGRES (a server URL whose user may create databases) and fails
//! without it. `cargo test` leaves this file out (Cargo.toml: test = false);
//! .ci/postgres_check.sh starts a throwaway PostgreSQL and runs it.

#[macro_use]
mod store_suite;
mod portal;
mod replica_browser;

use std::time::Duration;

use serde_json::{json, Value};
use smartnb::server::{Config, StateLocation};
use store_suite::process::Served;

store_suite!(postgres, store_suite::fresh::postgres());

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_of_the_old_schema_keeps_its_rows_as_hashes() {
    let location = StateLocation::Postgres(store_suite::fresh::postgres_database().await);
    store_suite::upgrade::upgrade_keeps_what_the_old_schema_stored(location).await;
}

/// An id_token from `server`: a debug-minted grant with the identity scope, refreshed.
async fn id_token_from(http: &reqwest::Client, server: &Served) -> (String, Value) {
    let scope = "openid fhirUser launch/patient patient/*.read offline_access";
    let (_, app) = json_of(http.post(server.url("/oauth/register")).json(&json!({
        "client_name": "key check",
        "redirect_uris": ["http://localhost:9001/authorized"],
        "scope": scope,
    })))
    .await;
    let id = app["client_id"].as_str().unwrap();
    let (_, minted) = json_of(http.post(server.url("/oauth/debug/token")).json(&json!({
        "client_id": id, "username": "joseph-ross", "patient_id": "smart-1081332",
    })))
    .await;
    let (status, reply) = json_of(
        http.post(server.url("/oauth/token"))
            .basic_auth(id, app["client_secret"].as_str())
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", minted["refresh_token"].as_str().unwrap()),
            ]),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    (reply["id_token"].as_str().unwrap().to_string(), app)
}

/// Whether a JWK Set verifies this id_token's RS256 signature (by its kid).
fn verifies(jwks: &Value, id_token: &str) -> bool {
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks.clone()).unwrap();
    let kid = jsonwebtoken::decode_header(id_token).unwrap().kid.unwrap();
    let Some(jwk) = set.find(&kid) else {
        return false;
    };
    let mut rules = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    rules.validate_aud = false;
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    jsonwebtoken::decode::<Value>(id_token, &key, &rules).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_processes_on_one_database_sign_with_one_key_and_rotate_together() {
    let database = store_suite::fresh::postgres_database().await;
    // Both start at once, each making sure a key exists: one key results.
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| Served::start(&database));
        let b = s.spawn(|| Served::start(&database));
        (a.join().unwrap(), b.join().unwrap())
    });
    let http = reqwest::Client::new();
    let jwks = |server: &Served| {
        let request = http.get(server.url("/.well-known/jwks.json"));
        async move { json_of(request).await.1 }
    };
    let (at_a, at_b) = (jwks(&a).await, jwks(&b).await);
    assert_eq!(at_a["keys"].as_array().unwrap().len(), 1, "{at_a}");
    assert_eq!(at_a, at_b);
    let (from_a, _) = id_token_from(&http, &a).await;
    let (from_b, _) = id_token_from(&http, &b).await;
    assert!(verifies(&at_b, &from_a) && verifies(&at_a, &from_b));

    // A third server rotates: every server publishes both keys at once, and what was
    // signed before still verifies.
    let c = Served::start_with(&database, &["--rotate-signing-key"]);
    let (from_c, _) = id_token_from(&http, &c).await;
    for server in [&a, &b, &c] {
        let set = jwks(server).await;
        assert_eq!(set["keys"].as_array().unwrap().len(), 2, "{set}");
        assert!(verifies(&set, &from_a) && verifies(&set, &from_c));
    }
    let kid = |token: &str| jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    assert_ne!(kid(&from_c), kid(&from_a));
}

async fn json_of(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_serve_processes_share_clients_and_tokens() {
    let database = store_suite::fresh::postgres_database().await;
    // Both start (and migrate) at once: the migrator's lock makes one of them wait.
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| Served::start(&database));
        let b = s.spawn(|| Served::start(&database));
        (a.join().unwrap(), b.join().unwrap())
    });
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();

    // Registered at A.
    let (status, app) = json_of(http.post(a.url("/oauth/register")).json(&json!({
        "client_name": "two processes",
        "redirect_uris": ["http://localhost:9001/authorized"],
        "scope": "launch/patient patient/*.read offline_access",
    })))
    .await;
    assert_eq!(status, 201);
    let (id, secret) = (
        app["client_id"].as_str().unwrap(),
        app["client_secret"].as_str().unwrap(),
    );
    // A token minted by B for A's client …
    let (status, minted) = json_of(http.post(b.url("/oauth/debug/token")).json(&json!({
        "client_id": id, "username": "daniel-adams", "patient_id": "smart-1288992",
    })))
    .await;
    assert_eq!(status, 200, "{minted}");
    let access = minted["access_token"].as_str().unwrap();
    let refresh = minted["refresh_token"].as_str().unwrap();
    // … is accepted by A: introspection and a FHIR read.
    let introspect = |server: &Served, token: &str| {
        http.post(server.url("/oauth/introspect"))
            .basic_auth(id, Some(secret))
            .form(&[("token", token.to_string())])
    };
    let (_, seen) = json_of(introspect(&a, access)).await;
    assert_eq!(seen["active"], true, "{seen}");
    let read = http
        .get(a.url("/api/fhir/Patient/smart-1288992"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);

    // Refreshed at A: B sees the old refresh token spent and the new pair live.
    let refresh_at = |server: &Served, token: &str| {
        http.post(server.url("/oauth/token"))
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
    };
    let (status, renewed) = json_of(refresh_at(&a, refresh)).await;
    assert_eq!(status, 200, "{renewed}");
    let (status, again) = json_of(refresh_at(&b, refresh)).await;
    assert_eq!(
        (status, again["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let new_access = renewed["access_token"].as_str().unwrap();
    let (_, seen) = json_of(introspect(&b, new_access)).await;
    assert_eq!(seen["active"], true);

    // Sixteen concurrent refreshes of one token, spread over both: exactly one wins.
    let contested = renewed["refresh_token"].as_str().unwrap().to_string();
    let mut racers = Vec::new();
    for i in 0..16 {
        let request = refresh_at(if i % 2 == 0 { &a } else { &b }, &contested);
        racers.push(tokio::spawn(async move {
            request.send().await.unwrap().status().as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for racer in racers {
        statuses.push(racer.await.unwrap());
    }
    statuses.sort();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 400),
        "{statuses:?}"
    );

    // Revoked at B: inactive at A.
    let revoked = http
        .post(b.url("/oauth/revoke"))
        .basic_auth(id, Some(secret))
        .form(&[("token", new_access)])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let (_, seen) = json_of(introspect(&a, new_access)).await;
    assert_eq!(seen["active"], false);

    // A dies; B still serves what A issued.
    let mut a = a;
    a.kill();
    let (_, seen) = json_of(introspect(&b, access)).await;
    assert_eq!(
        seen["active"], false,
        "the first pair was rotated away at A"
    );
    let (status, minted) = json_of(http.post(b.url("/oauth/debug/token")).json(&json!({
        "client_id": id, "username": "joseph-ross", "patient_id": "smart-1081332",
    })))
    .await;
    assert_eq!(status, 200, "{minted}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_code_approved_at_one_server_is_exchanged_once_across_two() {
    use portal::*;
    let state = StateLocation::Postgres(store_suite::fresh::postgres_database().await);
    let config = Config {
        state,
        ..Config::default()
    };
    let a = TestServer::start_with(config.clone()).await;
    let b = TestServer::start_with(config).await;
    let app = a.register_seed_app().await;

    // The participant approves at A; the app exchanges the code at B.
    let request = Authorize::new(&a, &app);
    let code = authorize(&a, &request, DANIEL).await.code();
    let reply = app.exchange(&b, &code, None).await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    let tokens = reply.tokens();
    assert_eq!(
        b.fhir_status(&tokens.access, "Patient/smart-1288992").await,
        200
    );

    // Replayed at A: refused, and the tokens issued at B are revoked everywhere.
    let replay = app.exchange(&a, &code, None).await;
    replay.assert_error(400, "invalid_grant");
    assert_eq!(
        b.fhir_status(&tokens.access, "Patient/smart-1288992").await,
        401
    );
    assert_eq!(
        a.fhir_status(&tokens.access, "Patient/smart-1288992").await,
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_processes_on_one_database_agree_on_what_faults_are_left() {
    let database = store_suite::fresh::postgres_database().await;
    let a = Served::start(&database);
    let b = Served::start(&database);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let (status, app) = json_of(http.post(a.url("/oauth/register")).json(&json!({
        "client_name": "faults across processes",
        "redirect_uris": ["http://localhost:9001/authorized"],
        "scope": "launch/patient patient/*.read offline_access",
    })))
    .await;
    assert_eq!(status, 201);
    let id = app["client_id"].as_str().unwrap();
    let (_, minted) = json_of(http.post(a.url("/oauth/debug/token")).json(&json!({
        "client_id": id, "username": "daniel-adams", "patient_id": "smart-1288992",
    })))
    .await;
    let access = minted["access_token"].as_str().unwrap().to_string();
    // Five answers queued at A; twenty requests race, half at each process.
    let (status, set) = json_of(http.post(a.url("/oauth/debug/simulate")).json(&json!({
        "client_id": id, "fault": "fhir_throttled", "times": 5,
    })))
    .await;
    assert_eq!(status, 200, "{set}");
    let (_, listed) =
        json_of(http.get(b.url(&format!("/oauth/debug/simulate?client_id={id}")))).await;
    assert_eq!(listed["faults"][0]["remaining"], 5, "B sees what A queued");
    let mut racers = Vec::new();
    for i in 0..20 {
        let url = if i % 2 == 0 { &a } else { &b }.url("/api/fhir/Patient/smart-1288992");
        let (http, access) = (http.clone(), access.clone());
        racers.push(tokio::spawn(async move {
            http.get(url)
                .bearer_auth(access)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut throttled = 0;
    for racer in racers {
        match racer.await.unwrap() {
            429 => throttled += 1,
            200 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(
        throttled, 5,
        "each queued answer is used once across both processes"
    );
    let (_, listed) =
        json_of(http.get(a.url(&format!("/oauth/debug/simulate?client_id={id}")))).await;
    assert_eq!(listed["faults"], json!([]));
    // Cleared at B, gone at A.
    json_of(http.post(a.url("/oauth/debug/simulate")).json(&json!({
        "client_id": id, "fault": "fhir_server_error", "times": 0,
    })))
    .await;
    let cleared = http
        .delete(b.url(&format!("/oauth/debug/simulate?client_id={id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.status(), 200);
    let read = http
        .get(a.url("/api/fhir/Patient/smart-1288992"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
}
