//! Assertion jtis: first use wins (also among racers on two handles to one database), a
//! replay before expiry is refused, another client's same jti is its own, and expired ones
//! are swept and may be used again.

use std::sync::Arc;

use smartnb::server::store::Store;

use super::{now, KEEP};

/// One winner, per-client, expiry and sweep.
pub async fn jtis(stores: Vec<Arc<dyn Store>>) {
    let store = stores[0].clone();
    let t = now();
    let mut racers = Vec::new();
    for i in 0..16 {
        let store = stores[i % stores.len()].clone();
        racers.push(tokio::spawn(async move {
            store
                .use_jti("client-a", "jti-1", t + 300, t)
                .await
                .unwrap()
        }));
    }
    let mut first = 0;
    for racer in racers {
        first += usize::from(racer.await.unwrap());
    }
    assert_eq!(first, 1, "exactly one use of a jti is the first");
    assert!(!store
        .use_jti("client-a", "jti-1", t + 300, t + 10)
        .await
        .unwrap());
    assert!(
        store
            .use_jti("client-b", "jti-1", t + 300, t)
            .await
            .unwrap(),
        "per client"
    );
    // Once the assertion has expired, the jti is forgotten.
    assert!(store
        .use_jti("client-a", "jti-1", t + 900, t + 301)
        .await
        .unwrap());
    assert!(store
        .use_jti("client-c", "old", t - 1, t - 100)
        .await
        .unwrap());
    let swept = store.sweep(t, KEEP).await.unwrap();
    assert!(swept.jtis >= 1, "{swept:?}");
}
