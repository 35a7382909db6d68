//! The sweep in the store suite: what it removes, what it keeps, and idle registrations.

use std::collections::HashSet;
use std::sync::Arc;

use smartnb::server::store::{Retention, Store, Swept, CODE_REPLAY_MEMORY};

use super::{approval, client, code, knows_code, now, setup, token, KEEP};

/// The sweep removes exactly what can no longer be used, and keeps the rest.
pub async fn sweep(store: Arc<dyn Store>) {
    let now = now();
    store.sweep(now, KEEP).await.unwrap(); // start from what this test inserts
    let (client, live) = setup(&*store).await;
    let expired = approval(&client.client_id, now - 1);
    store.insert_approval(expired.clone()).await.unwrap();

    let keep_live = token(&live.id, now + 3600, true, None);
    let keep_refreshable = token(&live.id, now - 10, true, None);
    let drop_spent = token(&live.id, now - 10, false, None);
    let drop_orphan = token("approval-that-never-was", now + 3600, true, None);
    let drop_expired_approval = token(&expired.id, now + 3600, true, None);
    for t in [
        &keep_live,
        &keep_refreshable,
        &drop_spent,
        &drop_orphan,
        &drop_expired_approval,
    ] {
        assert!(store.insert_token(t.clone()).await.unwrap());
    }
    let keep_code = code(&live.id, now + 100);
    let keep_recently_expired = code(&live.id, now - CODE_REPLAY_MEMORY + 60);
    let drop_old_code = code(&live.id, now - CODE_REPLAY_MEMORY - 1);
    let drop_code_of_expired = code(&expired.id, now + 100);
    for c in [
        &keep_code,
        &keep_recently_expired,
        &drop_old_code,
        &drop_code_of_expired,
    ] {
        store.insert_code(c.clone()).await.unwrap();
    }

    let swept = store.sweep(now, KEEP).await.unwrap();
    assert_eq!(
        swept,
        Swept {
            approvals: 1,
            tokens: 3,
            codes: 2,
            clients: 0,
            signing_keys: 0,
            launches: 0,
            jtis: 0,
            faults: 0,
            sessions: 0,
            pending: 0,
            failures: 0,
        }
    );
    assert!(store.approval(&live.id).await.unwrap().is_some());
    assert!(store.approval(&expired.id).await.unwrap().is_none());
    for kept in [&keep_live, &keep_refreshable] {
        assert!(store
            .token_by_access(&kept.access_sha256)
            .await
            .unwrap()
            .is_some());
    }
    for gone in [&drop_spent, &drop_orphan, &drop_expired_approval] {
        assert!(store
            .token_by_access(&gone.access_sha256)
            .await
            .unwrap()
            .is_none());
    }
    for kept in [&keep_code, &keep_recently_expired] {
        assert!(knows_code(&*store, kept).await);
    }
    for gone in [&drop_old_code, &drop_code_of_expired] {
        assert!(!knows_code(&*store, gone).await);
    }
    assert!(
        store.sweep(now, KEEP).await.unwrap().is_empty(),
        "a second sweep finds nothing"
    );
}

