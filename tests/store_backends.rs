//! The store test-suite on the in-memory and SQLite backends (PostgreSQL: see
//! store_postgres.rs), and the server's periodic sweep seen from outside.

#[macro_use]
mod store_suite;

use std::time::{Duration, Instant};

use serde_json::json;
use smartnb::server::{self, Config, StateLocation};

store_suite!(memory, store_suite::fresh::memory());
store_suite!(sqlite, store_suite::fresh::sqlite());

/// A server sweeping every 200 ms: tokens whose approval expires go away by themselves,
/// and so do the approvals, while a long-lived token stays.
async fn periodic_sweep(state: StateLocation) {
    let running = server::spawn(Config {
        port: 0,
        state,
        sweep_interval: Duration::from_millis(200),
        ..Config::default()
    })
    .await
    .expect("the server starts");
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", running.base_url);
    let registered: serde_json::Value = http
        .post(url("/oauth/register"))
        .json(&json!({
            "client_name": "sweep",
            "redirect_uris": ["http://localhost:9001/authorized"],
            "scope": "launch/patient patient/*.read offline_access",
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client_id = registered["client_id"].as_str().expect("a client id");
    let mint = |approval_expires: i64| {
        http.post(url("/oauth/debug/token")).json(&json!({
            "client_id": client_id,
            "username": "daniel-adams",
            "patient_id": "smart-1288992",
            "approval_expires": approval_expires,
        }))
    };
    let store = running.store();
    let before = store.token_count().await.unwrap();
    let soon = store_suite::now() + 2;
    for _ in 0..50 {
        assert_eq!(mint(soon).send().await.unwrap().status(), 200);
    }
    let keeper: serde_json::Value = mint(store_suite::now() + 3600)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Every mint was answered 200, so 51 pairs were saved; until the short approvals
    // expire the sweep may not touch them (a slow machine may already be past that).
    let counted = store.token_count().await.unwrap();
    if store_suite::now() < soon {
        assert_eq!(counted, before + 51);
    }

    // Nothing here triggers a sweep but the server's own timer.
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.token_count().await.unwrap() > before + 1 {
        assert!(Instant::now() < deadline, "the periodic sweep did not run");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(store.token_count().await.unwrap(), before + 1);
    let access = keeper["access_token"].as_str().unwrap();
    let patient = http
        .get(url("/api/fhir/Patient/smart-1288992"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(patient.status(), 200, "the live token still works");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_server_sweeps_memory_by_itself() {
    periodic_sweep(StateLocation::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_server_sweeps_sqlite_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    periodic_sweep(StateLocation::Sqlite(dir.path().join("state.db"))).await;
}

/// A server's sweep forgets registrations older than `--client-idle-lifetime` that never
/// got an approval, keeps the ones that did and the young ones, and with 0 keeps them all.
async fn idle_registrations_are_swept(state: StateLocation) {
    for (lifetime, expected) in [(7 * 24 * 3600, 1), (0, 0)] {
        let running = server::spawn(Config {
            port: 0,
            state: state.clone(),
            sweep_interval: Duration::ZERO,
            client_idle_lifetime: lifetime,
            ..Config::default()
        })
        .await
        .expect("the server starts");
        let store = running.store();
        let http = reqwest::Client::new();
        let registered: serde_json::Value = http
            .post(format!("{}/oauth/register", running.base_url))
            .json(&json!({
                "client_name": "young",
                "redirect_uris": ["http://localhost:9001/authorized"],
                "scope": "launch/patient patient/*.read offline_access",
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let young = registered["client_id"].as_str().unwrap().to_string();
        // Two clients registered eight days ago (saved with their registration time set
        // back), one of them used once through the debug endpoint.
        let mut idle = store_suite::client();
        idle.issued_at -= 8 * 24 * 3600;
        let mut used = store_suite::client();
        used.issued_at -= 8 * 24 * 3600;
        for c in [&idle, &used] {
            store.insert_client(c.clone()).await.unwrap();
        }
        let minted = http
            .post(format!("{}/oauth/debug/token", running.base_url))
            .json(&json!({
                "client_id": used.client_id,
                "username": "daniel-adams",
                "patient_id": "smart-1288992",
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(minted.status(), 200);

        let report = running.sweep().await.unwrap();
        assert_eq!(
            report.store.clients, expected,
            "lifetime {lifetime}: {report:?}"
        );
        let kept = store.client(&idle.client_id).await.unwrap().is_some();
        assert_eq!(kept, lifetime == 0, "lifetime {lifetime}");
        for id in [&young, &used.client_id] {
            assert!(
                store.client(id).await.unwrap().is_some(),
                "lifetime {lifetime}"
            );
        }
        running.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sweep_forgets_idle_registrations_in_memory() {
    idle_registrations_are_swept(StateLocation::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sweep_forgets_idle_registrations_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    idle_registrations_are_swept(StateLocation::Sqlite(dir.path().join("state.db"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_sqlite_file_of_the_old_schema_keeps_its_rows_as_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let location = StateLocation::Sqlite(dir.path().join("old.db"));
    store_suite::upgrade::upgrade_keeps_what_the_old_schema_stored(location).await;
}

#[tokio::test]
async fn an_unopenable_state_file_stops_the_start_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let location = StateLocation::Sqlite(dir.path().join("no-such-dir").join("state.db"));
    let error = match server::spawn(Config {
        port: 0,
        state: location,
        ..Config::default()
    })
    .await
    {
        Ok(_) => panic!("a state file in a missing directory cannot be opened"),
        Err(e) => e.to_string(),
    };
    assert!(error.contains("cannot open the SQLite file"), "{error}");
}
