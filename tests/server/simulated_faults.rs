//! Simulated faults through the debug endpoint: each fault's exact status, body and
//! headers, `times` counting, until-cleared, clearing, isolation between clients, the
//! endpoint's refusals, a launch's fault, and `slow` holding up only its own request.

use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use reqwest::redirect::Policy;
use serde_json::{json, Value};
use url::Url;

use crate::portal::*;

/// One answer, read whole, whatever its status (a 500 included).
struct Answer {
    status: u16,
    headers: HeaderMap,
    text: String,
}

impl Answer {
    async fn read(response: reqwest::Response) -> Answer {
        Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            text: response.text().await.expect("a readable body"),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    /// The marker header's value.
    fn simulated(&self) -> Option<&str> {
        self.header("smartnb-simulated")
    }
}

async fn simulate(server: &TestServer, body: Value) -> Reply {
    server.post_json("/oauth/debug/simulate", &body).await
}

async fn set(server: &TestServer, client_id: &str, fault: &str, times: i64) {
    let reply = simulate(
        server,
        json!({"client_id": client_id, "fault": fault, "times": times}),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

async fn fhir(server: &TestServer, token: &str, path: &str) -> Answer {
    let url = format!("{}{path}", server.fhir_base());
    Answer::read(
        server
            .http
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn refresh(server: &TestServer, app: &App, refresh: &str) -> Answer {
    let mut request = server
        .http
        .post(server.url("/oauth/token"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh)]);
    if let Some(secret) = &app.client_secret {
        request = request.basic_auth(&app.client_id, Some(secret));
    }
    Answer::read(request.send().await.unwrap()).await
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

async fn authorize(server: &TestServer, app: &App) -> Answer {
    let url = Authorize::new(server, app).pkce(&Pkce::fresh()).url(server);
    Answer::read(no_redirects().get(url).send().await.unwrap()).await
}

async fn app_with_tokens(server: &TestServer) -> (App, Tokens) {
    let app = server.register_seed_app().await;
    let tokens = server
        .debug_token(json!({
            "client_id": app.client_id,
            "username": "daniel-adams",
            "patient_id": "smart-1288992",
        }))
        .await;
    (app, tokens)
}

const PATIENT: &str = "/Patient/smart-1288992";

fn outcome_code(answer: &Answer) -> String {
    let body = answer.json();
    assert_eq!(body["resourceType"], "OperationOutcome", "{}", answer.text);
    body["issue"][0]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn each_fhir_fault_answers_as_a_real_server_would() {
    let server = TestServer::start().await;
    let (app, tokens) = app_with_tokens(&server).await;
    let token = tokens.access.as_str();

    set(&server, &app.client_id, "fhir_expired_token", 1).await;
    let expired = fhir(&server, token, PATIENT).await;
    assert_eq!(expired.status, 401, "{}", expired.text);
    let challenge = expired.header("www-authenticate").unwrap_or_default();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(challenge.contains("expired"), "{challenge}");
    outcome_code(&expired);
    assert_eq!(expired.simulated(), Some("fhir_expired_token; remaining=0"));

    set(&server, &app.client_id, "fhir_invalid_token", 1).await;
    let invalid = fhir(&server, token, PATIENT).await;
    let unknown = fhir(&server, "no-such-token", PATIENT).await;
    assert_eq!((invalid.status, unknown.status), (401, 401));
    assert_eq!(invalid.text, unknown.text, "as for an unknown token");
    assert_eq!(
        invalid.header("www-authenticate"),
        unknown.header("www-authenticate")
    );
    assert_eq!(unknown.simulated(), None);

    set(&server, &app.client_id, "fhir_insufficient_scope", 1).await;
    let forbidden = fhir(&server, token, "/Observation?patient=smart-1288992").await;
    assert_eq!(forbidden.status, 403, "{}", forbidden.text);
    assert!(forbidden
        .header("www-authenticate")
        .unwrap_or_default()
        .contains("error=\"insufficient_scope\""));
    assert_eq!(outcome_code(&forbidden), "forbidden");

    set(&server, &app.client_id, "fhir_server_error", 1).await;
    let broken = fhir(&server, token, PATIENT).await;
    assert_eq!(broken.status, 500, "{}", broken.text);
    assert_eq!(outcome_code(&broken), "exception");
    assert!(broken
        .header("content-type")
        .unwrap_or_default()
        .starts_with("application/fhir+json"));

    set(&server, &app.client_id, "fhir_throttled", 1).await;
    let throttled = fhir(&server, token, PATIENT).await;
    assert_eq!(throttled.status, 429, "{}", throttled.text);
    assert_eq!(throttled.header("retry-after"), Some("2"));
    assert_eq!(outcome_code(&throttled), "throttled");

    // Every fault was used once: the real answer again, with no marker.
    let fine = fhir(&server, token, PATIENT).await;
    assert_eq!(fine.status, 200, "{}", fine.text);
    assert_eq!(fine.simulated(), None);
    assert_eq!(fine.header("retry-after"), None);
    // The metadata is not a protected request: never faulted.
    set(&server, &app.client_id, "fhir_server_error", 0).await;
    let metadata = fhir(&server, token, "/metadata").await;
    assert_eq!(metadata.status, 200);
}

#[tokio::test]
async fn times_count_down_and_zero_means_until_cleared() {
    let server = TestServer::start().await;
    let (app, tokens) = app_with_tokens(&server).await;
    let token = tokens.access.as_str();
    set(&server, &app.client_id, "fhir_throttled", 3).await;
    let listed = server
        .get(&server.url(&format!(
            "/oauth/debug/simulate?client_id={}",
            app.client_id
        )))
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.json["client_id"], app.client_id.as_str());
    assert_eq!(
        listed.json["faults"],
        json!([{"fault": "fhir_throttled", "times": 3, "remaining": 3, "at": "fhir", "delay_ms": null}])
    );
    for left in [2, 1, 0] {
        let answer = fhir(&server, token, PATIENT).await;
        assert_eq!(answer.status, 429);
        assert_eq!(
            answer.simulated(),
            Some(format!("fhir_throttled; remaining={left}").as_str())
        );
    }
    assert_eq!(fhir(&server, token, PATIENT).await.status, 200);

    set(&server, &app.client_id, "fhir_server_error", 0).await;
    for _ in 0..5 {
        let answer = fhir(&server, token, PATIENT).await;
        assert_eq!(answer.status, 500);
        assert_eq!(
            answer.simulated(),
            Some("fhir_server_error; remaining=until-cleared")
        );
    }
    let listed = server
        .get(&server.url(&format!(
            "/oauth/debug/simulate?client_id={}",
            app.client_id
        )))
        .await;
    assert_eq!(listed.json["faults"][0]["remaining"], Value::Null);
    assert_eq!(listed.json["faults"][0]["times"], 0);
    let cleared = Answer::read(
        server
            .http
            .delete(server.url(&format!(
                "/oauth/debug/simulate?client_id={}",
                app.client_id
            )))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(cleared.status, 200, "{}", cleared.text);
    assert_eq!(cleared.json()["cleared"], 1);
    assert_eq!(cleared.json()["faults"], json!([]));
    assert_eq!(fhir(&server, token, PATIENT).await.status, 200);
}

#[tokio::test]
async fn faults_are_consumed_in_order_by_the_requests_they_apply_to() {
    let server = TestServer::start().await;
    let (app, tokens) = app_with_tokens(&server).await;
    set(&server, &app.client_id, "token_unavailable", 1).await;
    set(&server, &app.client_id, "fhir_throttled", 1).await;
    set(&server, &app.client_id, "fhir_server_error", 1).await;
    // A FHIR request skips the token fault ahead of it and meets the first FHIR one.
    assert_eq!(fhir(&server, &tokens.access, PATIENT).await.status, 429);
    assert_eq!(fhir(&server, &tokens.access, PATIENT).await.status, 500);
    assert_eq!(fhir(&server, &tokens.access, PATIENT).await.status, 200);
    let unavailable = refresh(&server, &app, tokens.refresh()).await;
    assert_eq!(unavailable.status, 503, "{}", unavailable.text);
    assert_eq!(unavailable.json()["error"], "temporarily_unavailable");
    assert_eq!(unavailable.header("retry-after"), Some("2"));
    assert_eq!(unavailable.header("cache-control"), Some("no-store"));
    // Nothing was spent: the same refresh token works now.
    let refreshed = refresh(&server, &app, tokens.refresh()).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
}

#[tokio::test]
async fn each_token_fault_answers_its_grant() {
    let server = TestServer::start().await;
    let (app, tokens) = app_with_tokens(&server).await;

    set(&server, &app.client_id, "token_invalid_client", 1).await;
    let refused = refresh(&server, &app, tokens.refresh()).await;
    assert_eq!(refused.status, 401, "{}", refused.text);
    assert_eq!(refused.json()["error"], "invalid_client");
    assert!(refused
        .header("www-authenticate")
        .unwrap_or_default()
        .starts_with("Basic "));

    // token_invalid_grant is for code exchanges: a refresh passes it by.
    set(&server, &app.client_id, "token_invalid_grant", 1).await;
    set(&server, &app.client_id, "token_expired_refresh", 1).await;
    let expired = refresh(&server, &app, tokens.refresh()).await;
    assert_eq!(expired.status, 400, "{}", expired.text);
    assert_eq!(expired.json()["error"], "invalid_grant");
    assert!(expired.json()["error_description"]
        .as_str()
        .unwrap_or_default()
        .contains("expired"));
    assert_eq!(
        expired.simulated(),
        Some("token_expired_refresh; remaining=0")
    );

    set(&server, &app.client_id, "token_invalid_scope", 1).await;
    let scope = refresh(&server, &app, tokens.refresh()).await;
    assert_eq!(scope.status, 400);
    assert_eq!(scope.json()["error"], "invalid_scope");
    let fine = refresh(&server, &app, tokens.refresh()).await;
    assert_eq!(fine.status, 200, "{}", fine.text);

    // The code exchange meets token_invalid_grant, which left the code unspent.
    let pkce = Pkce::fresh();
    let request = Authorize::new(&server, &app).pkce(&pkce);
    let callback = crate::portal::authorize(&server, &request, DANIEL).await;
    let code = callback.code();
    let refused = app.exchange(&server, &code, Some(&pkce.verifier)).await;
    refused.assert_error(400, "invalid_grant");
    assert_eq!(
        refused.header("smartnb-simulated"),
        "token_invalid_grant; remaining=0"
    );
    let tokens = app.exchange(&server, &code, Some(&pkce.verifier)).await;
    assert_eq!(tokens.status, 200, "{}", tokens.text);
}

#[tokio::test]
async fn each_authorize_fault_answers_as_a_real_authorize_endpoint_would() {
    let server = TestServer::start().await;
    let app = server.register_seed_app().await;
    for fault in ["authorize_invalid_client", "authorize_invalid_redirect_uri"] {
        set(&server, &app.client_id, fault, 1).await;
        let page = authorize(&server, &app).await;
        assert_eq!(page.status, 400, "{fault}: {}", page.text);
        assert_eq!(page.header("location"), None, "{fault}: no redirect");
        assert!(page
            .header("content-type")
            .unwrap_or_default()
            .starts_with("text/html"));
        assert_eq!(
            page.simulated(),
            Some(format!("{fault}; remaining=0").as_str())
        );
    }
    for (fault, error) in [
        ("authorize_invalid_scope", "invalid_scope"),
        ("authorize_access_denied", "access_denied"),
        ("authorize_server_error", "server_error"),
    ] {
        set(&server, &app.client_id, fault, 1).await;
        let answer = authorize(&server, &app).await;
        assert_eq!(answer.status, 302, "{fault}: {}", answer.text);
        let location = Url::parse(answer.header("location").unwrap()).unwrap();
        assert!(
            location.as_str().starts_with(&app.redirect_uri),
            "{location}"
        );
        let param = |name: &str| {
            location
                .query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        assert_eq!(param("error").as_deref(), Some(error), "{fault}");
        assert_eq!(param("state").as_deref(), Some(SEED_STATE), "{fault}");
        assert!(param("error_description").is_some());
        assert!(param("code").is_none());
    }
    // Used up: the sign-in page again.
    let real = authorize(&server, &app).await;
    assert_eq!(real.status, 303, "{}", real.text);
    assert_eq!(real.simulated(), None);
}

#[tokio::test]
async fn a_fault_for_one_client_never_touches_another() {
    let server = TestServer::start().await;
    let (faulty, faulty_tokens) = app_with_tokens(&server).await;
    let (other, other_tokens) = app_with_tokens(&server).await;
    for fault in [
        "authorize_access_denied",
        "token_unavailable",
        "fhir_server_error",
    ] {
        set(&server, &faulty.client_id, fault, 0).await;
    }
    for _ in 0..3 {
        let read = fhir(&server, &other_tokens.access, PATIENT).await;
        assert_eq!((read.status, read.simulated()), (200, None));
        let page = authorize(&server, &other).await;
        assert_eq!((page.status, page.simulated()), (303, None));
    }
    let refreshed = refresh(&server, &other, other_tokens.refresh()).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    // A request naming the faulty client without its secret is refused for real and does
    // not use up the fault.
    let impostor = Answer::read(
        server
            .http
            .post(server.url("/oauth/token"))
            .basic_auth(&faulty.client_id, Some("wrong"))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((impostor.status, impostor.simulated()), (401, None));
    // The faulty client still meets all three.
    assert_eq!(
        fhir(&server, &faulty_tokens.access, PATIENT).await.status,
        500
    );
    assert_eq!(
        refresh(&server, &faulty, faulty_tokens.refresh())
            .await
            .status,
        503
    );
    assert_eq!(authorize(&server, &faulty).await.status, 302);
}

#[tokio::test]
async fn the_endpoint_refuses_what_it_cannot_do_and_says_why() {
    let server = TestServer::start().await;
    let app = server.register_seed_app().await;
    let id = app.client_id.as_str();
    let unknown = simulate(&server, json!({"client_id": id, "fault": "fhir_on_fire"})).await;
    unknown.assert_error(400, "unknown_fault");
    let text = unknown.str("error_description");
    for name in smartnb::server::simulate::FAULT_NAMES {
        assert!(text.contains(name), "{name} not listed: {text}");
    }
    let nobody = simulate(&server, json!({"client_id": "nobody", "fault": "slow"})).await;
    nobody.assert_error(400, "no_client");
    let missing = simulate(&server, json!({"fault": "slow"})).await;
    missing.assert_error(400, "no_client");
    for (body, says) in [
        (
            json!({"client_id": id, "fault": "slow", "times": -1}),
            "times",
        ),
        (
            json!({"client_id": id, "fault": "slow", "times": 1001}),
            "times",
        ),
        (
            json!({"client_id": id, "fault": "slow", "times": "2"}),
            "times",
        ),
        (
            json!({"client_id": id, "fault": "slow", "delay_ms": 0}),
            "delay_ms",
        ),
        (
            json!({"client_id": id, "fault": "slow", "delay_ms": 60001}),
            "delay_ms",
        ),
        (
            json!({"client_id": id, "fault": "slow", "at": "register"}),
            "authorize, token or fhir",
        ),
        (
            json!({"client_id": id, "fault": "fhir_throttled", "delay_ms": 5}),
            "slow",
        ),
        (
            json!({"client_id": id, "fault": "fhir_throttled", "at": "fhir"}),
            "slow",
        ),
        (
            json!({"client_id": id, "fault": "slow", "colour": "red"}),
            "colour",
        ),
        (
            json!({"client_id": id, "fault": "token_replayed_jti"}),
            "client assertion",
        ),
    ] {
        let reply = simulate(&server, body.clone()).await;
        reply.assert_error(400, "invalid_request");
        assert!(
            reply.str("error_description").contains(says),
            "{body}: {}",
            reply.text
        );
    }
    let backend = server
        .post_json("/oauth/register", &json!({
            "client_name": "Backend",
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [serde_json::from_str::<Value>(&p256::SecretKey::random(&mut rsa::rand_core::OsRng).public_key().to_jwk_string()).unwrap()]},
            "scope": "system/*.rs",
        }))
        .await;
    assert_eq!(backend.status, 201, "{}", backend.text);
    let backend_id = backend.str("client_id").to_string();
    for fault in [
        "authorize_access_denied",
        "token_invalid_grant",
        "token_expired_refresh",
    ] {
        let reply = simulate(&server, json!({"client_id": backend_id, "fault": fault})).await;
        reply.assert_error(400, "invalid_request");
        assert!(
            reply.str("error_description").contains("never apply"),
            "{}",
            reply.text
        );
    }
    let jti = simulate(
        &server,
        json!({"client_id": backend_id, "fault": "token_replayed_jti"}),
    )
    .await;
    assert_eq!(jti.status, 200, "{}", jti.text);
    // At most 100 queued per client.
    for _ in 0..99 {
        set(&server, id, "fhir_throttled", 1).await;
    }
    let full = simulate(&server, json!({"client_id": id, "fault": "fhir_throttled"})).await;
    assert_eq!(full.status, 200, "the hundredth fits: {}", full.text);
    let over = simulate(&server, json!({"client_id": id, "fault": "fhir_throttled"})).await;
    over.assert_error(400, "invalid_request");
    assert!(over.str("error_description").contains("100"));
}

#[tokio::test]
async fn slow_delays_its_own_request_and_nothing_else() {
    let server = TestServer::start().await;
    let (slow_app, slow_tokens) = app_with_tokens(&server).await;
    let (_, other_tokens) = app_with_tokens(&server).await;
    // A short delay, answered for real once it is over.
    let reply = simulate(
        &server,
        json!({"client_id": slow_app.client_id, "fault": "slow", "delay_ms": 300, "at": "fhir"}),
    )
    .await;
    assert_eq!(reply.json["faults"][0]["delay_ms"], 300);
    let started = Instant::now();
    let answer = fhir(&server, &slow_tokens.access, PATIENT).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json()["id"], "smart-1288992");
    assert_eq!(answer.simulated(), Some("slow; remaining=0"));

    // A long one: while it waits, forty other requests (another client's, and the slow
    // client's own token refresh, which `at: fhir` does not touch) are all answered.
    simulate(
        &server,
        json!({"client_id": slow_app.client_id, "fault": "slow", "delay_ms": 60000, "at": "fhir"}),
    )
    .await;
    let held = {
        let http = server.http.clone();
        let url = format!("{}{PATIENT}", server.fhir_base());
        let token = slow_tokens.access.clone();
        tokio::spawn(async move { http.get(url).bearer_auth(token).send().await })
    };
    // The held request has taken the fault once the list is empty.
    let list_url = server.url(&format!(
        "/oauth/debug/simulate?client_id={}",
        slow_app.client_id
    ));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server.get(&list_url).await.json["faults"]
        .as_array()
        .is_some_and(Vec::is_empty)
    {
        assert!(Instant::now() < deadline, "the slow request never arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut answered = 0;
    for _ in 0..40 {
        if fhir(&server, &other_tokens.access, PATIENT).await.status == 200 {
            answered += 1;
        }
    }
    let refreshed = refresh(&server, &slow_app, slow_tokens.refresh()).await;
    assert_eq!(refreshed.status, 200);
    assert_eq!(answered, 40);
    assert!(!held.is_finished(), "the slow request is still held");
    held.abort();
}

#[tokio::test]
async fn a_launch_carries_its_fault_to_the_app_that_uses_it() {
    let server = TestServer::start().await;
    let app = server
        .register(json!({
            "client_name": "EHR app",
            "redirect_uris": ["http://ehr-app.example/callback"],
            "scope": "launch openid fhirUser patient/*.read offline_access",
            "token_endpoint_auth_method": "client_secret_basic",
        }))
        .await;
    let launch = |fault: &str| {
        let body =
            json!({"patient_id": "smart-1081332", "client_id": app.client_id, "fault": fault});
        let server = &server;
        async move { server.post_json("/oauth/debug/launch", &body).await }
    };
    let unknown = launch("fhir_on_fire").await;
    unknown.assert_error(400, "unknown_fault");
    let minted = launch("authorize_access_denied").await;
    assert_eq!(minted.status, 200, "{}", minted.text);
    let request = Authorize::new(&server, &app)
        .set("launch", minted.str("launch"))
        .pkce(&Pkce::fresh());
    let url = request.url(&server);
    let answer = Answer::read(no_redirects().get(url).send().await.unwrap()).await;
    assert_eq!(answer.status, 302, "{}", answer.text);
    let location = answer.header("location").unwrap_or_default();
    assert!(location.contains("error=access_denied"), "{location}");
    assert!(location.contains("state=my-obscure-state"), "{location}");
    // Queued for that one use only: nothing is left.
    let listed = server
        .get(&server.url(&format!(
            "/oauth/debug/simulate?client_id={}",
            app.client_id
        )))
        .await;
    assert_eq!(listed.json["faults"], json!([]));

    // A FHIR fault from a launch waits in the app's queue for its first FHIR request.
    let minted = launch("fhir_expired_token").await;
    let request = Authorize::new(&server, &app)
        .set("launch", minted.str("launch"))
        .pkce(&Pkce::fresh());
    let answer = Answer::read(
        no_redirects()
            .get(request.url(&server))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 303, "the flow goes on: {}", answer.text);
    let listed = server
        .get(&server.url(&format!(
            "/oauth/debug/simulate?client_id={}",
            app.client_id
        )))
        .await;
    assert_eq!(listed.json["faults"][0]["fault"], "fhir_expired_token");
    assert_eq!(listed.json["faults"][0]["remaining"], 1);
}

#[tokio::test]
async fn a_replayed_jti_is_simulated_for_clients_that_sign_assertions() {
    use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
    use p256::pkcs8::EncodePrivateKey;
    let server = TestServer::start().await;
    let secret = p256::SecretKey::random(&mut rsa::rand_core::OsRng);
    let pem = secret.to_pkcs8_pem(p256::pkcs8::LineEnding::LF).unwrap();
    let mut jwk: Value = serde_json::from_str(&secret.public_key().to_jwk_string()).unwrap();
    jwk["kid"] = json!("k1");
    let registered = server
        .post_json(
            "/oauth/register",
            &json!({
                "client_name": "Backend",
                "grant_types": ["client_credentials"],
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks": {"keys": [jwk]},
                "scope": "system/*.rs",
            }),
        )
        .await;
    let client_id = registered.str("client_id").to_string();
    let key = EncodingKey::from_ec_pem(pem.as_bytes()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token_request = |jti: &str| {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("k1".into());
        let claims = json!({
            "iss": client_id, "sub": client_id, "aud": server.url("/oauth/token"),
            "exp": now + 240, "iat": now, "jti": jti,
        });
        let assertion = encode(&header, &claims, &key).unwrap();
        server.http.post(server.url("/oauth/token")).form(&[
            ("grant_type", "client_credentials"),
            ("scope", "system/Patient.rs"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion.as_str()),
        ])
    };
    set(&server, &client_id, "token_replayed_jti", 1).await;
    let replayed = Answer::read(token_request("first").send().await.unwrap()).await;
    assert_eq!(replayed.status, 401, "{}", replayed.text);
    assert_eq!(replayed.json()["error"], "invalid_client");
    assert!(replayed.json()["error_description"]
        .as_str()
        .unwrap_or_default()
        .contains("jti"));
    assert!(replayed.header("www-authenticate").is_some());
    assert_eq!(
        replayed.simulated(),
        Some("token_replayed_jti; remaining=0")
    );
    let fine = Answer::read(token_request("second").send().await.unwrap()).await;
    assert_eq!(fine.status, 200, "{}", fine.text);
}

#[tokio::test]
async fn faults_outlive_a_restart_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let state = smartnb::server::StateLocation::Sqlite(dir.path().join("state.db"));
    let config = || smartnb::server::Config {
        port: 0,
        state: state.clone(),
        ..smartnb::server::Config::default()
    };
    let server = TestServer::start_with(config()).await;
    let (app, tokens) = app_with_tokens(&server).await;
    set(&server, &app.client_id, "fhir_throttled", 2).await;
    assert_eq!(fhir(&server, &tokens.access, PATIENT).await.status, 429);
    server.shutdown().await;

    let server = TestServer::start_with(config()).await;
    let answer = fhir(&server, &tokens.access, PATIENT).await;
    assert_eq!(answer.status, 429, "{}", answer.text);
    assert_eq!(answer.simulated(), Some("fhir_throttled; remaining=0"));
    assert_eq!(fhir(&server, &tokens.access, PATIENT).await.status, 200);
}
