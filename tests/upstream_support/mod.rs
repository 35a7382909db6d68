//! A proxy smartnb in front of an upstream, and fake upstream FHIR servers that record what
//! they are asked and answer whatever the test likes.
#![allow(dead_code)] // the test binary uses what it needs

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode, Uri};
use serde_json::json;
use smartnb::server::Config;

use super::common::{start, start_with, TestServer};

/// A proxy in front of `base`, with a short upstream timeout.
pub async fn proxy_for(base: &str) -> TestServer {
    start_with(Config {
        port: 0,
        fhir_upstream: Some(base.to_string()),
        fhir_upstream_timeout: Duration::from_millis(1500),
        ..Config::default()
    })
    .await
}

/// A real smartnb as the upstream (its open FHIR endpoint) and a proxy in front of it.
pub async fn pair() -> (TestServer, TestServer) {
    let upstream = start().await;
    let proxy = proxy_for(&upstream.open_fhir("")).await;
    (upstream, proxy)
}

/// One request a fake upstream received.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The path, e.g. `/fhir/Observation`.
    pub path: String,
    /// The query pairs, decoded, in order.
    pub query: Vec<(String, String)>,
    /// The Authorization header, if any.
    pub authorization: Option<String>,
    /// The Accept header, if any.
    pub accept: Option<String>,
}

/// A FHIR server that records what it is asked and answers with `answer(base, path?query)`.
pub struct Fake {
    /// Its FHIR base, `http://127.0.0.1:PORT/fhir`.
    pub base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    /// Every request so far, oldest first.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Start a fake upstream on a free port.
pub async fn fake<F>(answer: F) -> Fake
where
    F: Fn(&str, &str) -> (u16, String) + Send + Sync + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!(
        "http://127.0.0.1:{}/fhir",
        listener.local_addr().unwrap().port()
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (log, answer, own_base) = (seen.clone(), Arc::new(answer), base.clone());
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
        let (log, answer, own_base) = (log.clone(), answer.clone(), own_base.clone());
        async move {
            let header = |name: &str| {
                headers
                    .get(name)
                    .map(|v| v.to_str().unwrap_or("?").to_string())
            };
            log.lock().unwrap().push(Seen {
                path: uri.path().to_string(),
                query: form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                    .into_owned()
                    .collect(),
                authorization: header("authorization"),
                accept: header("accept"),
            });
            let (status, body) = answer(&own_base, &uri.to_string());
            (
                StatusCode::from_u16(status).unwrap(),
                [("content-type", "application/fhir+json")],
                body,
            )
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Fake { base, seen }
}

/// An empty searchset.
pub fn empty_bundle() -> String {
    json!({"resourceType": "Bundle", "type": "searchset", "total": 0}).to_string()
}

/// Owned query pairs.
pub fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
