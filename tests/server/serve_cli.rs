//! `smartnb serve` as a user runs it: request lines on stderr by default and with
//! `SMARTNB_LOG=debug`, none with `--quiet`; a `--state` it cannot use refused at once with
//! the real reason, and never a backtrace, even with `RUST_BACKTRACE` set; startup lines that
//! show the address bound and the URL participants use, with a warning when that URL only
//! works on this machine.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A `smartnb serve --port 0` child with its base URL and its stderr lines as they come.
struct Serving {
    child: Child,
    base: String,
    stderr: mpsc::Receiver<String>,
}

impl Serving {
    fn start(args: &[&str], log: Option<&str>) -> Serving {
        let mut command = Command::new(env!("CARGO_BIN_EXE_smartnb"));
        command
            .args(["serve", "--port", "0"])
            .args(args)
            .env_remove("SMARTNB_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(filter) = log {
            command.env("SMARTNB_LOG", filter);
        }
        let mut child = command.spawn().expect("smartnb serve starts");
        let mut base = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut base)
            .expect("the base URL line");
        assert!(base.starts_with("http://"), "first line {base:?}");
        let (tx, stderr) = mpsc::channel();
        let pipe = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Serving {
            child,
            base: base.trim().to_string(),
            stderr,
        }
    }

    /// The stderr lines up to and including the first that contains `wanted` (a generous
    /// bound only against a hang; the line is expected long before).
    fn wait_for(&self, wanted: &str) -> Vec<String> {
        let mut seen = Vec::new();
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_secs(60)) {
            let found = line.contains(wanted);
            seen.push(line);
            if found {
                return seen;
            }
        }
        panic!("no stderr line with {wanted:?}; got:\n{}", seen.join("\n"));
    }

    /// Send `signal` (`TERM`, `INT`) to the process.
    fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "SIG{signal} sent");
    }

    /// SIGTERM, then every stderr line until the process has exited.
    fn stop(self) -> Vec<String> {
        self.signal("TERM");
        self.stop_waiting()
    }

    /// Wait (signalled already) until the process has exited; its remaining stderr lines.
    fn stop_waiting(mut self) -> Vec<String> {
        let status = self.child.wait().expect("exits");
        assert!(status.success(), "{status}");
        self.stderr.iter().collect()
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn get_metadata(base: &str) {
    let reply = reqwest::get(format!("{base}/api/fhir/metadata?_format=json"))
        .await
        .expect("answered");
    assert_eq!(reply.status(), 200);
}

#[tokio::test]
async fn serve_logs_each_request_unless_quiet() {
    for log in [None, Some("debug")] {
        let server = Serving::start(&[], log);
        get_metadata(&server.base).await;
        let lines = server.wait_for("GET /api/fhir/metadata?_format=json 200");
        let last = lines.last().unwrap();
        assert!(
            last.contains(" INFO smartnb::requests: "),
            "{log:?}: {last}"
        );
        assert!(last.ends_with(" ms"), "{log:?}: {last}");
    }
    let quiet = Serving::start(&["--quiet"], None);
    get_metadata(&quiet.base).await;
    let lines = quiet.stop();
    assert!(lines.iter().any(|l| l.contains("draining")), "{lines:?}");
    assert!(
        !lines.iter().any(|l| l.contains("smartnb::requests")),
        "--quiet logged requests: {lines:?}"
    );
}

/// A connection to the server's port, opened before it is told to stop.
fn open_connection(base: &str) -> std::net::TcpStream {
    let port = base.rsplit(':').next().expect("a port in the base URL");
    std::net::TcpStream::connect(format!("127.0.0.1:{port}")).expect("connect")
}

/// A GET on `stream`, and everything the server sends until it closes the connection.
fn get_until_closed(stream: &mut std::net::TcpStream) -> String {
    use std::io::{Read, Write};
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    stream
        .write_all(b"GET /.well-known/smart-configuration HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("send");
    let mut reply = String::new();
    stream
        .read_to_string(&mut reply)
        .expect("the server closes the connection after its answer");
    reply
}

#[test]
fn sigterm_drains_open_connections_and_ctrl_c_stops_at_once() {
    // A drain limit no test waits for: the process exits because its connection closed.
    let serving = Serving::start(&["--quiet", "--drain", "600"], None);
    let mut open = open_connection(&serving.base);
    serving.signal("TERM");
    serving.wait_for("draining");
    let reply = get_until_closed(&mut open);
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
    assert!(
        reply
            .lines()
            .any(|l| l.eq_ignore_ascii_case("connection: close")),
        "{reply}"
    );
    let lines = serving.stop_waiting();
    assert!(!lines.iter().any(|l| l.contains("panic")), "{lines:?}");

    // Ctrl-C: no drain, even with a connection open and a long --drain.
    let serving = Serving::start(&["--quiet", "--drain", "600"], None);
    let _open = open_connection(&serving.base);
    serving.signal("INT");
    let lines = serving.stop_waiting();
    assert!(
        lines.iter().any(|l| l.contains("shutting down")),
        "{lines:?}"
    );
}

/// `smartnb serve --state STATE` that must fail: its exit status and stderr.
fn refused_state(state: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_smartnb"))
        .args(["serve", "--port", "0", "--state", state])
        .env("RUST_BACKTRACE", "1")
        .env_remove("SMARTNB_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("smartnb runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "{state}: started: {stderr}");
    assert!(output.stdout.is_empty(), "{state}: printed a base URL");
    for trace in ["Stack backtrace", "backtrace", "anyhow::", "src/main.rs"] {
        assert!(!stderr.contains(trace), "{state}: {trace:?} in {stderr}");
    }
    stderr
}

#[test]
fn a_bad_state_fails_at_once_with_the_real_reason() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "these are notes, not a database; ".repeat(200)).unwrap();
    let why = refused_state(text.to_str().unwrap());
    assert!(why.contains("not an SQLite database"), "{why}");
    assert!(why.contains("notes.txt"), "{why}");

    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let why = refused_state(&format!(
        "postgres://smart:hunter2@127.0.0.1:{port}/smartnb"
    ));
    assert!(why.contains("connection refused"), "{why}");
    assert!(!why.contains("hunter2"), "the password is shown: {why}");

    for url in ["mysql://x", "mysql://smart:hunter2@db/smartnb"] {
        let why = refused_state(url);
        assert!(why.contains("mysql:// is not supported"), "{why}");
        assert!(why.contains("postgres://"), "says what is: {why}");
        assert!(!why.contains("SQLite file mysql"), "{why}");
    }

    let missing = dir.path().join("no-such-dir").join("state.db");
    let why = refused_state(missing.to_str().unwrap());
    assert!(why.contains("does not exist"), "{why}");
    assert!(why.contains("no-such-dir"), "{why}");
}

