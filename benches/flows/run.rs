//! A run: register the app, start the virtual clients, measure a window, stop, report.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use hyper::header::HeaderValue;
use hyper::Method;

use crate::flow::{self, App, FlowError, Person};
use crate::http::Conn;
use crate::rss::{self, Sample};
use crate::{Args, Mode, People};

const JOSEPH: Person = Person {
    username: "joseph-ross",
    patient: "smart-1081332",
};
const DANIEL: Person = Person {
    username: "daniel-adams",
    patient: "smart-1288992",
};
const AMY: Person = Person {
    username: "daniel-adams",
    patient: "smart-1032702",
};
const REDIRECT_URI: &str = "http://localhost:9001/authorized";
/// No flow may take longer than this; a stuck server counts as errors, not as a hang.
const FLOW_TIMEOUT: u64 = 30;
/// First error messages kept for the report.
const KEPT_ERRORS: usize = 10;

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The URL is not an http URL with a host.
    #[error("{0} is not a http://host:port URL")]
    Url(String),
    /// Nothing answers there.
    #[error("cannot reach {0}")]
    Unreachable(String),
    /// Registration of the app failed.
    #[error("registering the load generator's app failed: {0}")]
    Register(String),
}

/// What a run measured.
#[derive(Debug, Default)]
pub struct Report {
    /// Flows (or refresh grants) completed inside the measured window.
    pub completed: u64,
    /// The window's length in seconds.
    pub window: f64,
    /// Flows completed over the whole run.
    pub flows: u64,
    /// Extra FHIR reads over the whole run.
    pub reads: u64,
    /// Refresh grants over the whole run.
    pub refreshes: u64,
    /// Failed flows, reads or grants over the whole run.
    pub errors: u64,
    /// Of those, answers with a 5xx status.
    pub status_5xx: u64,
    /// The first few error messages.
    pub first_errors: Vec<String>,
    /// Durations of the operations completed in the window, in microseconds, sorted.
    pub latencies_us: Vec<u64>,
    /// The server's memory over the run.
    pub rss: Vec<Sample>,
    /// Seconds from the start until the load stopped.
    pub load_end: f64,
    /// CPU seconds the server used during the measured window (with `--pid`).
    pub server_cpu: Option<f64>,
    /// CPU seconds this generator used during the measured window.
    pub generator_cpu: Option<f64>,
}

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    measuring: AtomicBool,
    flows: AtomicU64,
    reads: AtomicU64,
    refreshes: AtomicU64,
    errors: AtomicU64,
    status_5xx: AtomicU64,
    first_errors: Mutex<Vec<String>>,
    latencies_us: Mutex<Vec<u64>>,
}

impl Shared {
    fn failed(&self, error: &FlowError) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if matches!(error, FlowError::ServerError { .. }) {
            self.status_5xx.fetch_add(1, Ordering::Relaxed);
        }
        let mut kept = self.first_errors.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() < KEPT_ERRORS {
            kept.push(error.to_string());
        }
    }

    fn completed(&self) -> u64 {
        self.flows.load(Ordering::Relaxed) + self.refreshes.load(Ordering::Relaxed)
    }
}

/// Run the load described by `args`, sampling memory every `every`.
pub async fn run(args: &Args, every: Duration) -> Result<Report, SetupError> {
    let (addr, host) = resolve(&args.url).await?;
    let base = args.url.trim_end_matches('/').to_string();
    let app = register(addr, &host, &base, args.mode, args.identity).await?;
    let shared = Arc::new(Shared::default());
    let people: &[Person] = match args.people {
        People::Joseph => &[JOSEPH],
        People::All => &[JOSEPH, DANIEL, AMY],
    };
    let start = Instant::now();
    let warmup = Duration::from_secs_f64(args.warmup);
    let window = Duration::from_secs_f64(args.seconds);
    let linger = Duration::from_secs_f64(args.linger);
    let sampler = args.pid.map(|pid| {
        tokio::spawn(rss::sample(
            pid,
            start,
            start + warmup + window + linger,
            every,
        ))
    });
    let mut clients = Vec::new();
    for i in 0..args.clients {
        let (shared, app, host) = (shared.clone(), app.clone(), host.clone());
        let (mode, reads) = (args.mode, args.reads);
        clients.push(tokio::spawn(async move {
            client(i, addr, &host, &app, people, mode, reads, &shared).await
        }));
    }
    tokio::time::sleep(warmup).await;
    let before = shared.completed();
    let cpu_before = (rss::cpu_seconds(args.pid), rss::cpu_seconds(None));
    let opened = Instant::now();
    shared.measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(window).await;
    shared.measuring.store(false, Ordering::Relaxed);
    let completed = shared.completed() - before;
    let measured = opened.elapsed().as_secs_f64();
    let spent = |before: Option<f64>, after: Option<f64>| Some(after? - before?);
    let server_cpu = args
        .pid
        .and_then(|_| spent(cpu_before.0, rss::cpu_seconds(args.pid)));
    let generator_cpu = spent(cpu_before.1, rss::cpu_seconds(None));
    shared.stop.store(true, Ordering::Relaxed);
    for client in clients {
        let _ = client.await;
    }
    let load_end = start.elapsed().as_secs_f64();
    let rss = match sampler {
        Some(task) => task.await.unwrap_or_default(),
        None => Vec::new(),
    };
    let mut latencies_us = std::mem::take(
        &mut *shared
            .latencies_us
            .lock()
            .unwrap_or_else(|e| e.into_inner()),
    );
    latencies_us.sort_unstable();
    let first_errors = std::mem::take(
        &mut *shared
            .first_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner()),
    );
    Ok(Report {
        completed,
        window: measured,
        flows: shared.flows.load(Ordering::Relaxed),
        reads: shared.reads.load(Ordering::Relaxed),
        refreshes: shared.refreshes.load(Ordering::Relaxed),
        errors: shared.errors.load(Ordering::Relaxed),
        status_5xx: shared.status_5xx.load(Ordering::Relaxed),
        first_errors,
        latencies_us,
        rss,
        load_end,
        server_cpu,
        generator_cpu,
    })
}

