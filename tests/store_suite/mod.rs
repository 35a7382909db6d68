//! The store test-suite, one body for every backend: `store_backends.rs` runs it on memory
//! and SQLite, `store_postgres.rs` (run by .ci/postgres_check.sh) on PostgreSQL.
#![allow(dead_code)] // each test file uses its own subset

#[macro_use]
mod instantiate;
pub mod fresh;
pub mod process;

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::json;
use smartnb::server::store::{
    Approval, AuthCode, Client, GrantKey, Redeemed, Store, Swept, Token, CODE_REPLAY_MEMORY,
};

/// Now, as the server's clock has it.
pub fn now() -> i64 {
    smartnb::server::clock::now()
}

fn id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4())
}

/// A confidential client with metadata beyond the basics.
pub fn client() -> Client {
    let mut extra = serde_json::Map::new();
    extra.insert("client_uri".into(), json!("https://app.example"));
    extra.insert("contacts".into(), json!(["a@example.org", "b@example.org"]));
    Client {
        client_id: id("client"),
        secret_sha256: Some(std::array::from_fn(|i| (i * 7 + 1) as u8)),
        client_name: "SMART Test Client ünïcode".into(),
        redirect_uris: vec![
            "http://localhost:9001/authorized".into(),
            "http://x/cb".into(),
        ],
        scope: "launch/patient patient/*.read offline_access".into(),
        token_endpoint_auth_method: "client_secret_basic".into(),
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        issued_at: now(),
        extra,
    }
}

/// An approval by daniel-adams for `client_id`, expiring at `expires`.
pub fn approval(client_id: &str, expires: i64) -> Approval {
    Approval {
        id: id("approval"),
        client_id: client_id.into(),
        username: "daniel-adams".into(),
        patient_id: "smart-1288992".into(),
        scope: "launch/patient patient/*.read offline_access".into(),
        expires,
        created: now(),
    }
}

/// A token pair under an approval; `refresh` says whether it has a refresh token.
pub fn token(approval_id: &str, access_expires: i64, refresh: bool, code: Option<&str>) -> Token {
    Token {
        access_token: id("access"),
        refresh_token: refresh.then(|| id("refresh")),
        approval_id: approval_id.into(),
        scope: "patient/*.read offline_access".into(),
        issued_at: now(),
        access_expires,
        from_code: code.map(str::to_string),
    }
}

/// A code under an approval, expiring at `expires`.
pub fn code(approval_id: &str, expires: i64) -> AuthCode {
    AuthCode {
        code: id("code"),
        approval_id: approval_id.into(),
        redirect_uri: "http://localhost:9001/authorized".into(),
        redirect_uri_given: true,
        scope: "patient/*.read".into(),
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
        expires,
    }
}

/// A client, a live approval and its id.
async fn setup(store: &dyn Store) -> (Client, Approval) {
    let client = client();
    store.insert_client(client.clone()).await.unwrap();
    let approval = approval(&client.client_id, now() + 3600);
    store.insert_approval(approval.clone()).await.unwrap();
    (client, approval)
}

/// Clients come back exactly as saved; public clients have no secret.
pub async fn clients(store: Arc<dyn Store>) {
    let before = store.client_count().await.unwrap();
    let confidential = client();
    let mut public = client();
    public.secret_sha256 = None;
    public.token_endpoint_auth_method = "none".into();
    public.extra = serde_json::Map::new();
    store.insert_client(confidential.clone()).await.unwrap();
    store.insert_client(public.clone()).await.unwrap();
    let got = store.client(&confidential.client_id).await.unwrap();
    assert_eq!(got.as_ref(), Some(&confidential));
    let got = store.client(&public.client_id).await.unwrap();
    assert_eq!(got.as_ref(), Some(&public));
    assert_eq!(store.client("no-such-client").await.unwrap(), None);
    assert_eq!(store.client_count().await.unwrap(), before + 2);
}

