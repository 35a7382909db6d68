//! Fetching the key sets clients registered by `jwks_uri`: http(s) only, 5 s, 64 KiB, no
//! redirects; kept a few minutes, and fetched again (at most every few seconds) when an
//! assertion names a `kid` the cached set lacks, so a client can rotate its keys.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;

/// How long a fetched set is used before it is fetched again.
pub const FRESH_FOR: Duration = Duration::from_secs(300);
/// A set fetched this recently is not fetched again for an unknown `kid`.
pub const REFETCH_AFTER: Duration = Duration::from_secs(5);
/// The largest key set read.
pub const MAX_BYTES: usize = 64 * 1024;
/// How long a fetch may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// The most sets kept; one more drops the oldest.
pub const MAX_SETS: usize = 1_000;

/// Fetched key sets by URL.
pub struct JwksCache {
    http: reqwest::Client,
    sets: Mutex<HashMap<String, (Instant, JwkSet)>>,
}

impl Default for JwksCache {
    fn default() -> Self {
        JwksCache {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(TIMEOUT)
                .build()
                .unwrap_or_default(),
            sets: Mutex::default(),
        }
    }
}

impl JwksCache {
    /// The key set at `uri`: the cached one while fresh and holding `kid` (when one is
    /// wanted), else fetched now.
    pub async fn get(&self, uri: &str, kid: Option<&str>) -> Result<JwkSet, String> {
        if let Some((at, set)) = self.cached(uri) {
            let has_kid = kid.is_none_or(|k| set.find(k).is_some());
            if at.elapsed() < FRESH_FOR && (has_kid || at.elapsed() < REFETCH_AFTER) {
                return Ok(set);
            }
        }
        let set = self.fetch(uri).await?;
        let mut sets = self.sets.lock().unwrap_or_else(|e| e.into_inner());
        if sets.len() >= MAX_SETS && !sets.contains_key(uri) {
            if let Some(oldest) = sets
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(k, _)| k.clone())
            {
                sets.remove(&oldest);
            }
        }
        sets.insert(uri.to_string(), (Instant::now(), set.clone()));
        Ok(set)
    }

    fn cached(&self, uri: &str) -> Option<(Instant, JwkSet)> {
        let sets = self.sets.lock().unwrap_or_else(|e| e.into_inner());
        sets.get(uri).cloned()
    }

    async fn fetch(&self, uri: &str) -> Result<JwkSet, String> {
        let mut response = self
            .http
            .get(uri)
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("fetching the registered jwks_uri {uri} failed: {e}"))?;
        if !response.status().is_success() {
            return Err(format!(
                "the registered jwks_uri {uri} answered HTTP {} (redirects are not followed)",
                response.status().as_u16()
            ));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("reading the registered jwks_uri {uri} failed: {e}"))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_BYTES {
                return Err(format!(
                    "the registered jwks_uri {uri} sent more than {MAX_BYTES} bytes"
                ));
            }
        }
        serde_json::from_slice(&body)
            .map_err(|e| format!("the registered jwks_uri {uri} did not send a JWK Set: {e}"))
    }
}
