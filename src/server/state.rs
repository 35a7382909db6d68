//! The state every handler shares.

use std::net::SocketAddr;
use std::sync::Arc;

use super::fhir::data::DataStore;
use super::store::{MemoryStore, Store};
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
}

impl AppState {
    /// State with the in-memory store and the shipped fixtures.
    pub fn new(config: Config, base_url: String, addr: SocketAddr) -> Self {
        AppState {
            config,
            base_url,
            addr,
            store: Arc::new(MemoryStore::new()),
            users: Users::shipped(),
            data: DataStore::shipped(),
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

    /// An absolute URL on this server for a path starting with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }
}
