//! The embedded SMART authorization server and FHIR API.
//!
//! This module is a library an outsider could lift out: it imports nothing from the rest of
//! smartnb. Everything reaches it over HTTP, exactly as a real research app would.

pub mod bounded;
pub mod clock;
pub mod discovery;
pub mod error;
pub mod fhir;
pub mod host_check;
pub mod launch;
pub mod listen;
pub mod no_store;
pub mod oauth;
pub mod oidc;
pub mod pages;
pub mod password_check;
pub mod request_log;
pub mod scopes;
pub mod simulate;
pub mod startup;
pub mod state;
pub mod store;
pub mod sweeper;
pub mod users;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::middleware::from_fn_with_state;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use pages::throttle::LoginLimits;
pub use state::AppState;
pub use store::StateLocation;

/// Everything that shapes one server instance.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to bind, e.g. `127.0.0.1`.
    pub host: IpAddr,
    /// Port to bind; 0 picks a free ephemeral port.
    pub port: u16,
    /// Serve `/oauth/debug/*` to this machine's programs even when the server faces outside
    /// (a non-loopback public URL or bound address); never to other machines.
    pub debug_endpoints: bool,
    /// Answer requests whatever host their `Host` header names (off: only the public URL's
    /// host, the bound address and loopback names, against DNS rebinding).
    pub allow_any_host: bool,
    /// Serve `/api/open-fhir`, the unauthenticated copy of the FHIR API.
    pub open_fhir: bool,
    /// Lifetime of access tokens in seconds.
    pub access_lifetime: u64,
    /// Lifetime of authorization codes in seconds.
    pub code_lifetime: u64,
    /// Lifetime of the portal's browser sessions in seconds (a sign-in lasts this long).
    pub session_lifetime: i64,
    /// Public base URL; derived from the bound address when `None`.
    pub public_url: Option<String>,
    /// A FHIR server to forward reads and searches to instead of the bundled charts.
    pub fhir_upstream: Option<String>,
    /// How long to wait for the upstream FHIR server before answering 504.
    pub fhir_upstream_timeout: Duration,
    /// When failed sign-ins pause sign-in.
    pub login_limits: LoginLimits,
    /// Where clients, approvals, codes and tokens are kept (memory by default).
    pub state: StateLocation,
    /// How often expired codes, tokens, approvals, pending requests and browser sessions
    /// are swept; zero turns the sweep off.
    pub sweep_interval: Duration,
    /// Seconds after registering that a client which never got an approval is swept;
    /// zero keeps such clients forever.
    pub client_idle_lifetime: u64,
    /// The most registered clients that never got an approval; registering one more drops
    /// the oldest of them. Zero: no cap.
    pub max_idle_clients: usize,
    /// Time a connection has to send a whole request head (also the idle time allowed
    /// between requests on a kept-alive connection) before it is closed; 10 s by default.
    pub header_read_timeout: Duration,
    /// Largest request head (request line and headers) in bytes, answered 431 beyond;
    /// 32 KiB by default.
    pub max_head_bytes: usize,
    /// Connections open at once; one more is answered 503 and closed; 1,024 by default.
    pub max_connections: usize,
    /// Seconds a client_credentials (system) token lasts, at most 300.
    pub system_token_lifetime: u64,
    /// Seconds an EHR launch id lasts before the app's authorize request must spend it.
    pub launch_lifetime: u64,
    /// Make a new id_token signing key at start and sign with it from then on (the older
    /// keys stay in the JWKS until what they signed has expired).
    pub rotate_signing_key: bool,
    /// Log one line per request at info level (target `smartnb::requests`): what
    /// `smartnb serve` does unless `--quiet`; off for the REPL's and kernel's own server.
    pub log_requests: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: IpAddr::from([127, 0, 0, 1]),
            port: 9000,
            debug_endpoints: false,
            allow_any_host: false,
            open_fhir: true,
            access_lifetime: 3600,
            code_lifetime: 100,
            session_lifetime: pages::session::DEFAULT_LIFETIME,
            public_url: None,
            fhir_upstream: None,
            fhir_upstream_timeout: Duration::from_secs(30),
            login_limits: LoginLimits::default(),
            state: StateLocation::Memory,
            sweep_interval: Duration::from_secs(60),
            client_idle_lifetime: store::CLIENT_IDLE_LIFETIME,
            max_idle_clients: store::MAX_IDLE_CLIENTS,
            header_read_timeout: Duration::from_secs(10),
            max_head_bytes: 32 * 1024,
            max_connections: 1024,
            rotate_signing_key: false,
            log_requests: false,
            launch_lifetime: launch::LAUNCH_LIFETIME,
            system_token_lifetime: oauth::client_credentials::MAX_SYSTEM_TOKEN_LIFETIME,
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source} (is another server already using the port? try --port 0)")]
    Bind {
        /// The address that was asked for.
        addr: SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// `--public-url` is not an absolute http(s) URL.
    #[error("public URL {0:?} is not an absolute http:// or https:// URL")]
    PublicUrl(String),
    /// `--fhir-upstream` cannot be used.
    #[error(transparent)]
    FhirUpstream(#[from] fhir::upstream::SetupError),
    /// The state store could not be opened.
    #[error("{0}")]
    State(store::StoreError),
    /// The id_token signing key could not be made or loaded.
    #[error("{0}")]
    SigningKey(oidc::keys::KeyError),
}

/// A server accepting connections; `shutdown` or `drain` stops it and waits, dropping it
/// stops it without waiting.
pub struct RunningServer {
    /// The base URL people use, e.g. `http://localhost:9000`.
    pub base_url: String,
    /// The socket address actually bound.
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<listen::Stop>>,
    task: JoinHandle<()>,
    sweeper: Option<JoinHandle<()>>,
    state: Arc<AppState>,
}

impl RunningServer {
    /// The FHIR base, `{base_url}/api/fhir`.
    pub fn fhir_base(&self) -> String {
        format!("{}/api/fhir", self.base_url)
    }

    /// The server's store, for status displays.
    pub fn store(&self) -> Arc<dyn store::Store> {
        self.state.store.clone()
    }

    /// Where the state is kept (a PostgreSQL password is never shown).
    pub fn state_location(&self) -> &StateLocation {
        &self.state.config.state
    }

    /// The authorize requests waiting for their participant (how many, bytes held).
    pub fn pending(&self) -> &oauth::pending::Pending {
        &self.state.pending
    }

    /// The stored scope strings parsed so far (how many, bytes held).
    pub fn parsed_scopes(&self) -> &scopes::ScopeCache {
        &self.state.scope_cache
    }

    /// Sweep now rather than at the next tick; what was removed.
    pub async fn sweep(&self) -> Result<sweeper::SweepReport, store::StoreError> {
        sweeper::sweep_once(&self.state).await
    }

    /// Stop accepting, finish in-flight requests, and wait until the server has stopped.
    pub async fn shutdown(self) {
        self.stop(listen::Stop::Now).await;
    }

    /// Stop as a replica behind a proxy should (`listen::Stop::Drain`): refuse new
    /// connections, answer on the open ones with `Connection: close` until the proxy has
    /// closed them all or `limit` has passed, then stop.
    pub async fn drain(self, limit: Duration) {
        self.stop(listen::Stop::Drain(limit)).await;
    }

    async fn stop(mut self, how: listen::Stop) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(how);
        }
        let _ = (&mut self.task).await;
        if let Some(sweeper) = self.sweeper.take() {
            sweeper.abort();
        }
    }
}