#[tokio::test]
async fn serve_logs_each_simulated_answer_with_its_fault_even_when_quiet() {
    let server = Serving::start(&["--quiet"], None);
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.base);
    let app: serde_json::Value = http
        .post(url("/oauth/register"))
        .json(&serde_json::json!({
            "client_name": "logged",
            "redirect_uris": ["http://localhost:9001/authorized"],
            "scope": "launch/patient patient/*.read offline_access",
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client_id = app["client_id"].as_str().unwrap();
    let minted: serde_json::Value = http
        .post(url("/oauth/debug/token"))
        .json(&serde_json::json!({
            "client_id": client_id, "username": "daniel-adams", "patient_id": "smart-1288992",
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let set = http
        .post(url("/oauth/debug/simulate"))
        .json(&serde_json::json!({"client_id": client_id, "fault": "fhir_throttled"}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    let read = http
        .get(url("/api/fhir/Patient/smart-1288992"))
        .bearer_auth(minted["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 429);
    let lines = server.wait_for("simulated fault answers");
    let line = lines.last().unwrap();
    assert!(line.contains(" INFO "), "{line}");
    assert!(line.contains("fhir_throttled"), "{line}");
    assert!(line.contains(client_id), "{line}");
    assert!(line.contains("fhir request"), "{line}");
}

/// The startup lines of `smartnb serve ARGS`, up to the one that says where the state is.
fn startup(args: &[&str]) -> (String, Vec<String>) {
    let server = Serving::start(args, None);
    let lines = server.wait_for("; Ctrl-C stops it");
    // smartnb's own lines, not log lines (which start with a time).
    let own = lines
        .into_iter()
        .filter(|l| l.starts_with("smartnb: "))
        .collect();
    (server.base.clone(), own)
}

#[test]
fn startup_shows_the_address_bound_and_the_url_participants_use() {
    let (base, lines) = startup(&[]);
    let port = base.rsplit(':').next().unwrap();
    assert_eq!(base, format!("http://localhost:{port}"));
    assert_eq!(
        lines[0],
        format!("smartnb: listening on 127.0.0.1:{port}, participants use {base} (FHIR base {base}/api/fhir)")
    );
    assert!(!lines.iter().any(|l| l.contains("warning")), "{lines:?}");
    assert_eq!(
        lines.last().unwrap(),
        "smartnb: state in memory; Ctrl-C stops it"
    );

    // Every interface without --public-url: the URL still says localhost, and a warning
    // says what to add for remote participants.
    let (base, lines) = startup(&["--host", "0.0.0.0"]);
    let port = base.rsplit(':').next().unwrap();
    assert!(
        lines[0].starts_with(&format!(
            "smartnb: listening on 0.0.0.0:{port}, participants use http://localhost:{port} "
        )),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("smartnb: warning: --host 0.0.0.0 lets other machines connect")
            && lines[1].contains(&format!("give --public-url http://NAME:{port}")),
        "{lines:?}"
    );

    let (base, lines) = startup(&[
        "--host",
        "0.0.0.0",
        "--public-url",
        "http://class.example:9250",
    ]);
    assert_eq!(base, "http://class.example:9250");
    assert!(
        lines[0].contains(", participants use http://class.example:9250 (FHIR base"),
        "{lines:?}"
    );
    assert!(!lines.iter().any(|l| l.contains("warning")), "{lines:?}");
}
