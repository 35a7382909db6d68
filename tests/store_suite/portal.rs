//! The portal's state: browser sessions (shared between handles, bounded per user, notices
//! shown once), the anonymous CSRF key (made once whoever asks first), pending authorize
//! requests (taken exactly once among racers on two handles) and failure counts (racing
//! failures on two handles all counted; the pause holds on both).

use std::sync::Arc;

use smartnb::server::bounded::Bounds;
use smartnb::server::store::{
    Caps, FailureScope, Limit, PendingAuthorization, PendingBounds, Store, StoredSession,
};

use super::{hash, now, KEEP};

fn session(username: &str, created: i64) -> StoredSession {
    StoredSession {
        id_sha256: hash("session"),
        username: username.into(),
        csrf: format!("csrf-{}", uuid::Uuid::new_v4()),
        created,
    }
}

const CAPS: Caps = Caps {
    total: 100,
    per_user: 3,
};

/// Sessions seen from the other handle, capped per user oldest first, notices once, ended,
/// swept.
pub async fn sessions(stores: Vec<Arc<dyn Store>>) {
    let (one, other) = (stores[0].clone(), stores[stores.len() - 1].clone());
    let t = now();
    let user = format!("user-{}", uuid::Uuid::new_v4());
    let first = session(&user, t - 10);
    one.insert_session(first.clone(), CAPS, 3600).await.unwrap();
    assert_eq!(
        other.session(&first.id_sha256).await.unwrap(),
        Some(first.clone())
    );
    let mut later = Vec::new();
    for n in 0..3 {
        let s = session(&user, t - 5 + n);
        other.insert_session(s.clone(), CAPS, 3600).await.unwrap();
        later.push(s);
    }
    assert_eq!(one.session_count(Some(&user)).await.unwrap(), 3);
    assert!(
        one.session(&first.id_sha256).await.unwrap().is_none(),
        "the user's oldest made room"
    );
    let kept = &later[0];
    one.set_notice(&kept.id_sha256, "Revoked: app")
        .await
        .unwrap();
    let (a, b) = tokio::join!(
        one.take_notice(&kept.id_sha256),
        other.take_notice(&kept.id_sha256)
    );
    let taken: Vec<String> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
    assert_eq!(taken, vec!["Revoked: app".to_string()], "shown once");
    // A notice for a session that is not there is not kept.
    let ghost = hash("ghost");
    one.set_notice(&ghost, "x").await.unwrap();
    assert_eq!(other.take_notice(&ghost).await.unwrap(), None);
    assert!(other.end_session(&kept.id_sha256).await.unwrap());
    assert!(!one.end_session(&kept.id_sha256).await.unwrap());
    assert!(one.session(&kept.id_sha256).await.unwrap().is_none());
    // The sweep goes by the lifetime it is given.
    let old = session(&format!("old-{user}"), t - 13 * 3600);
    one.insert_session(old.clone(), CAPS, 12 * 3600)
        .await
        .unwrap();
    let swept = other.sweep(t, KEEP).await.unwrap();
    assert!(swept.sessions >= 1, "{swept:?}");
    assert!(one.session(&old.id_sha256).await.unwrap().is_none());
    assert!(one.session(&later[2].id_sha256).await.unwrap().is_some());
}

/// Racing first requests for the key all get the one kept.
pub async fn anonymous_key(stores: Vec<Arc<dyn Store>>) {
    let mut racers = Vec::new();
    for i in 0..8u8 {
        let store = stores[usize::from(i) % stores.len()].clone();
        racers.push(tokio::spawn(async move {
            store.anonymous_key(&[i; 32]).await.unwrap()
        }));
    }
    let mut keys = Vec::new();
    for racer in racers {
        keys.push(racer.await.unwrap());
    }
    assert_eq!(keys[0].len(), 32);
    assert!(keys.iter().all(|k| *k == keys[0]), "one key for everyone");
    assert_eq!(stores[0].anonymous_key(&[99; 32]).await.unwrap(), keys[0]);
}

fn request(client_id: &str, created: i64) -> PendingAuthorization {
    PendingAuthorization {
        id: uuid::Uuid::new_v4().simple().to_string(),
        client_id: client_id.into(),
        redirect_uri: "http://localhost:9001/authorized".into(),
        redirect_uri_given: true,
        scope: "launch/patient patient/*.read offline_access".into(),
        state: "my-obscure-state ünï".into(),
        code_challenge: Some("c".repeat(43)),
        nonce: Some("n-1".into()),
        sign_in: Default::default(),
        username: None,
        patient_id: None,
        context: Some(super::context()),
        created,
    }
}