/// Bind, build the router and start serving in the background on the current tokio runtime.
pub async fn spawn(config: Config) -> Result<RunningServer, StartError> {
    let addr = SocketAddr::new(config.host, config.port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr, source })?;
    let base_url = match &config.public_url {
        Some(url) => normalise_public_url(url)?,
        None => derived_base_url(addr),
    };
    let upstream = match &config.fhir_upstream {
        Some(url) => Some(fhir::upstream::Upstream::new(
            url,
            config.fhir_upstream_timeout,
        )?),
        None => None,
    };
    let store = store::open(&config.state)
        .await
        .map_err(StartError::State)?;
    let sweep_interval = config.sweep_interval;
    let limits = listen::ConnLimits {
        header_read_timeout: config.header_read_timeout,
        max_head_bytes: config.max_head_bytes,
        max_connections: config.max_connections,
    };
    let mut state = AppState::new(config, base_url.clone(), addr, store);
    state.upstream = upstream;
    let state = Arc::new(state);
    prepare_signing_key(&state).await?;
    if !sweep_interval.is_zero() {
        sweeper::sweep_at_start(&state).await;
    }
    let sweeper =
        (!sweep_interval.is_zero()).then(|| sweeper::spawn(state.clone(), sweep_interval));
    // Each connection's peer address reaches handlers as `ConnectInfo<SocketAddr>` (the
    // per-address sign-in limit, the debug gate).
    let app = router(state.clone());
    let (tx, rx) = oneshot::channel::<listen::Stop>();
    let task = tokio::spawn(listen::serve(listener, app, limits, async {
        // A dropped `RunningServer` stops it as `shutdown` does.
        rx.await.unwrap_or(listen::Stop::Now)
    }));
    Ok(RunningServer {
        base_url,
        addr,
        shutdown: Some(tx),
        task,
        sweeper,
        state,
    })
}

