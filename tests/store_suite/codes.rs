//! Codes in the store suite: looked at without being spent, spent once with their token,
//! replays revoking, and races with one winner.

use std::sync::Arc;

use smartnb::server::store::{Redeemed, Store, StoredCode};

use super::{code, hash, now, setup, token};

/// A code can be looked at without spending it; it is spent once, with its token saved in
/// the same step; its replay revokes what it issued and blocks issuing more.
pub async fn codes(store: Arc<dyn Store>) {
    let (_, approval) = setup(&*store).await;
    let mut c = code(&approval.id, now() + 100);
    c.session_sha256 = Some(hash("session"));
    store.insert_code(c.clone()).await.unwrap();
    let unused = StoredCode {
        code: c.clone(),
        used: false,
    };
    for _ in 0..2 {
        assert_eq!(
            store.code(&c.code_sha256).await.unwrap(),
            Some(unused.clone())
        );
    }
    let issued = token(&approval.id, now() + 3600, true, Some(&c.code_sha256));
    assert_eq!(
        store
            .redeem_code(&c.code_sha256, issued.clone())
            .await
            .unwrap(),
        Redeemed::Fresh
    );
    assert_eq!(
        store.token_by_access(&issued.access_sha256).await.unwrap(),
        Some(issued.clone()),
        "the token is saved with the spending"
    );
    assert_eq!(
        store.code(&c.code_sha256).await.unwrap(),
        Some(StoredCode {
            code: c.clone(),
            used: true
        })
    );
    let rotated = token(&approval.id, now() + 3600, true, Some(&c.code_sha256));
    let old_refresh = issued.refresh_sha256.unwrap();
    assert!(store
        .rotate_token(&old_refresh, rotated.clone())
        .await
        .unwrap());

    let second = token(&approval.id, now() + 3600, true, Some(&c.code_sha256));
    assert_eq!(
        store
            .redeem_code(&c.code_sha256, second.clone())
            .await
            .unwrap(),
        Redeemed::Replayed
    );
    assert_eq!(
        store.token_by_access(&second.access_sha256).await.unwrap(),
        None,
        "nothing is saved for a replay"
    );
    store.revoke_tokens_from_code(&c.code_sha256).await.unwrap();
    assert_eq!(
        store.token_by_access(&rotated.access_sha256).await.unwrap(),
        None
    );
    let late = token(&approval.id, now() + 3600, true, Some(&c.code_sha256));
    assert!(
        !store.insert_token(late.clone()).await.unwrap(),
        "no token from a replayed code"
    );
    assert_eq!(
        store.token_by_access(&late.access_sha256).await.unwrap(),
        None
    );
    let nothing = token(&approval.id, now() + 3600, true, None);
    assert_eq!(
        store
            .redeem_code(&hash("no-such-code"), nothing)
            .await
            .unwrap(),
        Redeemed::Unknown
    );
    assert_eq!(store.code(&hash("no-such-code")).await.unwrap(), None);
}

/// Racing callers: one redemption wins (and only its token is saved), one rotation wins,
/// and a replay racing an exchange never leaves a token from the replayed code behind.
pub async fn races(stores: Vec<Arc<dyn Store>>) {
    let pick = |i: usize| stores[i % stores.len()].clone();
    let (_, approval) = setup(&*pick(0)).await;
    for round in 0..5 {
        let c = code(&approval.id, now() + 100);
        pick(round).insert_code(c.clone()).await.unwrap();
        let tasks: Vec<_> = (0..12)
            .map(|i| {
                let store = pick(i);
                let hash = c.code_sha256;
                let t = token(&approval.id, now() + 3600, true, Some(&hash));
                tokio::spawn(async move { (store.redeem_code(&hash, t.clone()).await.unwrap(), t) })
            })
            .collect();
        let mut fresh = 0;
        for task in tasks {
            let (redeemed, t) = task.await.unwrap();
            let saved = pick(round).token_by_access(&t.access_sha256).await.unwrap();
            match redeemed {
                Redeemed::Fresh => fresh += 1,
                Redeemed::Replayed => assert_eq!(saved, None, "a loser's token was saved"),
                Redeemed::Unknown => panic!("the code vanished"),
            }
        }
        assert_eq!(fresh, 1, "round {round}: exactly one redemption is fresh");

        let t = token(&approval.id, now() + 3600, true, None);
        pick(round).insert_token(t.clone()).await.unwrap();
        let old = t.refresh_sha256.unwrap();
        let tasks: Vec<_> = (0..12)
            .map(|i| {
                let store = pick(i);
                let new = token(&approval.id, now() + 3600, true, None);
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
            let t = token(&approval.id, now() + 3600, true, Some(&c.code_sha256));
            let hash = c.code_sha256;
            tokio::spawn(async move { (store.redeem_code(&hash, t.clone()).await.unwrap(), t) })
        };
        let revoker = {
            let store = pick(round + 1);
            let hash = c.code_sha256;
            tokio::spawn(async move { store.revoke_tokens_from_code(&hash).await.unwrap() })
        };
        let (redeemed, t) = issuer.await.unwrap();
        revoker.await.unwrap();
        let left = pick(round).token_by_access(&t.access_sha256).await.unwrap();
        assert_eq!(
            left, None,
            "round {round}: a token from a replayed code survived ({redeemed:?})"
        );
        survivors += usize::from(redeemed == Redeemed::Fresh);
    }
    eprintln!("races: {survivors}/20 exchanges saved their token before the replay revoked it");
}