/// Round trip, update, taken once among racers, expired not given, bounded per client.
pub async fn pending(stores: Vec<Arc<dyn Store>>) {
    let (one, other) = (stores[0].clone(), stores[stores.len() - 1].clone());
    let t = now();
    let client = format!("client-{}", uuid::Uuid::new_v4());
    let bounds = PendingBounds::default();
    let mut kept = request(&client, t);
    one.insert_pending(kept.clone(), bounds).await.unwrap();
    assert_eq!(
        other.pending(&kept.id, t).await.unwrap(),
        Some(kept.clone())
    );
    kept.username = Some("daniel-adams".into());
    kept.patient_id = Some("smart-1288992".into());
    assert!(other.update_pending(kept.clone()).await.unwrap());
    assert_eq!(one.pending(&kept.id, t).await.unwrap(), Some(kept.clone()));
    let mut racers = Vec::new();
    for i in 0..16 {
        let store = stores[i % stores.len()].clone();
        let id = kept.id.clone();
        racers.push(tokio::spawn(async move {
            store.take_pending(&id, t).await.unwrap()
        }));
    }
    let mut taken = Vec::new();
    for racer in racers {
        taken.extend(racer.await.unwrap());
    }
    assert_eq!(taken, vec![kept.clone()], "answered exactly once");
    assert!(!one.update_pending(kept.clone()).await.unwrap());
    assert_eq!(other.pending(&kept.id, t).await.unwrap(), None);
    // Past its lifetime a request is neither shown nor taken, and the sweep forgets it.
    let stale = request(&client, t - 31 * 60);
    one.insert_pending(stale.clone(), bounds).await.unwrap();
    assert_eq!(other.pending(&stale.id, t).await.unwrap(), None);
    let swept = other.sweep(t, KEEP).await.unwrap();
    assert!(swept.pending >= 1, "{swept:?}");
    assert_eq!(one.take_pending(&stale.id, t).await.unwrap(), None);
    // One client's flood drops its own oldest, never another client's.
    let tight = PendingBounds {
        per_client: Bounds {
            entries: 3,
            bytes: usize::MAX,
        },
        ..bounds
    };
    let victim = request(&format!("victim-{client}"), t);
    one.insert_pending(victim.clone(), tight).await.unwrap();
    let flood: Vec<PendingAuthorization> = (0..10).map(|n| request(&client, t + n)).collect();
    for r in &flood {
        other.insert_pending(r.clone(), tight).await.unwrap();
    }
    assert!(one.pending(&victim.id, t).await.unwrap().is_some());
    assert!(one.pending(&flood[9].id, t).await.unwrap().is_some());
    assert!(one.pending(&flood[6].id, t).await.unwrap().is_none());
    let (count, bytes) = one.pending_size().await.unwrap();
    assert!(count >= 4 && bytes > 0, "{count} {bytes}");
}

/// Racing failures all counted, the pause at the limit seen from both handles, attempts in
/// a pause do not prolong it, a success clears, the sweep forgets.
pub async fn failures(stores: Vec<Arc<dyn Store>>) {
    let (one, other) = (stores[0].clone(), stores[stores.len() - 1].clone());
    let t = now();
    let wide = Limit {
        failures: 1000,
        window: 900,
        pause: 900,
    };
    let name = format!("name-{}", uuid::Uuid::new_v4());
    let mut racers = Vec::new();
    for i in 0..40 {
        let store = stores[i % stores.len()].clone();
        let name = name.clone();
        racers.push(tokio::spawn(async move {
            store
                .add_failure(FailureScope::User, &name, &wide, t, 10_000)
                .await
                .unwrap()
                .failures
        }));
    }
    let mut seen = Vec::new();
    for racer in racers {
        seen.push(racer.await.unwrap());
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=40).collect::<Vec<u32>>(),
        "every failure counted once"
    );
    let count = other
        .failure_count(FailureScope::User, &name, &wide, t)
        .await
        .unwrap();
    assert_eq!(count.failures, 40);

    let five = Limit {
        failures: 5,
        window: 900,
        pause: 600,
    };
    let paused = format!("paused-{}", uuid::Uuid::new_v4());
    for n in 0..5 {
        let store = if n % 2 == 0 { &one } else { &other };
        let after = store
            .add_failure(FailureScope::Address, &paused, &five, t + n, 10_000)
            .await
            .unwrap();
        assert_eq!(after.failures, n as u32 + 1);
        assert_eq!(
            after.paused_for(t + n).is_some(),
            n == 4,
            "paused at the fifth"
        );
    }
    let during = one
        .add_failure(FailureScope::Address, &paused, &five, t + 100, 10_000)
        .await
        .unwrap();
    assert_eq!(during.paused_until, t + 4 + 600, "not prolonged");
    assert_eq!(
        other
            .failure_count(FailureScope::Address, &paused, &five, t + 100)
            .await
            .unwrap()
            .paused_for(t + 100),
        Some(504)
    );
    // A clear during the pause leaves it; after it, the count starts afresh.
    one.clear_failures(FailureScope::Address, &paused, t + 100)
        .await
        .unwrap();
    assert!(other
        .failure_count(FailureScope::Address, &paused, &five, t + 100)
        .await
        .unwrap()
        .paused_for(t + 100)
        .is_some());
    let fresh = other
        .add_failure(FailureScope::Address, &paused, &five, t + 700, 10_000)
        .await
        .unwrap();
    assert_eq!((fresh.failures, fresh.paused_until), (1, 0));
    one.clear_failures(FailureScope::User, &name, t)
        .await
        .unwrap();
    assert_eq!(
        other
            .failure_count(FailureScope::User, &name, &wide, t)
            .await
            .unwrap()
            .failures,
        0
    );
    // A lapsed window is forgotten by the sweep (the store's clock is `now`).
    let old = format!("old-{}", uuid::Uuid::new_v4());
    one.add_failure(FailureScope::User, &old, &five, t - 2000, 10_000)
        .await
        .unwrap();
    let swept = other.sweep(t, KEEP).await.unwrap();
    assert!(swept.failures >= 1, "{swept:?}");
    assert_eq!(
        one.failure_keys(FailureScope::User).await.unwrap(),
        other.failure_keys(FailureScope::User).await.unwrap()
    );
}
