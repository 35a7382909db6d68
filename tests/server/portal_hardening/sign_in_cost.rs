//! A user name nobody has costs sign-in what a wrong password costs: one argon2 check
//! (counted, not timed), and the same words on the page, so neither the time taken nor
//! the answer tells which names exist.

use axum::http::StatusCode;

use super::router::{Portal, PASSWORD};

#[tokio::test]
async fn an_unknown_name_costs_and_reads_like_a_wrong_password() {
    let portal = Portal::new();
    let users = &portal.state.users;
    let cost = |before: u64| users.verifications() - before;

    let before = users.verifications();
    let answer = portal.try_sign_in("joseph-ross", "wrong").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(cost(before), 1, "a wrong password");

    let before = users.verifications();
    portal.try_sign_in("nobody-at-all", "wrong").await;
    assert_eq!(cost(before), 1, "an unknown name");

    let before = users.verifications();
    portal.try_sign_in("nobody-at-all", PASSWORD).await;
    assert_eq!(cost(before), 1, "an unknown name with the demo password");

    // A remembered sign-in (the memo) does not make a wrong password or an unknown name
    // any cheaper.
    portal.sign_in("daniel-adams").await;
    let before = users.verifications();
    portal.sign_in("daniel-adams").await;
    assert_eq!(cost(before), 0, "the right password again, from the memo");
    for (who, password) in [("daniel-adams", "wrong"), ("daniel-adamz", PASSWORD)] {
        let before = users.verifications();
        portal.try_sign_in(who, password).await;
        assert_eq!(cost(before), 1, "{who}");
    }

    // Up to the pause and past it: the same status and the same words at every step.
    let portal = Portal::new();
    for attempt in 1..=6 {
        let known = portal.try_sign_in("joseph-ross", "wrong").await;
        let unknown = portal.try_sign_in("nobody-at-all", "wrong").await;
        assert_eq!(known.status, unknown.status, "attempt {attempt}");
        let (known, unknown) = (known.alert(), unknown.alert());
        assert!(known.is_some(), "attempt {attempt}");
        assert_eq!(known, unknown, "attempt {attempt}");
    }
}
