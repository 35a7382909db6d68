//! The state every handler shares.

use std::net::SocketAddr;
use std::sync::Arc;

use super::fhir::data::DataStore;
use super::fhir::upstream::Upstream;
use super::oauth::jwks_cache::JwksCache;
use super::oauth::pending::Pending;
use super::oidc::keys::KeyRing;
use super::pages::session::Sessions;
use super::pages::throttle::Throttle;
use super::scopes::ScopeCache;
use super::store::Store;
use super::users::Users;
use super::Config;

/// Shared by every handler through `State<Arc<AppState>>`.
pub struct AppState {
    /// How the server was started.
    pub config: Config,
    /// Public base URL without a trailing slash, e.g. `http://localhost:9000`.
    pub base_url: String,
    /// The bound socket address.
    pub addr: SocketAddr,
    /// Clients, approvals, codes and tokens.
    pub store: Arc<dyn Store>,
    /// The shipped participants.
    pub users: Users,
    /// The bundled FHIR charts.
    pub data: DataStore,
    /// Browser sessions of the portal pages (kept in the store).
    pub sessions: Sessions,
    /// Authorize requests waiting for the participant (kept in the store).
    pub pending: Pending,
    /// Failed sign-ins, for pausing brute force (counted in the store).
    pub throttle: Throttle,
    /// The FHIR server reads and searches are forwarded to, if not the bundled charts.
    pub upstream: Option<Upstream>,
    /// Stored scope strings (tokens', clients'), parsed once for all the requests using them.
    pub scope_cache: ScopeCache,
    /// The id_token signing key in use.
    pub keys: KeyRing,
    /// Key sets of clients that registered a `jwks_uri`.
    pub jwks_cache: JwksCache,
}

impl AppState {
    /// State over an opened store, with the shipped fixtures.
    pub fn new(config: Config, base_url: String, addr: SocketAddr, store: Arc<dyn Store>) -> Self {
        AppState {
            throttle: Throttle::new(config.login_limits.clone(), store.clone()),
            sessions: Sessions::new(store.clone(), config.session_lifetime),
            pending: Pending::new(store.clone()),
            config,
            base_url,
            addr,
            store,
            users: Users::shipped(),
            data: DataStore::shipped(),
            upstream: None,
            scope_cache: ScopeCache::default(),
            keys: KeyRing::default(),
            jwks_cache: JwksCache::default(),
        }
    }

    /// `{base}/api/fhir`: the FHIR base a token's `aud` must name.
    pub fn fhir_base(&self) -> String {
        format!("{}/api/fhir", self.base_url)
    }

    /// `{base}/api/open-fhir`.
    pub fn open_fhir_base(&self) -> String {
        format!("{}/api/open-fhir", self.base_url)
    }

    /// Whether `aud` names this server's FHIR base (a loopback server also answers to
    /// 127.0.0.1 and [::1] for the `localhost` in its URL).
    pub fn is_own_fhir_base(&self, aud: &str) -> bool {
        let aud = aud.trim_end_matches('/');
        let base = self.fhir_base();
        if aud == base {
            return true;
        }
        let port = self.addr.port();
        self.config.public_url.is_none()
            && self.addr.ip().is_loopback()
            && [
                format!("http://127.0.0.1:{port}/api/fhir"),
                format!("http://[::1]:{port}/api/fhir"),
            ]
            .iter()
            .any(|alias| alias == aud)
    }

    /// Whether cookies need the Secure flag (the public URL is https).
    pub fn secure_cookies(&self) -> bool {
        self.base_url.starts_with("https://")
    }

    /// An absolute URL on this server for a path starting with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }
}
