//! `connect` and `server`: targeting a second SMART server, going back to the embedded one,
//! and starting, stopping and describing the embedded server.

use std::net::{TcpListener, TcpStream};

use crate::session_support::*;
use smartnb::server::{self, Config, RunningServer};
use smartnb::session::{Outcome, Output, Session, Table};

/// A SMART server of our own, on a free port, in a runtime the test owns.
struct Remote {
    runtime: tokio::runtime::Runtime,
    server: Option<RunningServer>,
}

impl Remote {
    fn start() -> Remote {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let server = runtime
            .block_on(server::spawn(Config {
                port: 0,
                ..Default::default()
            }))
            .expect("the remote server starts");
        Remote {
            runtime,
            server: Some(server),
        }
    }

    fn url(&self) -> String {
        self.server.as_ref().unwrap().base_url.clone()
    }

    fn knows_client(&self, client_id: &str) -> bool {
        let store = self.server.as_ref().unwrap().store();
        self.runtime
            .block_on(store.client(client_id))
            .unwrap()
            .is_some()
    }

    fn knows_token(&self, access_token: &str) -> bool {
        let store = self.server.as_ref().unwrap().store();
        self.runtime
            .block_on(store.token_by_access(&smartnb::server::oauth::sha256(access_token)))
            .unwrap()
            .is_some()
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.runtime.block_on(server.shutdown());
        }
    }
}

/// A port nothing listens on.
fn dead_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The one table a cell showed.
fn the_table(outputs: &[Output]) -> Table {
    let found = tables(outputs);
    assert_eq!(found.len(), 1, "{outputs:#?}");
    found[0].clone()
}

/// What `connect` with no URL says.
fn target(s: &mut Session) -> String {
    let out = ok(s, "connect");
    assert_eq!(texts(&out).len(), 1, "{out:#?}");
    texts(&out).remove(0)
}

#[test]
fn connect_discovers_a_remote_server_and_commands_go_there() {
    let remote = Remote::start();
    let url = remote.url();
    let mut s = session();

    let out = ok(&mut s, &format!("connect {url}"));
    let note = notes(&out).concat();
    assert!(note.contains(&format!("Target: {url}")), "{note}");
    assert!(
        note.contains(&format!("FHIR base {url}/api/fhir")),
        "{note}"
    );
    assert!(
        note.contains(&format!("authorize {url}/oauth/authorize")),
        "{note}"
    );
    assert!(note.contains(&format!("token {url}/oauth/token")), "{note}");
    assert_eq!(
        target(&mut s),
        format!("Target: {url} (FHIR base {url}/api/fhir)")
    );

    register(&mut s);
    assert!(remote.knows_client(&var(&s, "client_id")));
    assert_eq!(statuses(&ok(&mut s, "token")), [200]);
    assert!(remote.knows_token(&var(&s, "access_token")));
    let out = ok(&mut s, "fetch Patient/smart-1288992");
    assert_eq!(statuses(&out), [200]);
    assert_eq!(the_json(&out)["id"], SEED_PATIENT);
    assert_eq!(s.embedded_url(), None, "the embedded server never started");

    // A `smartnb serve` says so in its configuration: --as fills in its pages too, and the
    // code it brings back is the remote server's.
    ok(&mut s, "authorize --as daniel-adams:demo-password");
    let out = ok(&mut s, "exchange");
    assert_eq!(statuses(&out), [200]);
    assert!(remote.knows_token(&var(&s, "access_token")));

    // Back to the embedded server, which knows nothing of that token.
    let out = ok(&mut s, "connect embedded");
    assert_eq!(notes(&out), ["Target: the embedded server"]);
    assert_eq!(
        target(&mut s),
        "Target: the embedded server (it starts on first use)"
    );
    let error = fails(&mut s, "introspect");
    assert_eq!(error.kind, "HttpError");
    let embedded = s.embedded_url().expect("introspect started it").to_string();
    assert_ne!(embedded, url);
    assert_eq!(
        target(&mut s),
        format!("Target: the embedded server on {embedded}")
    );
}

#[test]
fn connect_accepts_the_fhir_base_url_too() {
    let remote = Remote::start();
    let url = remote.url();
    let mut s = session();
    ok(&mut s, &format!("connect {url}/api/fhir"));
    assert_eq!(
        target(&mut s),
        format!("Target: {url} (FHIR base {url}/api/fhir)")
    );
    register(&mut s);
    assert!(remote.knows_client(&var(&s, "client_id")));
}

