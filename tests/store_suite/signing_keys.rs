//! Signing keys in the store: one winner per generation, rotation retires the older keys,
//! and the sweep forgets a retired key only after what it signed has expired.

use std::sync::Arc;

use smartnb::server::store::{Retention, SigningKey, Store};

use super::{now, KEEP};

fn key(generation: i64, created: i64) -> SigningKey {
    SigningKey {
        generation,
        kid: format!("kid-{generation}-{}", uuid::Uuid::new_v4().simple()),
        private_pem: format!("-----BEGIN RSA PRIVATE KEY-----\n{generation}\n"),
        public_jwk: format!(r#"{{"kty":"RSA","kid":"k{generation}"}}"#),
        created,
        retired: None,
    }
}

/// Keys round-trip, a generation is taken once, rotation retires, the sweep waits.
pub async fn signing_keys(store: Arc<dyn Store>) {
    let t = now();
    assert!(store.signing_keys().await.unwrap().is_empty());
    let first = key(1, t - 7200);
    assert!(store.add_signing_key(first.clone()).await.unwrap());
    assert_eq!(store.signing_keys().await.unwrap(), vec![first.clone()]);
    // Another server making generation 1 at the same time loses and saves nothing.
    assert!(!store.add_signing_key(key(1, t - 7100)).await.unwrap());
    assert_eq!(store.signing_keys().await.unwrap().len(), 1);

    let second = key(2, t - 5000);
    assert!(store.add_signing_key(second.clone()).await.unwrap());
    let keys = store.signing_keys().await.unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].kid, first.kid);
    assert_eq!(
        keys[0].retired,
        Some(second.created),
        "rotation retires the older key"
    );
    assert_eq!(
        keys[1], second,
        "oldest generation first; the newest is not retired"
    );

    // Retired 5000 s ago: kept while signing_key_memory is longer, gone once shorter.
    let long = Retention {
        signing_key_memory: 6000,
        ..KEEP
    };
    assert_eq!(store.sweep(t, long).await.unwrap().signing_keys, 0);
    assert_eq!(store.signing_keys().await.unwrap().len(), 2);
    let short = Retention {
        signing_key_memory: 4000,
        ..KEEP
    };
    assert_eq!(store.sweep(t, short).await.unwrap().signing_keys, 1);
    assert_eq!(store.signing_keys().await.unwrap(), vec![second.clone()]);
    // The key that signs now is never swept, however old.
    assert_eq!(
        store
            .sweep(t + 1_000_000, short)
            .await
            .unwrap()
            .signing_keys,
        0
    );

    // A third rotation retires the second at the third's creation, not earlier keys again.
    let third = key(3, t);
    assert!(store.add_signing_key(third.clone()).await.unwrap());
    let keys = store.signing_keys().await.unwrap();
    assert_eq!(
        keys.iter()
            .map(|k| (k.generation, k.retired))
            .collect::<Vec<_>>(),
        vec![(2, Some(t)), (3, None)]
    );
}