/// Approvals are listed newest first; saving one again under its id replaces it (with its
/// tokens kept); deleting one takes its tokens and codes along.
pub async fn approvals(store: Arc<dyn Store>) {
    let (client, _) = setup(&*store).await;
    let username = id("user");
    let mut ids = Vec::new();
    for created in [100, 300, 200] {
        let mut a = approval(&client.client_id, now() + 3600);
        a.username = username.clone();
        a.created = created;
        store.insert_approval(a.clone()).await.unwrap();
        assert_eq!(store.approval(&a.id).await.unwrap(), Some(a.clone()));
        ids.push(a.id);
    }
    let listed: Vec<i64> = store
        .approvals_for_user(&username)
        .await
        .unwrap()
        .iter()
        .map(|a| a.created)
        .collect();
    assert_eq!(listed, [300, 200, 100]);

    let renewed_id = &ids[1];
    let kept = token(renewed_id, now() + 3600, true, None);
    assert!(store.insert_token(kept.clone()).await.unwrap());
    let mut renewed = store.approval(renewed_id).await.unwrap().unwrap();
    renewed.expires += 7200;
    renewed.created = 400;
    store.insert_approval(renewed.clone()).await.unwrap();
    assert_eq!(
        store.approval(renewed_id).await.unwrap(),
        Some(renewed.clone())
    );
    let key = GrantKey::of(&renewed);
    let found = store.renewable_approval(&key, now()).await.unwrap();
    assert_eq!(found.as_ref(), Some(&renewed), "the newest of the grant");
    let later = renewed.expires + 1;
    assert_eq!(
        store.renewable_approval(&key, later).await.unwrap(),
        None,
        "expired"
    );
    let listed = store.approvals_for_user(&username).await.unwrap();
    assert_eq!(listed.len(), 3, "replaced, not added");
    assert_eq!(&listed[0].id, renewed_id, "and now the newest");
    let still = store.token_by_access(&kept.access_token).await.unwrap();
    assert_eq!(still.map(|t| t.approval_id).as_ref(), Some(renewed_id));

    let doomed = &ids[0];
    let t = token(doomed, now() + 3600, true, None);
    assert!(store.insert_token(t.clone()).await.unwrap());
    let c = code(doomed, now() + 100);
    store.insert_code(c.clone()).await.unwrap();
    store.delete_approval(doomed).await.unwrap();
    assert_eq!(store.approval(doomed).await.unwrap(), None);
    assert_eq!(store.token_by_access(&t.access_token).await.unwrap(), None);
    assert_eq!(store.redeem_code(&c.code).await.unwrap(), Redeemed::Unknown);
    assert_eq!(store.approvals_for_user(&username).await.unwrap().len(), 2);
}

/// Tokens are found by either half, rotate once, and revoke by either half.
pub async fn tokens(store: Arc<dyn Store>) {
    let (_, approval) = setup(&*store).await;
    let first = token(&approval.id, now() + 3600, true, None);
    let refresh = first.refresh_token.clone().unwrap();
    assert!(store.insert_token(first.clone()).await.unwrap());
    assert_eq!(
        store.token_by_access(&first.access_token).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        store.token_by_refresh(&refresh).await.unwrap(),
        Some(first.clone())
    );

    let second = token(&approval.id, now() + 3600, true, None);
    assert!(store.rotate_token(&refresh, second.clone()).await.unwrap());
    assert_eq!(store.token_by_refresh(&refresh).await.unwrap(), None);
    assert_eq!(
        store.token_by_access(&first.access_token).await.unwrap(),
        None
    );
    let third = token(&approval.id, now() + 3600, true, None);
    assert!(
        !store.rotate_token(&refresh, third.clone()).await.unwrap(),
        "a spent refresh token rotates no more"
    );
    assert_eq!(
        store.token_by_access(&third.access_token).await.unwrap(),
        None
    );

    let by_refresh = second.refresh_token.clone().unwrap();
    assert!(store.revoke_token(&by_refresh).await.unwrap());
    assert_eq!(
        store.token_by_access(&second.access_token).await.unwrap(),
        None
    );
    assert!(!store.revoke_token(&by_refresh).await.unwrap());

    let no_refresh = token(&approval.id, now() + 3600, false, None);
    assert!(store.insert_token(no_refresh.clone()).await.unwrap());
    assert!(store.revoke_token(&no_refresh.access_token).await.unwrap());
    assert_eq!(
        store
            .token_by_access(&no_refresh.access_token)
            .await
            .unwrap(),
        None
    );
}

/// A code is redeemed once; its replay revokes what it issued and blocks issuing more.
pub async fn codes(store: Arc<dyn Store>) {
    let (_, approval) = setup(&*store).await;
    let c = code(&approval.id, now() + 100);
    store.insert_code(c.clone()).await.unwrap();
    assert_eq!(
        store.redeem_code(&c.code).await.unwrap(),
        Redeemed::Fresh(c.clone())
    );
    let issued = token(&approval.id, now() + 3600, true, Some(&c.code));
    assert!(store.insert_token(issued.clone()).await.unwrap());
    let rotated = token(&approval.id, now() + 3600, true, Some(&c.code));
    let old_refresh = issued.refresh_token.clone().unwrap();
    assert!(store
        .rotate_token(&old_refresh, rotated.clone())
        .await
        .unwrap());

    assert_eq!(
        store.redeem_code(&c.code).await.unwrap(),
        Redeemed::Replayed(c.clone())
    );
    store.revoke_tokens_from_code(&c.code).await.unwrap();
    assert_eq!(
        store.token_by_access(&rotated.access_token).await.unwrap(),
        None
    );
    let late = token(&approval.id, now() + 3600, true, Some(&c.code));
    assert!(
        !store.insert_token(late.clone()).await.unwrap(),
        "no token from a replayed code"
    );
    assert_eq!(
        store.token_by_access(&late.access_token).await.unwrap(),
        None
    );
    assert_eq!(
        store.redeem_code("no-such-code").await.unwrap(),
        Redeemed::Unknown
    );
}

