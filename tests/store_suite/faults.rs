//! Simulated faults in the store: queued in order per client, each answer used once even by
//! racing requests (on two handles to one database, as replicas are), until-cleared ones
//! never running out, a full queue refused, clearing, and the sweep forgetting faults of
//! clients that are gone.

use std::sync::Arc;

use smartnb::server::store::{QueuedFault, Store, UNTIL_CLEARED};

use super::{client, now, KEEP};

fn fault(client_id: &str, name: &str, times: i64) -> QueuedFault {
    QueuedFault {
        client_id: client_id.into(),
        seq: 0,
        fault: name.into(),
        at: Some("fhir".into()),
        times,
        remaining: if times == 0 { UNTIL_CLEARED } else { times },
        delay_ms: None,
        created: now(),
    }
}

/// Order, counting among racers, until-cleared, the cap, clearing and the sweep.
pub async fn faults(stores: Vec<Arc<dyn Store>>) {
    let store = stores[0].clone();
    let owner = client();
    store.insert_client(owner.clone()).await.unwrap();
    let a = owner.client_id.as_str();
    assert!(store.faults(a).await.unwrap().is_empty());

    let first = store
        .add_fault(fault(a, "fhir_throttled", 5), 100)
        .await
        .unwrap();
    let second = store.add_fault(fault(a, "slow", 0), 100).await.unwrap();
    assert!(
        first.is_some() && second.is_some() && first < second,
        "{first:?} {second:?}"
    );
    let queued = store.faults(a).await.unwrap();
    let names: Vec<&str> = queued.iter().map(|f| f.fault.as_str()).collect();
    assert_eq!(names, ["fhir_throttled", "slow"], "in the order queued");
    assert_eq!(queued[0].remaining, 5);
    assert_eq!(queued[0].at.as_deref(), Some("fhir"));
    assert_eq!(queued[1].remaining, UNTIL_CLEARED);
    // Another client's queue is its own.
    assert!(store.faults("another-client").await.unwrap().is_empty());

    // Sixteen racers on two handles take five answers between them: exactly five win.
    let seq = queued[0].seq;
    let mut racers = Vec::new();
    for i in 0..16 {
        let store = stores[i % stores.len()].clone();
        let a = a.to_string();
        racers.push(tokio::spawn(async move {
            store.take_fault(&a, seq).await.unwrap()
        }));
    }
    let mut left = Vec::new();
    for racer in racers {
        if let Some(n) = racer.await.unwrap() {
            left.push(n);
        }
    }
    left.sort();
    assert_eq!(left, [0, 1, 2, 3, 4], "each answer is used once");
    let queued = store.faults(a).await.unwrap();
    let names: Vec<&str> = queued.iter().map(|f| f.fault.as_str()).collect();
    assert_eq!(names, ["slow"], "a used-up fault is gone");
    assert_eq!(store.take_fault(a, seq).await.unwrap(), None);

    // Until cleared: never runs out.
    let slow = queued[0].seq;
    for _ in 0..3 {
        assert_eq!(
            store.take_fault(a, slow).await.unwrap(),
            Some(UNTIL_CLEARED)
        );
    }

    // The cap counts what is queued.
    let b = "capped-client";
    for _ in 0..3 {
        assert!(store
            .add_fault(fault(b, "fhir_server_error", 1), 3)
            .await
            .unwrap()
            .is_some());
    }
    assert_eq!(
        store
            .add_fault(fault(b, "fhir_server_error", 1), 3)
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.clear_faults(b).await.unwrap(), 3);
    assert!(store.faults(b).await.unwrap().is_empty());
    assert_eq!(store.clear_faults(b).await.unwrap(), 0);

    // The sweep forgets the faults of clients that are not registered (b never was), and
    // keeps those of registered clients.
    store
        .add_fault(fault(b, "fhir_server_error", 1), 3)
        .await
        .unwrap();
    let swept = store.sweep(now(), KEEP).await.unwrap();
    assert!(swept.faults >= 1, "{swept:?}");
    assert!(store.faults(b).await.unwrap().is_empty());
    assert_eq!(store.faults(a).await.unwrap().len(), 1);
    // Seen through the second handle too.
    assert_eq!(stores[stores.len() - 1].faults(a).await.unwrap().len(), 1);
}
