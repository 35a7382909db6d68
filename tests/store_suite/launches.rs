//! Launches in the store: saved, looked at without spending, spent exactly once even by
//! racing callers (on two handles to one database), and swept after expiry plus memory.

use std::sync::Arc;

use smartnb::server::store::{Launch, Retention, Store};

use super::{context, hash, now, KEEP};

fn launch(expires: i64) -> Launch {
    Launch {
        id_sha256: hash("launch"),
        username: "dr-carter".into(),
        patient_id: "smart-1081332".into(),
        client_id: Some("some-client".into()),
        context: context(),
        expires,
        fault: Some("fhir_throttled".into()),
    }
}

/// Round trip, one winner among racers, and the sweep.
pub async fn launches(stores: Vec<Arc<dyn Store>>) {
    let store = stores[0].clone();
    let t = now();
    let live = launch(t + 300);
    store.insert_launch(live.clone()).await.unwrap();
    let seen = store.launch(&live.id_sha256).await.unwrap().unwrap();
    assert_eq!(seen.launch, live);
    assert!(!seen.spent);
    assert!(store.launch(&hash("nothing")).await.unwrap().is_none());
    assert!(!store.spend_launch(&hash("nothing")).await.unwrap());

    let mut racers = Vec::new();
    for i in 0..16 {
        let store = stores[i % stores.len()].clone();
        let id = live.id_sha256;
        racers.push(tokio::spawn(async move {
            store.spend_launch(&id).await.unwrap()
        }));
    }
    let mut won = 0;
    for racer in racers {
        won += usize::from(racer.await.unwrap());
    }
    assert_eq!(won, 1, "exactly one spender wins");
    assert!(store.launch(&live.id_sha256).await.unwrap().unwrap().spent);

    let old = launch(t - 700);
    store.insert_launch(old.clone()).await.unwrap();
    let memory = Retention {
        launch_memory: 600,
        ..KEEP
    };
    let swept = store.sweep(t, memory).await.unwrap();
    assert_eq!(swept.launches, 1, "{swept:?}");
    assert!(store.launch(&old.id_sha256).await.unwrap().is_none());
    assert!(store.launch(&live.id_sha256).await.unwrap().is_some());
}