async fn resolve(url: &str) -> Result<(SocketAddr, String), SetupError> {
    let parsed = url::Url::parse(url).map_err(|_| SetupError::Url(url.to_string()))?;
    let (Some(host), Some(port)) = (parsed.host_str(), parsed.port_or_known_default()) else {
        return Err(SetupError::Url(url.to_string()));
    };
    if parsed.scheme() != "http" {
        return Err(SetupError::Url(url.to_string()));
    }
    let host_header = match parsed.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    };
    let candidates = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|_| SetupError::Unreachable(url.to_string()))?;
    for addr in candidates {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok((addr, host_header));
        }
    }
    Err(SetupError::Unreachable(url.to_string()))
}

async fn register(
    addr: SocketAddr,
    host: &str,
    base: &str,
    mode: Mode,
    identity: bool,
) -> Result<App, SetupError> {
    let fail = |e: String| SetupError::Register(e);
    let scope = match (mode, identity) {
        (Mode::Flow, false) => "launch/patient patient/*.read",
        (Mode::Refresh, false) => "launch/patient patient/*.read offline_access",
        (Mode::Flow, true) => "openid fhirUser launch/patient patient/*.read",
        (Mode::Refresh, true) => "openid fhirUser launch/patient patient/*.read offline_access",
    };
    let body = serde_json::json!({
        "client_name": "Load generator",
        "redirect_uris": [REDIRECT_URI],
        "scope": scope,
    });
    let mut conn = Conn::new(addr, host).map_err(|e| fail(e.to_string()))?;
    let reply = conn
        .send(
            Method::POST,
            "/oauth/register",
            &[],
            Some(("application/json", body.to_string())),
        )
        .await
        .map_err(|e| fail(e.to_string()))?;
    if reply.status.as_u16() != 201 {
        return Err(fail(format!("HTTP {}: {}", reply.status, reply.text())));
    }
    let json: serde_json::Value =
        serde_json::from_slice(&reply.body).map_err(|e| fail(e.to_string()))?;
    let (Some(id), Some(secret)) = (json["client_id"].as_str(), json["client_secret"].as_str())
    else {
        return Err(fail(format!("no client_id or client_secret in {json}")));
    };
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    Ok(App {
        base: base.to_string(),
        client_id: id.to_string(),
        basic: HeaderValue::from_str(&format!("Basic {credentials}"))
            .map_err(|e| fail(e.to_string()))?,
        redirect_uri: REDIRECT_URI.to_string(),
        scope: scope.to_string(),
    })
}

/// Whether a token received at `got` that lasts `expires_in` s is safe to use now: the
/// server counts whole seconds, so a token is good for at least `expires_in - 1` s.
fn fresh(got: Instant, expires_in: u64) -> bool {
    got.elapsed().as_secs_f64() + 1.5 < expires_in as f64
}

