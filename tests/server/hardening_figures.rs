//! The figures of benches/README.md's "Hardening" section: the server's CPU per request for
//! the largest scope list a request may carry (authorize, register, a FHIR read with a token
//! carrying it), for the 16,000-scope requests of issue 13, and the memory a pending
//! authorize request costs. Not a timed test: it prints figures and fails only when the
//! server misbehaves (a 5xx, or a request that should succeed failing).
//!
//! ```sh
//! cargo test --no-default-features --test server hardening_figures -- --ignored --nocapture
//! ```
//!
//! The server runs on a thread of its own (a current-thread tokio runtime), and its CPU is
//! that thread's run time from /proc (schedstat, in nanoseconds), so the client's work is
//! not counted. It uses only HTTP and `server::spawn`, so the same file measures an older
//! commit too.

use std::time::Duration;

use reqwest::redirect::Policy;
use serde_json::{json, Value};
use smartnb::server::{self, Config};

struct ServerThread {
    base: String,
    tid: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ServerThread {
    fn start() -> ServerThread {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let running = server::spawn(Config {
                    port: 0,
                    ..Config::default()
                })
                .await
                .expect("the server starts");
                let me = std::fs::read_link("/proc/thread-self").expect("/proc/thread-self");
                let tid = me.file_name().unwrap().to_string_lossy().into_owned();
                ready_tx.send((running.base_url.clone(), tid)).unwrap();
                let _ = stop_rx.await;
                running.shutdown().await;
            });
        });
        let (base, tid) = ready_rx.recv().expect("the server thread is ready");
        ServerThread {
            base,
            tid,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// Nanoseconds the server's thread has run.
    fn cpu_ns(&self) -> u64 {
        let path = format!("/proc/self/task/{}/schedstat", self.tid);
        let text = std::fs::read_to_string(path).expect("schedstat");
        text.split_whitespace().next().unwrap().parse().unwrap()
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// VmRSS of this process, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
        .unwrap()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .timeout(Duration::from_secs(600))
        .build()
        .unwrap()
}

/// The largest scope list a request may carry: 100 distinct tokens in under 4 KiB.
fn largest_scope() -> String {
    let mut scopes = vec![
        "launch/patient".to_string(),
        "offline_access".to_string(),
        "patient/Patient.rs".to_string(),
    ];
    scopes.extend((0..97).map(|i| format!("patient/Observation.rs?category=c{i:0>3}")));
    scopes.join(" ")
}

/// 16,000 distinct short scope tokens (aaa aab …), as in issue 13.
fn sixteen_thousand() -> String {
    let l = |n: usize| char::from(b'a' + (n % 26) as u8);
    (0..16_000)
        .map(|i| format!("{}{}{}", l(i / 676), l(i / 26), l(i)))
        .collect::<Vec<_>>()
        .join(" ")
}

struct Bench {
    server: ServerThread,
    http: reqwest::Client,
}

impl Bench {
    async fn register(&self, scope: &str) -> (u16, Value) {
        let body = json!({"client_name": "bench", "redirect_uris": ["http://localhost:9001/authorized"], "scope": scope});
        let reply = self
            .http
            .post(format!("{}/oauth/register", self.server.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = reply.status().as_u16();
        (status, reply.json().await.unwrap_or(Value::Null))
    }

    async fn authorize(&self, client_id: &str, scope: &str) -> u16 {
        let url = reqwest::Url::parse_with_params(
            &format!("{}/oauth/authorize", self.server.base),
            &[
                ("response_type", "code"),
                ("client_id", client_id),
                ("redirect_uri", "http://localhost:9001/authorized"),
                ("scope", scope),
                ("state", "bench-state"),
                ("aud", &format!("{}/api/fhir", self.server.base)),
            ],
        )
        .unwrap();
        self.http.get(url).send().await.unwrap().status().as_u16()
    }

    async fn mint(&self, client_id: &str) -> String {
        let body = json!({"client_id": client_id, "username": "daniel-adams", "patient_id": "smart-1288992"});
        let reply = self
            .http
            .post(format!("{}/oauth/debug/token", self.server.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200);
        let json: Value = reply.json().await.unwrap();
        json["access_token"].as_str().unwrap().to_string()
    }

    async fn read(&self, token: &str) -> u16 {
        let url = format!("{}/api/fhir/Patient/smart-1288992", self.server.base);
        let reply = self.http.get(url).bearer_auth(token).send().await.unwrap();
        reply.status().as_u16()
    }

    /// Server CPU per call of `f`, in microseconds, over `n` calls (after one warm-up).
    async fn cpu_us<F, Fut>(&self, n: u32, f: F) -> f64
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        f().await;
        let before = self.server.cpu_ns();
        for _ in 0..n {
            f().await;
        }
        (self.server.cpu_ns() - before) as f64 / f64::from(n) / 1000.0
    }
}

#[tokio::test]
#[ignore = "prints the figures of benches/README.md; run with --ignored --nocapture"]
async fn hardening_figures() {
    let bench = Bench {
        server: ServerThread::start(),
        http: client(),
    };
    let seed = "launch/patient patient/*.read offline_access";
    let largest = largest_scope();
    let huge = sixteen_thousand();
    let n = 200;
    println!(
        "profile: {}",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );

    // Memory first, while the server's allocator holds nothing freed by earlier requests
    // (which later ones would reuse without growing the RSS): authorize requests waiting
    // for their participant, with a redirect URI of 1 KiB, the 100 scopes and the largest
    // state the server keeps now (2 KiB), then one as large as the 64 KiB body limit left
    // room for before (56 KiB). RSS growth per request, over 2,000 requests.
    let redirect = format!("http://localhost:9001/{}", "r".repeat(1024 - 22));
    let body = json!({"client_name": "bench", "redirect_uris": [redirect], "scope": largest});
    let reply = bench
        .http
        .post(format!("{}/oauth/register", bench.server.base))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 201);
    let id = reply.json::<Value>().await.unwrap()["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    for state_len in [2048, 56 * 1024] {
        let state = "s".repeat(state_len);
        let form = [
            ("response_type", "code"),
            ("client_id", id.as_str()),
            ("redirect_uri", redirect.as_str()),
            ("scope", largest.as_str()),
            ("state", state.as_str()),
            ("aud", &format!("{}/api/fhir", bench.server.base)),
        ];
        let requests = 2_000;
        let rss_before = rss_kib();
        let mut kept = 0;
        for _ in 0..requests {
            let reply = bench
                .http
                .post(format!("{}/oauth/authorize", bench.server.base))
                .form(&form)
                .send()
                .await
                .unwrap();
            assert!(reply.status().is_redirection(), "{}", reply.status());
            let location = reply.headers()["location"].to_str().unwrap().to_string();
            if !location.contains("error=") {
                kept += 1;
            }
        }
        let grown = rss_kib().saturating_sub(rss_before) * 1024;
        println!(
            "authorize with a {state_len}-byte state, {requests} requests: {kept} kept; RSS grew {} KiB, {} bytes per request",
            grown / 1024,
            grown / requests
        );
    }

    let (status, small_client) = bench.register(seed).await;
    assert_eq!(status, 201);
    let (status, large_client) = bench.register(&largest).await;
    assert_eq!(status, 201);
    let small_id = small_client["client_id"].as_str().unwrap().to_string();
    let large_id = large_client["client_id"].as_str().unwrap().to_string();

    for (label, scope) in [("3 scopes (the seed's)", seed), ("100 scopes", &largest)] {
        let us = bench
            .cpu_us(n, || async {
                assert_eq!(bench.register(scope).await.0, 201);
            })
            .await;
        println!("register, {label}: {us:.0} µs server CPU per request");
    }
    for (label, id, scope) in [
        ("3 scopes (the seed's)", &small_id, seed),
        ("100 scopes", &large_id, largest.as_str()),
    ] {
        let us = bench
            .cpu_us(n, || async {
                assert_eq!(bench.authorize(id, scope).await, 303);
            })
            .await;
        println!("authorize, {label}: {us:.0} µs server CPU per request");
    }
    for (label, id) in [
        ("3 scopes (the seed's)", &small_id),
        ("100 scopes", &large_id),
    ] {
        let token = bench.mint(id).await;
        let us = bench
            .cpu_us(n, || async {
                assert_eq!(bench.read(&token).await, 200);
            })
            .await;
        println!("FHIR read with a token of {label}: {us:.0} µs server CPU per request");
    }

    // Issue 13's requests: 16,000 short scopes. A client registered with them (if the
    // server accepts that), then an authorize request asking for them all.
    let before = bench.server.cpu_ns();
    let (status, huge_client) = bench.register(&huge).await;
    let register_ms = (bench.server.cpu_ns() - before) as f64 / 1e6;
    println!("register, 16,000 scopes: HTTP {status}, {register_ms:.1} ms server CPU");
    let huge_id = huge_client["client_id"]
        .as_str()
        .map(str::to_string)
        .unwrap_or(small_id.clone());
    let before = bench.server.cpu_ns();
    let status = bench.authorize(&huge_id, &huge).await;
    let authorize_ms = (bench.server.cpu_ns() - before) as f64 / 1e6;
    println!("authorize, 16,000 scopes: HTTP {status}, {authorize_ms:.1} ms server CPU");
    if huge_client["client_id"].is_string() {
        let token = bench.mint(&huge_id).await;
        // None of them is a resource scope: the read is refused (403) once they are parsed.
        let before = bench.server.cpu_ns();
        let status = bench.read(&token).await;
        let ms = (bench.server.cpu_ns() - before) as f64 / 1e6;
        println!("FHIR read with a token of 16,000 scopes: HTTP {status}, {ms:.1} ms server CPU");
    }
}