/// Registrations that never got an approval go after the idle lifetime; a client with an
/// approval stays even once its approvals are gone; no idle lifetime keeps them all.
pub async fn sweep_idle_clients(store: Arc<dyn Store>) {
    let now = now();
    let day = 24 * 3600;
    let idle = Retention {
        code_memory: CODE_REPLAY_MEMORY,
        client_idle: Some(7 * day),
        ..KEEP
    };
    store.sweep(now, idle).await.unwrap(); // start from what this test inserts
    let registered = |age: i64| {
        let mut c = client();
        c.issued_at = now - age;
        c
    };
    let stale = registered(8 * day);
    let at_the_limit = registered(7 * day);
    let young = registered(6 * day);
    let used_once = registered(30 * day);
    let used_now = registered(30 * day);
    for c in [&stale, &at_the_limit, &young, &used_once, &used_now] {
        store.insert_client(c.clone()).await.unwrap();
    }
    let revoked = approval(&used_once.client_id, now + 3600);
    store.insert_approval(revoked.clone()).await.unwrap();
    store.delete_approval(&revoked.id).await.unwrap();
    let live = approval(&used_now.client_id, now + 3600);
    store.insert_approval(live.clone()).await.unwrap();

    assert_eq!(
        store.sweep(now, KEEP).await.unwrap().clients,
        0,
        "no idle lifetime: every client is kept"
    );
    let swept = store.sweep(now, idle).await.unwrap();
    assert_eq!(swept.clients, 2, "{swept:?}");
    for gone in [&stale, &at_the_limit] {
        assert_eq!(store.client(&gone.client_id).await.unwrap(), None);
    }
    for kept in [&young, &used_once, &used_now] {
        assert!(store.client(&kept.client_id).await.unwrap().is_some());
    }
    assert!(store.sweep(now, idle).await.unwrap().is_empty());
}

/// Many expired credentials come and go: after the sweep the table is as small as before.
pub async fn sweep_keeps_tables_bounded(store: Arc<dyn Store>) {
    let now = now();
    store.sweep(now, KEEP).await.unwrap();
    let baseline = store.token_count().await.unwrap();
    let (client, live) = setup(&*store).await;
    let short = approval(&client.client_id, now + 1);
    store.insert_approval(short.clone()).await.unwrap();
    let mut seen = HashSet::new();
    for i in 0..300 {
        let t = match i % 3 {
            0 => token(&live.id, now - 1, false, None),
            1 => token(&short.id, now + 3600, true, None),
            _ => token(&live.id, now + 1, false, None),
        };
        seen.insert(t.access_sha256);
        assert!(store.insert_token(t).await.unwrap());
    }
    assert_eq!(store.token_count().await.unwrap(), baseline + 300);
    let swept = store.sweep(now + 2, KEEP).await.unwrap();
    eprintln!("sweep of 300 dead token pairs: {swept:?}");
    assert_eq!(swept.tokens, 300);
    assert_eq!(swept.approvals, 1);
    assert_eq!(store.token_count().await.unwrap(), baseline);
}

/// With a cap of 5 idle clients, registering 8 keeps the 5 newest idle ones and every
/// approved one, however old; the client just registered is never the one dropped.
pub async fn idle_clients_are_capped(store: Arc<dyn Store>) {
    let now = now();
    let registered = |age: i64| {
        let mut c = client();
        c.issued_at = now - age;
        c
    };
    let approved: Vec<_> = (0..2).map(|i| registered(1000 + i)).collect();
    for c in &approved {
        store.insert_client(c.clone()).await.unwrap();
        let approval = approval(&c.client_id, now + 3600);
        store.insert_approval(approval).await.unwrap();
    }
    let idle: Vec<_> = (0..8).map(|i| registered(100 - i)).collect();
    let mut dropped = 0;
    for c in &idle {
        store.insert_client(c.clone()).await.unwrap();
        dropped += store.evict_idle_clients(5, &c.client_id).await.unwrap();
    }
    assert_eq!(dropped, 3);
    assert_eq!(store.client_count().await.unwrap(), 5 + 2);
    for gone in &idle[..3] {
        assert_eq!(store.client(&gone.client_id).await.unwrap(), None);
    }
    for kept in idle[3..].iter().chain(&approved) {
        assert!(store.client(&kept.client_id).await.unwrap().is_some());
    }
    // Registered in the same second, each newcomer survives its own registration.
    for _ in 0..4 {
        let c = registered(0);
        store.insert_client(c.clone()).await.unwrap();
        assert_eq!(store.evict_idle_clients(5, &c.client_id).await.unwrap(), 1);
        assert!(store.client(&c.client_id).await.unwrap().is_some());
        assert_eq!(store.client_count().await.unwrap(), 5 + 2);
    }
    for c in &approved {
        assert!(store.client(&c.client_id).await.unwrap().is_some());
    }
}