/// Racing callers: one redemption wins, one rotation wins, and a replay racing an
/// exchange never leaves a token from the replayed code behind.
pub async fn races(stores: Vec<Arc<dyn Store>>) {
    let pick = |i: usize| stores[i % stores.len()].clone();
    let (_, approval) = setup(&*pick(0)).await;
    for round in 0..5 {
        let c = code(&approval.id, now() + 100);
        pick(round).insert_code(c.clone()).await.unwrap();
        let tasks: Vec<_> = (0..12)
            .map(|i| {
                let store = pick(i);
                let c = c.code.clone();
                tokio::spawn(async move { store.redeem_code(&c).await.unwrap() })
            })
            .collect();
        let mut fresh = 0;
        for task in tasks {
            match task.await.unwrap() {
                Redeemed::Fresh(_) => fresh += 1,
                Redeemed::Replayed(_) => {}
                Redeemed::Unknown => panic!("the code vanished"),
            }
        }
        assert_eq!(fresh, 1, "round {round}: exactly one redemption is fresh");

        let t = token(&approval.id, now() + 3600, true, None);
        pick(round).insert_token(t.clone()).await.unwrap();
        let old = t.refresh_token.clone().unwrap();
        let tasks: Vec<_> = (0..12)
            .map(|i| {
                let store = pick(i);
                let (old, new) = (old.clone(), token(&approval.id, now() + 3600, true, None));
                tokio::spawn(async move { store.rotate_token(&old, new).await.unwrap() })
            })
            .collect();
        let mut won = 0;
        for task in tasks {
            won += usize::from(task.await.unwrap());
        }
        assert_eq!(won, 1, "round {round}: exactly one rotation wins");
    }
    let mut survivors = 0;
    for round in 0..20 {
        let c = code(&approval.id, now() + 100);
        pick(round).insert_code(c.clone()).await.unwrap();
        let issuer = {
            let store = pick(round);
            let t = token(&approval.id, now() + 3600, true, Some(&c.code));
            tokio::spawn(async move { (store.insert_token(t.clone()).await.unwrap(), t) })
        };
        let revoker = {
            let store = pick(round + 1);
            let c = c.code.clone();
            tokio::spawn(async move { store.revoke_tokens_from_code(&c).await.unwrap() })
        };
        let (saved, t) = issuer.await.unwrap();
        revoker.await.unwrap();
        let left = pick(round).token_by_access(&t.access_token).await.unwrap();
        assert_eq!(
            left, None,
            "round {round}: a token from a replayed code survived (saved: {saved})"
        );
        survivors += usize::from(saved);
    }
    eprintln!("races: {survivors}/20 exchanges saved their token before the replay revoked it");
}

/// The sweep removes exactly what can no longer be used, and keeps the rest.
pub async fn sweep(store: Arc<dyn Store>) {
    let now = now();
    store.sweep(now, CODE_REPLAY_MEMORY).await.unwrap(); // start from what this test inserts
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

    let swept = store.sweep(now, CODE_REPLAY_MEMORY).await.unwrap();
    assert_eq!(
        swept,
        Swept {
            approvals: 1,
            tokens: 3,
            codes: 2
        }
    );
    assert!(store.approval(&live.id).await.unwrap().is_some());
    assert!(store.approval(&expired.id).await.unwrap().is_none());
    for kept in [&keep_live, &keep_refreshable] {
        assert!(store
            .token_by_access(&kept.access_token)
            .await
            .unwrap()
            .is_some());
    }
    for gone in [&drop_spent, &drop_orphan, &drop_expired_approval] {
        assert!(store
            .token_by_access(&gone.access_token)
            .await
            .unwrap()
            .is_none());
    }
    assert!(matches!(
        store.redeem_code(&keep_code.code).await.unwrap(),
        Redeemed::Fresh(_)
    ));
    assert!(matches!(
        store
            .redeem_code(&keep_recently_expired.code)
            .await
            .unwrap(),
        Redeemed::Fresh(_)
    ));
    assert_eq!(
        store.redeem_code(&drop_old_code.code).await.unwrap(),
        Redeemed::Unknown
    );
    assert_eq!(
        store.redeem_code(&drop_code_of_expired.code).await.unwrap(),
        Redeemed::Unknown
    );
    assert!(
        store
            .sweep(now, CODE_REPLAY_MEMORY)
            .await
            .unwrap()
            .is_empty(),
        "a second sweep finds nothing"
    );
}

/// Many expired credentials come and go: after the sweep the table is as small as before.
pub async fn sweep_keeps_tables_bounded(store: Arc<dyn Store>) {
    let now = now();
    store.sweep(now, CODE_REPLAY_MEMORY).await.unwrap();
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
        seen.insert(t.access_token.clone());
        assert!(store.insert_token(t).await.unwrap());
    }
    assert_eq!(store.token_count().await.unwrap(), baseline + 300);
    let swept = store.sweep(now + 2, CODE_REPLAY_MEMORY).await.unwrap();
    eprintln!("sweep of 300 dead token pairs: {swept:?}");
    assert_eq!(swept.tokens, 300);
    assert_eq!(swept.approvals, 1);
    assert_eq!(store.token_count().await.unwrap(), baseline);
}
