//! The store test-suite, one body for every backend: `store_backends.rs` runs it on memory
//! and SQLite, `store_postgres.rs` (run by .ci/postgres_check.sh) on PostgreSQL.
#![allow(dead_code)] // each test file uses its own subset

#[macro_use]
mod instantiate;
pub mod codes;
pub mod faults;
pub mod fresh;
pub mod jtis;
pub mod launches;
pub mod portal;
pub mod process;
pub mod signing_keys;
pub mod sweeps;
pub mod upgrade;

use std::sync::Arc;

use serde_json::json;
use smartnb::server::oauth::sha256;
use smartnb::server::store::{
    Approval, AuthCode, Client, GrantKey, LaunchContext, Redeemed, Retention, Store, Token,
    CODE_REPLAY_MEMORY,
};

/// Now, as the server's clock has it.
pub fn now() -> i64 {
    smartnb::server::clock::now()
}

fn id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4())
}

/// The SHA-256 of a fresh random value, as the store keeps tokens and codes.
pub fn hash(prefix: &str) -> [u8; 32] {
    sha256(&id(prefix))
}

/// What the sweep keeps by default: codes ten minutes, clients forever.
pub const KEEP: Retention = Retention {
    code_memory: CODE_REPLAY_MEMORY,
    client_idle: None,
    signing_key_memory: 3600,
    launch_memory: 600,
    session_lifetime: 12 * 3600,
    failure_window: 900,
};

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
pub fn token(
    approval_id: &str,
    access_expires: i64,
    refresh: bool,
    code: Option<&[u8; 32]>,
) -> Token {
    Token {
        access_sha256: hash("access"),
        refresh_sha256: refresh.then(|| hash("refresh")),
        approval_id: approval_id.into(),
        scope: "patient/*.read offline_access".into(),
        issued_at: now(),
        access_expires,
        from_code_sha256: code.copied(),
        session_sha256: None,
        auth_time: Some(now() - 30),
        context: Some(context()),
    }
}

/// An EHR launch's context with every field set.
pub fn context() -> LaunchContext {
    LaunchContext {
        ehr: true,
        encounter: Some("smart-1288992-enc-2018-06".into()),
        fhir_context: vec!["Observation/x".into(), "Practitioner/p".into()],
        intent: Some("reconcile-medications ünï".into()),
        need_patient_banner: false,
    }
}

/// A code under an approval, expiring at `expires`.
pub fn code(approval_id: &str, expires: i64) -> AuthCode {
    AuthCode {
        code_sha256: hash("code"),
        approval_id: approval_id.into(),
        redirect_uri: "http://localhost:9001/authorized".into(),
        redirect_uri_given: true,
        scope: "patient/*.read".into(),
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
        expires,
        session_sha256: None,
        nonce: Some("n-0S6_WzA2Mj ünï".into()),
        auth_time: Some(now() - 30),
        context: Some(context()),
    }
}

/// Whether the store still holds this code (spent or not).
pub async fn knows_code(store: &dyn Store, code: &AuthCode) -> bool {
    store.code(&code.code_sha256).await.unwrap().is_some()
}

/// A client, a live approval and its id.
pub async fn setup(store: &dyn Store) -> (Client, Approval) {
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
    let still = store.token_by_access(&kept.access_sha256).await.unwrap();
    assert_eq!(still.map(|t| t.approval_id).as_ref(), Some(renewed_id));

    let doomed = &ids[0];
    let t = token(doomed, now() + 3600, true, None);
    assert!(store.insert_token(t.clone()).await.unwrap());
    let c = code(doomed, now() + 100);
    store.insert_code(c.clone()).await.unwrap();
    store.delete_approval(doomed).await.unwrap();
    assert_eq!(store.approval(doomed).await.unwrap(), None);
    assert_eq!(store.token_by_access(&t.access_sha256).await.unwrap(), None);
    assert!(!knows_code(&*store, &c).await);
    let late = token(doomed, now() + 3600, true, Some(&c.code_sha256));
    assert_eq!(
        store
            .redeem_code(&c.code_sha256, late.clone())
            .await
            .unwrap(),
        Redeemed::Unknown
    );
    assert_eq!(
        store.token_by_access(&late.access_sha256).await.unwrap(),
        None
    );
    assert_eq!(store.approvals_for_user(&username).await.unwrap().len(), 2);
}

/// Tokens are found by either half's hash, rotate once, and revoke by either half.
pub async fn tokens(store: Arc<dyn Store>) {
    let (_, approval) = setup(&*store).await;
    let first = token(&approval.id, now() + 3600, true, None);
    let refresh = first.refresh_sha256.unwrap();
    assert!(store.insert_token(first.clone()).await.unwrap());
    assert_eq!(
        store.token_by_access(&first.access_sha256).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        store.token_by_refresh(&refresh).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        store.token_by_refresh(&first.access_sha256).await.unwrap(),
        None,
        "an access token is no refresh token"
    );

    let mut second = token(&approval.id, now() + 3600, true, None);
    second.session_sha256 = Some(hash("session"));
    assert!(store.rotate_token(&refresh, second.clone()).await.unwrap());
    assert_eq!(store.token_by_refresh(&refresh).await.unwrap(), None);
    assert_eq!(
        store.token_by_access(&first.access_sha256).await.unwrap(),
        None
    );
    assert_eq!(
        store.token_by_access(&second.access_sha256).await.unwrap(),
        Some(second.clone()),
        "the sign-in binding is kept"
    );
    let third = token(&approval.id, now() + 3600, true, None);
    assert!(
        !store.rotate_token(&refresh, third.clone()).await.unwrap(),
        "a spent refresh token rotates no more"
    );
    assert_eq!(
        store.token_by_access(&third.access_sha256).await.unwrap(),
        None
    );

    let by_refresh = second.refresh_sha256.unwrap();
    assert!(store.revoke_token(&by_refresh).await.unwrap());
    assert_eq!(
        store.token_by_access(&second.access_sha256).await.unwrap(),
        None
    );
    assert!(!store.revoke_token(&by_refresh).await.unwrap());

    let no_refresh = token(&approval.id, now() + 3600, false, None);
    assert!(store.insert_token(no_refresh.clone()).await.unwrap());
    assert!(store.revoke_token(&no_refresh.access_sha256).await.unwrap());
    assert_eq!(
        store
            .token_by_access(&no_refresh.access_sha256)
            .await
            .unwrap(),
        None
    );
}