/// Rotate the signing key when asked; with durable state make sure one exists before the
/// first request ("generated at first start"). In memory the key is made on first need,
/// so a server that never issues an id_token never pays for an RSA key.
async fn prepare_signing_key(state: &AppState) -> Result<(), StartError> {
    let store = state.store.as_ref();
    let result = if state.config.rotate_signing_key {
        state.keys.rotate(store).await.map(|kid| {
            tracing::info!("signing id_tokens with the new key {kid}");
        })
    } else if state.config.state != store::StateLocation::Memory {
        state.keys.signer(store).await.map(|_| ())
    } else {
        Ok(())
    };
    result.map_err(StartError::SigningKey)
}

/// The whole application: OAuth, discovery and FHIR routes over one shared state, behind
/// the host check (every route) and the debug gate (everything under `/oauth/debug`).
pub fn router(state: Arc<AppState>) -> Router {
    let hosts = Arc::new(host_check::HostPolicy::of(&state));
    let debug = Arc::new(oauth::debug_gate::DebugPolicy::of(&state));
    let log_requests = state.config.log_requests;
    let app = Router::new()
        .merge(oauth::routes())
        .merge(pages::routes())
        .merge(discovery::routes())
        .merge(fhir::routes())
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::middleware::from_fn(simulate::annotate))
        .layer(axum::extract::DefaultBodyLimit::max(error::BODY_LIMIT))
        .layer(from_fn_with_state(debug, oauth::debug_gate::gate))
        .layer(from_fn_with_state(hosts, host_check::check))
        .with_state(state);
    // Outermost, so the host check's and debug gate's refusals are logged too.
    if log_requests {
        app.layer(axum::middleware::from_fn(request_log::log))
    } else {
        app
    }
}

/// Loopback servers call themselves `localhost`, as the seed walkthrough does.
fn derived_base_url(addr: SocketAddr) -> String {
    let ip = addr.ip();
    if ip.is_loopback() || ip.is_unspecified() {
        format!("http://localhost:{}", addr.port())
    } else if ip.is_ipv6() {
        format!("http://[{ip}]:{}", addr.port())
    } else {
        format!("http://{ip}:{}", addr.port())
    }
}

fn normalise_public_url(url: &str) -> Result<String, StartError> {
    let parsed = url::Url::parse(url).map_err(|_| StartError::PublicUrl(url.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(StartError::PublicUrl(url.to_string()));
    }
    Ok(url.trim_end_matches('/').to_string())
}