#[allow(clippy::too_many_arguments)]
async fn client(
    index: usize,
    addr: SocketAddr,
    host: &str,
    app: &App,
    people: &[Person],
    mode: Mode,
    reads: usize,
    shared: &Shared,
) {
    let Ok(mut conn) = Conn::new(addr, host) else {
        return;
    };
    let mut latencies = Vec::new();
    let mut turn = index;
    let mut refresh_token: Option<String> = None;
    while !shared.stop.load(Ordering::Relaxed) {
        let who = people[turn % people.len()];
        turn += 1;
        let began = Instant::now();
        let outcome =
            match (mode, refresh_token.take()) {
                (Mode::Refresh, Some(token)) => timed(flow::refresh(&mut conn, app, &token))
                    .await
                    .map(|tokens| {
                        shared.refreshes.fetch_add(1, Ordering::Relaxed);
                        refresh_token = tokens.refresh_token;
                        None
                    }),
                _ => timed(flow::run(&mut conn, app, who)).await.map(|tokens| {
                    shared.flows.fetch_add(1, Ordering::Relaxed);
                    refresh_token = tokens.refresh_token.clone();
                    Some((tokens, Instant::now()))
                }),
            };
        let extra_reads = match outcome {
            Ok(done) => {
                if shared.measuring.load(Ordering::Relaxed) {
                    latencies.push(began.elapsed().as_micros() as u64);
                }
                done
            }
            Err(error) => {
                shared.failed(&error);
                // A fresh connection, and a pause so a broken server is not hammered.
                if let Ok(fresh_conn) = Conn::new(addr, host) {
                    conn = fresh_conn;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
                None
            }
        };
        let Some((tokens, got)) = extra_reads else {
            continue;
        };
        for n in 0..reads {
            if shared.stop.load(Ordering::Relaxed) || !fresh(got, tokens.expires_in) {
                break;
            }
            let patient = who.patient;
            let path = if n % 2 == 0 {
                format!("/api/fhir/Patient/{patient}")
            } else {
                format!("/api/fhir/Observation?patient={patient}&_count=5")
            };
            match timed(flow::read(&mut conn, &path, &tokens.access_token)).await {
                Ok(()) => {
                    shared.reads.fetch_add(1, Ordering::Relaxed);
                }
                Err(error) => {
                    shared.failed(&error);
                    break;
                }
            }
        }
    }
    shared
        .latencies_us
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .extend(latencies);
}

async fn timed<T>(
    work: impl std::future::Future<Output = Result<T, FlowError>>,
) -> Result<T, FlowError> {
    match tokio::time::timeout(Duration::from_secs(FLOW_TIMEOUT), work).await {
        Ok(result) => result,
        Err(_) => Err(FlowError::Timeout(FLOW_TIMEOUT)),
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)] as f64 / 1000.0
}

impl Report {
    /// Print the human summary, then one `RESULT key=value …` line for scripts.
    pub fn print(&self, args: &Args) {
        let what = match args.mode {
            Mode::Flow => "flows",
            Mode::Refresh => "refresh grants",
        };
        let rate = self.completed as f64 / self.window.max(1e-9);
        let (p50, p99) = (
            percentile(&self.latencies_us, 50.0),
            percentile(&self.latencies_us, 99.0),
        );
        println!(
            "{what}/s: {rate:.1} ({} in {:.2} s after {:.1} s warm-up; {} clients; each p50 {p50:.2} ms, p99 {p99:.2} ms)",
            self.completed, self.window, args.warmup, args.clients
        );
        println!(
            "whole run: {} flows, {} extra FHIR reads, {} refresh grants; {} errors, {} of them 5xx",
            self.flows, self.reads, self.refreshes, self.errors, self.status_5xx
        );
        for error in &self.first_errors {
            println!("  error: {error}");
        }
        let mut cpu_fields = String::new();
        if let (Some(server), Some(generator), true) =
            (self.server_cpu, self.generator_cpu, self.completed > 0)
        {
            let per = |cpu: f64| cpu * 1e6 / self.completed as f64;
            let (server_us, generator_us) = (per(server), per(generator));
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
            let idle_rate = cores * 1e6 / (server_us + generator_us);
            println!(
                "CPU per {}: server {server_us:.0} µs, generator {generator_us:.0} µs; {cores} idle cores would fit {idle_rate:.0}/s with this generator on the same machine, {:.0}/s with it elsewhere",
                what.trim_end_matches('s'),
                cores * 1e6 / server_us
            );
            cpu_fields =
                format!(" server_cpu_us={server_us:.0} generator_cpu_us={generator_us:.0}");
        }
        let mut rss_fields = String::new();
        if !self.rss.is_empty() {
            let line: Vec<String> = self
                .rss
                .iter()
                .map(|s| format!("{:.0}s:{}", s.at, s.kb / 1024))
                .collect();
            println!("server RSS (MB) over time: {}", line.join(" "));
            let first = self.rss[0].kb;
            let max = self.rss.iter().map(|s| s.kb).max().unwrap_or(0);
            let at = |t: f64| {
                self.rss
                    .iter()
                    .min_by(|a, b| (a.at - t).abs().total_cmp(&(b.at - t).abs()))
                    .map_or(0, |s| s.kb)
            };
            let half = at(args.warmup + args.seconds / 2.0);
            let load_end = at(self.load_end);
            let last = self.rss.last().map_or(0, |s| s.kb);
            rss_fields = format!(
                " rss_start_kb={first} rss_half_kb={half} rss_load_end_kb={load_end} rss_max_kb={max} rss_final_kb={last}"
            );
        }
        println!(
            "RESULT mode={} clients={} seconds={:.2} rate={rate:.1} completed={} flows={} reads={} refreshes={} errors={} status_5xx={} p50_ms={p50:.2} p99_ms={p99:.2}{cpu_fields}{rss_fields}",
            match args.mode {
                Mode::Flow => "flow",
                Mode::Refresh => "refresh",
            },
            args.clients,
            self.window,
            self.completed,
            self.flows,
            self.reads,
            self.refreshes,
            self.errors,
            self.status_5xx,
        );
    }
}
