//! `--fhir-upstream URL`: the FHIR API forwards reads, searches and `Patient/$everything` to a
//! real FHIR server instead of the bundled charts, with the same token, scope and compartment
//! enforcement.
//!
//! What may be asked: exactly what the bundled store answers, checked by its own parser
//! (`Search::parse`, `Search::everything`), so `_has`, chains, modifiers, `_summary`,
//! `_include` and any other parameter it does not evaluate are the same 400 and never reach
//! the upstream. The bare base takes only the upstream's paging links (`params::page`).
//!
//! How the proxy keeps a token inside its patient compartment, twice over:
//! 1. What is asked: the client's `patient`/`subject` (`_id` on Patient) are parsed and
//!    intersected with the patients the token reaches, and the proxy sends one compartment
//!    parameter of its own (`patient=<ids>`, `_id=<ids>` on Patient), plus the v2 filter
//!    when every grant for the type shares it. Nothing left: an empty searchset, unasked.
//!    Reads and `$everything` name their resource, and `$everything` is only asked for a
//!    patient the token reaches.
//! 2. What comes back: every resource in an answer is checked as the bundled store checks its
//!    own: a served type, in a reached patient's compartment (`subject` / `patient` naming
//!    `Patient/<id>`, relative or on the upstream's base), passing the scope's filter. A read
//!    that fails is 404, as in bundled mode. A Bundle entry that fails is *removed* rather
//!    than refusing the whole answer, since a v2 filter the upstream was not asked to apply
//!    legitimately brings in such entries.
//!
//! What a page may tell: its `total` only when the upstream was asked exactly the token's
//! reach and every entry passed; its paging links (`next`, `previous`, `first`, `last`) only
//! when every entry passed, and on a page nobody verified (the bare base) only when it had
//! entries. Otherwise only `self` stays, so neither a count nor the existence of more pages
//! says anything about what the token may not see.
//!
//! Bundle links and `fullUrl`s are rewritten onto the proxy's FHIR base; links elsewhere are
//! dropped. Paging links the upstream mints on its bare base (`?_getpages=…`) are answered at
//! the proxy's bare FHIR base, as unverified pages: nothing ties them to the token's search,
//! so every entry is checked and no `total` is ever passed on.
//!
//! Never sent upstream: the client's bearer token or any other header of the client's, and
//! `_format` (the proxy always asks for JSON). Redirects are not followed. Open FHIR
//! (`/api/open-fhir`) is not served in front of an upstream: it would hand out the upstream's
//! records without a token. Only the served types are forwarded, as those are the ones whose
//! compartment the proxy knows how to read. The users and the patients they may share are
//! still the shipped fixtures, so their patient ids must exist upstream.

pub mod error;
mod forward;
mod guard;
mod params;

use std::time::Duration;

use reqwest::header::ACCEPT;
use serde_json::Value;

pub use error::{SetupError, UpstreamError};
pub(super) use forward::{everything, page, read, search};

/// The most bytes of one upstream answer the proxy reads.
pub const MAX_BODY: usize = 32 * 1024 * 1024;

/// The upstream FHIR server and the HTTP client that talks to it.
#[derive(Debug)]
pub struct Upstream {
    base: String,
    timeout: Duration,
    http: reqwest::Client,
}

impl Upstream {
    /// Check the base URL and set up a client with this overall timeout per request.
    pub fn new(base: &str, timeout: Duration) -> Result<Upstream, SetupError> {
        let bad = || SetupError::BadUrl(base.to_string());
        let parsed = url::Url::parse(base).map_err(|_| bad())?;
        if !matches!(parsed.scheme(), "http" | "https")
            || parsed.host_str().is_none()
            || parsed.query().is_some()
            || parsed.fragment().is_some()
        {
            return Err(bad());
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("smartnb/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SetupError::Client(e.to_string()))?;
        Ok(Upstream {
            base: base.trim_end_matches('/').to_string(),
            timeout,
            http,
        })
    }

    /// The upstream base, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// GET `{base}{path}?{pairs}` as FHIR JSON; a non-2xx status is an error.
    pub async fn get(
        &self,
        path: &str,
        pairs: &[(String, String)],
    ) -> Result<Value, UpstreamError> {
        let mut url = format!("{}{path}", self.base);
        if !pairs.is_empty() {
            let mut query = form_urlencoded::Serializer::new(String::new());
            query.extend_pairs(pairs);
            url.push('?');
            url.push_str(&query.finish());
        }
        let result = self.fetch(&url).await;
        if let Err(e) = &result {
            tracing::warn!("upstream FHIR GET {url}: {e}");
        }
        result
    }

    async fn fetch(&self, url: &str) -> Result<Value, UpstreamError> {
        let classify = |e| error::from_reqwest(e, self.timeout);
        let mut response = self
            .http
            .get(url)
            .header(ACCEPT, "application/fhir+json")
            .send()
            .await
            .map_err(classify)?;
        if response
            .content_length()
            .is_some_and(|n| n > MAX_BODY as u64)
        {
            return Err(UpstreamError::TooLarge(MAX_BODY));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(UpstreamError::TooLarge(MAX_BODY));
            }
            body.extend_from_slice(&chunk);
        }
        let status = response.status();
        if !status.is_success() {
            return Err(UpstreamError::Status {
                status: status.as_u16(),
                diagnostics: error::diagnostics_of(&body),
            });
        }
        serde_json::from_slice(&body).map_err(|_| UpstreamError::NotJson)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_bases_are_accepted() {
        let t = Duration::from_secs(1);
        assert_eq!(
            Upstream::new("http://fhir.example.org/r4/", t)
                .unwrap()
                .base(),
            "http://fhir.example.org/r4"
        );
        for bad in [
            "fhir.example.org/r4",
            "ftp://fhir.example.org",
            "http://fhir.example.org/r4?x=1",
            "http://fhir.example.org/r4#top",
            "",
        ] {
            assert!(
                matches!(Upstream::new(bad, t), Err(SetupError::BadUrl(_))),
                "{bad}"
            );
        }
    }
}
