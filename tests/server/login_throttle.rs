//! Sign-in brute force through the login form: failed passwords are counted per user name and
//! per client address, a pause refuses even the right password and says for how long, and the
//! server's clock (driven by the test) ends it.

use crate::portal::*;
use smartnb::server::clock::Clock;
use smartnb::server::pages::throttle::Limit;
use smartnb::server::{Config, LoginLimits};

const START: i64 = 1_900_000_000;

/// A server whose sign-in limits run on a clock the test moves.
async fn server_with(limits: LoginLimits) -> TestServer {
    TestServer::start_with(Config {
        login_limits: limits,
        ..Config::default()
    })
    .await
}

async fn default_server() -> (TestServer, Clock) {
    let clock = Clock::manual(START);
    let limits = LoginLimits {
        clock: clock.clone(),
        ..LoginLimits::default()
    };
    (server_with(limits).await, clock)
}

/// Fill in and send the sign-in form in this browser; the page it ends on.
async fn sign_in(browser: &Browser, username: &str, password: &str) -> Page {
    let mut form = browser.open("/login").await.page().form("/login");
    form.fill("username", username);
    form.fill("password", password);
    browser.submit(&form, "Sign in").await.page()
}

/// Whether the sign-in went through (it lands on /apps without a sign-in form).
fn got_in(page: &Page) -> bool {
    page.url.path() == "/apps" && !page.has_form("/login")
}

fn assert_refused(page: &Page, status: u16, says: &str) {
    assert_eq!(page.status.as_u16(), status, "{}", page.text());
    assert!(page.has_form("/login"), "the form is shown again");
    assert!(
        page.text().contains(says),
        "wanted {says:?}, page says: {}",
        page.text()
    );
}

#[tokio::test]
async fn five_wrong_passwords_pause_the_user_even_for_the_right_password() {
    let (server, clock) = default_server().await;
    let browser = Browser::new(&server);
    let bad = "That user name and password do not match an account.";
    let page = sign_in(&browser, DANIEL.username, "guess-1").await;
    assert_refused(&page, 200, bad);
    assert!(!page.text().contains("more failed"), "{}", page.text());
    sign_in(&browser, "Daniel-Adams", "guess-2").await;
    let page = sign_in(&browser, DANIEL.username, "guess-3").await;
    assert_refused(
        &page,
        200,
        "2 more failed tries and sign-in for this user pauses for 15 minutes.",
    );
    let page = sign_in(&browser, " DANIEL-ADAMS ", "guess-4").await;
    assert_refused(&page, 200, "1 more failed try");
    let page = sign_in(&browser, DANIEL.username, "guess-5").await;
    assert_refused(
        &page,
        200,
        "Too many failed sign-ins for this user; try again in 15 minutes.",
    );

    let page = sign_in(&browser, DANIEL.username, PASSWORD).await;
    assert_refused(
        &page,
        429,
        "Too many failed sign-ins for this user; try again in 15 minutes.",
    );
    assert_eq!(page.headers["retry-after"], "900");
    assert!(
        !page.text().contains("do not match"),
        "the password was not even checked"
    );
    let apps = browser.open("/apps").await.page();
    assert!(apps.has_form("/login"), "still signed out");

    clock.advance(5 * 60);
    let page = sign_in(&browser, DANIEL.username, PASSWORD).await;
    assert_refused(&page, 429, "try again in 10 minutes.");
    assert_eq!(page.headers["retry-after"], "600");

    let joseph = Browser::new(&server);
    assert!(
        got_in(&sign_in(&joseph, JOSEPH.username, PASSWORD).await),
        "other users go on"
    );

    clock.advance(10 * 60);
    assert!(got_in(&sign_in(&browser, DANIEL.username, PASSWORD).await));
}

#[tokio::test]
async fn old_failures_expire_and_a_success_starts_the_count_afresh() {
    let (server, clock) = default_server().await;
    let browser = Browser::new(&server);
    for i in 0..4 {
        sign_in(&browser, JOSEPH.username, &format!("old-{i}")).await;
        clock.advance(60);
    }
    clock.advance(15 * 60);
    for i in 0..4 {
        let page = sign_in(&browser, JOSEPH.username, &format!("new-{i}")).await;
        assert_refused(&page, 200, "do not match");
    }
    assert!(got_in(&sign_in(&browser, JOSEPH.username, PASSWORD).await));
    let fresh = Browser::new(&server);
    for i in 0..4 {
        let page = sign_in(&fresh, JOSEPH.username, &format!("again-{i}")).await;
        assert!(!page.text().contains("Too many"), "{}", page.text());
    }
    assert!(got_in(&sign_in(&fresh, JOSEPH.username, PASSWORD).await));
}

#[tokio::test]
async fn a_name_that_does_not_exist_is_paused_just_like_one_that_does() {
    let (server, _clock) = default_server().await;
    let browser = Browser::new(&server);
    let mut texts = Vec::new();
    for name in ["no-such-user", DANIEL.username] {
        let mut said = Vec::new();
        for i in 0..6 {
            let page = sign_in(&browser, name, &format!("guess-{i}")).await;
            said.push((page.status, page.text()));
        }
        texts.push(said);
    }
    assert_eq!(texts[0], texts[1]);
    assert_eq!(texts[0][5].0.as_u16(), 429);
}

#[tokio::test]
async fn many_names_from_one_address_pause_the_address() {
    let clock = Clock::manual(START);
    let server = server_with(LoginLimits {
        per_address: Limit {
            failures: 6,
            window: 900,
            pause: 600,
        },
        clock: clock.clone(),
        ..LoginLimits::default()
    })
    .await;
    let browser = Browser::new(&server);
    for i in 0..5 {
        let page = sign_in(&browser, &format!("sprayed-{i}"), PASSWORD).await;
        assert_refused(&page, 200, "do not match");
    }
    let page = sign_in(&browser, "sprayed-5", PASSWORD).await;
    assert_refused(
        &page,
        200,
        "Too many failed sign-ins from your network address; try again in 10 minutes.",
    );
    let page = sign_in(&Browser::new(&server), JOSEPH.username, PASSWORD).await;
    assert_refused(&page, 429, "from your network address");
    clock.advance(600);
    assert!(got_in(&sign_in(&browser, JOSEPH.username, PASSWORD).await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_right_passwords_at_once_from_one_address_all_get_in() {
    // Far more parallel sign-ins from loopback than either limit (5 per name, 20 per
    // address): none of them fails, so none may pause anything.
    let (server, _clock) = default_server().await;
    let server = std::sync::Arc::new(server);
    let mut sign_ins = Vec::new();
    for i in 0..40 {
        let server = server.clone();
        let who = [DANIEL, JOSEPH][i % 2];
        sign_ins.push(tokio::spawn(async move {
            let browser = Browser::new(&server);
            let page = sign_in(&browser, who.username, PASSWORD).await;
            (page.status.as_u16(), got_in(&page))
        }));
    }
    for sign_in in sign_ins {
        assert_eq!(sign_in.await.unwrap(), (200, true));
    }
}
