//! Two `smartnb serve` processes on one PostgreSQL: a browser signs in on one and goes on
//! at the other (its session, the sign-in form's CSRF token and the authorize request are
//! shared), survives the SIGKILL of the server it signed in at, and wrong passwords pause
//! the name after the same count whichever servers they reached.

use serde_json::{json, Value};
use url::Url;

use super::{path_of, Browser};
use crate::store_suite;
use crate::store_suite::process::Served;

const REDIRECT: &str = "http://localhost:9001/authorized";
const SCOPE: &str = "launch/patient patient/*.read offline_access";

async fn register(server: &Served) -> Value {
    let reply = reqwest::Client::new()
        .post(server.url("/oauth/register"))
        .json(&json!({
            "client_name": "replicas",
            "redirect_uris": [REDIRECT],
            "scope": SCOPE,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 201);
    reply.json().await.unwrap()
}

async fn token(server: &Served, app: &Value, form: &[(&str, &str)]) -> (u16, Value) {
    let reply = reqwest::Client::new()
        .post(server.url("/oauth/token"))
        .basic_auth(
            app["client_id"].as_str().unwrap(),
            app["client_secret"].as_str(),
        )
        .form(form)
        .send()
        .await
        .unwrap();
    (reply.status().as_u16(), reply.json().await.unwrap())
}

fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_browser_signs_in_at_one_server_and_goes_on_at_the_other_even_after_a_kill() {
    let database = store_suite::fresh::postgres_database().await;
    let a = Served::start(&database);
    let mut b = Served::start(&database);
    let app = register(&a).await;
    let client_id = app["client_id"].as_str().unwrap();
    let browser = Browser::default();

    // The app sends the browser to B; B keeps the request and asks for a sign-in.
    let mut authorize = Url::parse(&b.url("/oauth/authorize")).unwrap();
    authorize.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("scope", SCOPE),
        ("state", "across"),
        ("aud", &b.url("/api/fhir")),
    ]);
    let to_login = browser.get(&b.base, &path_of(&authorize)).await.location();
    assert_eq!(to_login.path(), "/login");
    // The sign-in form comes from A (its CSRF token from the shared key) and is posted to B.
    let login = browser.get(&a.base, &path_of(&to_login)).await.page();
    let mut form = login.form("/login");
    form.fill("username", "daniel-adams");
    form.fill("password", crate::portal::PASSWORD);
    let anonymous = browser.cookie().expect("an anonymous cookie");
    let next = browser.submit(&b.base, &form, "Sign in").await.location();
    let signed_in = browser.cookie().expect("a session cookie");
    assert_ne!(signed_in, anonymous, "a fresh id at sign-in");
    assert_eq!(next.path(), "/oauth/consent");

    // A shows the pages of the request B kept, for the session B started.
    let mut consent = browser.get(&a.base, &path_of(&next)).await.page();
    if consent.has_form("/oauth/consent/patient") {
        let mut picker = consent.form("/oauth/consent/patient");
        picker.choose("patient", "smart-1288992");
        let next = browser
            .submit(&b.base, &picker, "Continue")
            .await
            .location();
        consent = browser.get(&a.base, &path_of(&next)).await.page();
    }
    assert!(
        consent.has_form("/oauth/consent"),
        "{}: {}",
        consent.status,
        consent.text()
    );
    // Approved at B (a form drawn at A): the request is answered once.
    let form = consent.form("/oauth/consent");
    let back = browser.submit(&b.base, &form, "Approve").await.location();
    assert_eq!(param(&back, "state").as_deref(), Some("across"));
    let code = param(&back, "code").expect("a code");
    let again = browser.submit(&a.base, &form, "Approve").await.page();
    assert!(
        again.text().contains("expired") || again.status.as_u16() >= 400,
        "the request was answered already: {}",
        again.text()
    );
    let (status, tokens) = token(
        &a,
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");

    // B, where the browser signed in, is killed; the session is in the database.
    b.kill();
    let apps = browser.get(&a.base, "/apps").await.page();
    assert!(apps.text().contains("daniel-adams"), "{}", apps.text());
    let b2 = Served::start(&database);
    let apps = browser.get(&b2.base, "/apps").await.page();
    assert!(apps.has_form("/apps/revoke"), "{}", apps.text());
    // Revoked at B2, the notice shows at A, once.
    let revoked = browser
        .submit(&b2.base, &apps.form("/apps/revoke"), "")
        .await
        .location();
    assert_eq!(revoked.path(), "/apps");
    let shown = browser.get(&a.base, "/apps").await.page();
    assert!(shown.text().contains("Revoked"), "{}", shown.text());
    let later = browser.get(&b2.base, "/apps").await.page();
    assert!(!later.text().contains("Revoked"), "shown once");
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (status, _) = token(
        &b2,
        &app,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await;
    assert_eq!(status, 400, "the revoke ended the grant everywhere");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_passwords_pause_the_name_after_five_whichever_servers_they_reach() {
    let database = store_suite::fresh::postgres_database().await;
    let servers = [Served::start(&database), Served::start(&database)];
    let browser = Browser::default();
    let login = browser.get(&servers[0].base, "/login").await.page();
    let mut form = login.form("/login");
    form.fill("username", "joseph-ross");
    form.fill("password", "not the password");
    for n in 1..=5 {
        let page = browser
            .submit(&servers[n % 2].base, &form, "Sign in")
            .await
            .page();
        let text = page.text();
        assert_eq!(page.status, 200, "failure {n}: {text}");
        assert_eq!(
            text.contains("Too many failed sign-ins"),
            n == 5,
            "failure {n}: {text}"
        );
    }
    form.fill("password", crate::portal::PASSWORD);
    for server in &servers {
        let page = browser.submit(&server.base, &form, "Sign in").await.page();
        assert_eq!(page.status, 429, "{}", page.text());
        assert!(page.headers.contains_key("retry-after"));
    }
}
