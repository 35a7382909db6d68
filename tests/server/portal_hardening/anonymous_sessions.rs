//! Anonymous visitors cost the server nothing: a browser that has not signed in holds a
//! cookie with a random nonce and its CSRF token is an HMAC of it, so no number of visits
//! to the sign-in page can push a signed-in session out. Signed-in sessions are bounded in
//! all and per user, so one (public) demo account's flood only evicts its own sessions.

use axum::http::{HeaderMap, StatusCode};
use sha2::{Digest, Sha256};
use smartnb::server::pages::session::{Sessions, COOKIE};

use super::router::{Portal, PASSWORD};

#[tokio::test]
async fn cookie_less_visits_store_nothing_and_sign_nobody_out() {
    // A table of 10 in all: 2,000 visits are 200 times what it holds.
    let portal = Portal::with_caps(10, 3);
    let joseph = portal.sign_in("joseph-ross").await;
    assert_eq!(portal.state.sessions.len().await.unwrap(), 1);
    let mut cookies = std::collections::HashSet::new();
    for _ in 0..2_000 {
        let login = portal.get("/login", None).await;
        assert_eq!(login.status, StatusCode::OK);
        cookies.insert(login.cookie().expect("a cookie for the anonymous browser"));
    }
    assert_eq!(cookies.len(), 2_000, "each browser its own nonce");
    assert_eq!(
        portal.state.sessions.len().await.unwrap(),
        1,
        "nothing held for anonymous visitors"
    );
    assert!(portal.signed_in(&joseph).await);
}

#[tokio::test]
async fn two_hundred_thousand_anonymous_browsers_leave_a_sign_in_alone() {
    let store = std::sync::Arc::new(smartnb::server::store::MemoryStore::new());
    let sessions = Sessions::new(store, smartnb::server::pages::session::DEFAULT_LIFETIME);
    let signed_in = sessions.start("daniel-adams").await.unwrap();
    for _ in 0..200_000 {
        let (visitor, cookie) = sessions.ensure(&HeaderMap::new(), false).await.unwrap();
        assert!(visitor.username.is_none() && cookie.is_some());
    }
    assert_eq!(sessions.len().await.unwrap(), 1);
    let mut headers = HeaderMap::new();
    headers.insert(
        axum::http::header::COOKIE,
        format!("{COOKIE}={}", signed_in.id).parse().unwrap(),
    );
    assert_eq!(
        sessions.current(&headers).await.and_then(|s| s.username),
        Some("daniel-adams".to_string())
    );
}

#[tokio::test]
async fn failed_sign_ins_and_refused_forms_store_nothing_either() {
    let portal = Portal::new();
    for _ in 0..3 {
        let answer = portal.try_sign_in("daniel-adams", "wrong").await;
        assert_eq!(answer.status, StatusCode::OK);
        assert!(
            answer.cookie().is_none(),
            "the anonymous cookie is kept as it is"
        );
    }
    let refused = portal
        .post(
            "/login",
            None,
            &[("csrf", "x"), ("username", "daniel-adams")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(portal.state.sessions.len().await.unwrap(), 0);
}

#[tokio::test]
async fn a_flood_of_one_users_sign_ins_only_evicts_that_users_own_sessions() {
    // Room for 20 in all and 5 per user; daniel-adams signs in 100 times.
    let portal = Portal::with_caps(20, 5);
    let joseph = portal.sign_in("joseph-ross").await;
    let (anonymous, csrf) = portal.anonymous().await;
    let mut daniels = Vec::new();
    for _ in 0..100 {
        let answer = portal
            .sign_in_from(&anonymous, &csrf, "daniel-adams", PASSWORD)
            .await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        daniels.push(answer.cookie().expect("a session cookie"));
    }
    let sessions = &portal.state.sessions;
    assert_eq!(sessions.len_for("daniel-adams").await.unwrap(), 5);
    assert_eq!(sessions.len().await.unwrap(), 6);
    assert!(
        portal.signed_in(&joseph).await,
        "joseph-ross is still signed in"
    );
    for (n, cookie) in daniels.iter().enumerate() {
        assert_eq!(
            portal.signed_in(cookie).await,
            n >= 95,
            "daniel's sign-in {n}"
        );
    }
}

#[tokio::test]
async fn csrf_is_refused_when_missing_wrong_or_another_browsers() {
    let portal = Portal::new();
    let (a, a_csrf) = portal.anonymous().await;
    let (b, b_csrf) = portal.anonymous().await;
    assert_ne!(a_csrf, b_csrf);
    // The same nonce on another in-memory server (or after a restart) has another token;
    // replicas sharing a durable store share the key (the store suite checks that).
    let replica = Portal::new();
    let there = replica.get("/login", Some(&a)).await;
    assert!(there.cookie().is_none(), "the nonce is kept");
    let replica_csrf = there.hidden("csrf").unwrap();
    assert_ne!(replica_csrf, a_csrf);

    let attempts: Vec<(&str, Option<&str>, Option<&str>)> = vec![
        ("missing", Some(&a), None),
        (
            "wrong",
            Some(&a),
            Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        ),
        ("empty", Some(&a), Some("")),
        ("another browser's", Some(&a), Some(&b_csrf)),
        ("another server's", Some(&a), Some(&replica_csrf)),
        ("no cookie", None, Some(&a_csrf)),
        ("a junk cookie", Some("smartnb_session=x"), Some(&a_csrf)),
        ("the other cookie", Some(&b), Some(&a_csrf)),
    ];
    for (how, cookie, csrf) in attempts {
        let mut pairs = vec![("username", "joseph-ross"), ("password", PASSWORD)];
        if let Some(csrf) = csrf {
            pairs.push(("csrf", csrf));
        }
        let answer = portal.post("/login", cookie, &pairs).await;
        assert_eq!(
            answer.status,
            StatusCode::FORBIDDEN,
            "{how}: {}",
            answer.body
        );
        assert!(answer.cookie().is_none(), "{how}");
    }
    assert_eq!(portal.state.sessions.len().await.unwrap(), 0);
    let answer = portal
        .sign_in_from(&a, &a_csrf, "joseph-ross", PASSWORD)
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(portal.state.sessions.len().await.unwrap(), 1);
}

#[tokio::test]
async fn is_signed_in_knows_live_sign_ins_by_the_hash_of_their_cookie() {
    let portal = Portal::new();
    let sha = |cookie: &str| -> [u8; 32] {
        let id = cookie.trim_start_matches("smartnb_session=");
        Sha256::digest(id.as_bytes()).into()
    };
    let (anonymous, _) = portal.anonymous().await;
    let signed_in = portal.sign_in("joseph-ross").await;
    let sessions = &portal.state.sessions;
    assert_eq!(
        sessions.len().await.unwrap(),
        1,
        "the anonymous browser is not held"
    );
    assert!(sessions.is_signed_in(&sha(&signed_in)).await);
    assert!(!sessions.is_signed_in(&sha(&anonymous)).await);
    // Signing out ends it.
    let logout = portal.get("/logout", Some(&signed_in)).await;
    let csrf = logout.hidden("csrf").unwrap();
    let out = portal
        .post("/logout", Some(&signed_in), &[("csrf", &csrf)])
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(!sessions.is_signed_in(&sha(&signed_in)).await);
    assert!(!portal.signed_in(&signed_in).await);
}