#[test]
fn connect_to_nothing_fails_and_keeps_the_target() {
    let mut s = session();
    register(&mut s);
    let client_id = var(&s, "client_id");
    let port = dead_port();
    let typed = format!("http://127.0.0.1:{port}");
    let error = fails(&mut s, &format!("connect {typed}"));
    assert_eq!(error.kind, "ConnectError");
    // The URL as typed, not the well-known address tried for it; and the reason in words.
    assert_eq!(
        error.message,
        format!("cannot reach {typed}: connection refused")
    );
    let hint = error.hint.clone().unwrap_or_default();
    assert!(hint.contains("nothing listens"), "{hint}");
    assert!(!hint.contains("base URL"), "{hint}");

    // No scheme: `localhost:9000` would otherwise parse with `localhost` as its scheme.
    let error = fails(&mut s, &format!("connect 127.0.0.1:{port}"));
    assert_eq!(error.kind, "ConnectError");
    assert!(error.message.contains("no http://"), "{error}");
    assert_eq!(
        error.hint.as_deref(),
        Some(format!("add http:// (connect http://127.0.0.1:{port})").as_str())
    );
    let error = fails(&mut s, "connect localhost:9000");
    assert!(error.hint.unwrap().contains("add http://"));

    // Still on the embedded server, with every variable.
    let embedded = s.embedded_url().unwrap().to_string();
    assert_eq!(
        target(&mut s),
        format!("Target: the embedded server on {embedded}")
    );
    assert_eq!(var(&s, "client_id"), client_id);
    assert_eq!(statuses(&ok(&mut s, "token")), [200]);
}

#[test]
fn connect_to_a_server_that_is_not_smart_says_what_it_tried() {
    let remote = Remote::start();
    let mut s = session();
    // The FHIR search endpoint answers, but is no SMART base.
    let url = format!("{}/api/fhir/Patient", remote.url());
    let error = fails(&mut s, &format!("connect {url}"));
    assert_eq!(error.kind, "ConnectError");
    assert!(error.message.contains("no SMART configuration"), "{error}");
    assert!(
        error.message.contains(".well-known/smart-configuration"),
        "{error}"
    );
}

#[test]
fn server_start_status_and_stop() {
    let mut s = session();
    let out = ok(&mut s, "server status");
    assert!(texts(&out)[0].contains("not running"), "{out:#?}");

    let out = ok(&mut s, "server start --port 0");
    let base = s.embedded_url().expect("started").to_string();
    assert!(notes(&out)[0].starts_with(&format!("Started the embedded SMART server on {base}")));
    let out = ok(&mut s, "server start --port 0");
    assert!(notes(&out)[0].contains("already running"), "{out:#?}");
    assert_eq!(s.embedded_url(), Some(base.as_str()));

    register(&mut s);
    ok(&mut s, "token");
    let status = the_table(&ok(&mut s, "server status"));
    assert_eq!(field(&status, "URL"), Some(base.as_str()));
    assert_eq!(
        field(&status, "FHIR base"),
        Some(format!("{base}/api/fhir").as_str())
    );
    assert_eq!(field(&status, "clients"), Some("1"));
    assert_eq!(field(&status, "live token pairs"), Some("1"));
    assert_eq!(field(&status, "session target"), Some("yes"));

    let port: u16 = base.rsplit(':').next().unwrap().parse().unwrap();
    let out = ok(&mut s, "server stop");
    assert!(notes(&out)[0].starts_with(&format!("Stopped the embedded server on {base}")));
    assert_eq!(s.embedded_url(), None);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the port is closed after `server stop`"
    );
    let out = ok(&mut s, "server stop");
    assert!(notes(&out)[0].contains("not running"));

    // The next command starts a fresh server: the old client is gone.
    let (outcome, out) = run(&mut s, "token");
    assert!(
        notes(&out).iter().any(|n| n.starts_with("Started")),
        "{out:#?}"
    );
    assert_eq!(
        outcome,
        Outcome::Failed,
        "the old client is unknown to the new server"
    );
    assert_eq!(errors(&out)[0].kind, "HttpError");
}

#[test]
fn server_status_names_a_remote_target() {
    let remote = Remote::start();
    let mut s = session();
    ok(&mut s, "server start --port 0");
    ok(&mut s, &format!("connect {}", remote.url()));
    let status = the_table(&ok(&mut s, "server status"));
    assert_eq!(
        field(&status, "session target"),
        Some(format!("no (the target is {})", remote.url()).as_str())
    );
}

#[test]
fn server_mistakes_are_errors() {
    let mut s = session();
    assert_eq!(fails(&mut s, "server reboot").kind, "UnknownSubcommand");
    assert_eq!(fails(&mut s, "server start --port nine").kind, "BadValue");
    assert_eq!(
        fails(&mut s, "server start --port 0 --host somewhere").kind,
        "BadValue"
    );
    assert_eq!(s.embedded_url(), None, "nothing started");
}
