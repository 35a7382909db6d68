//! `authorize --listen`: the session waits on the redirect URI's port while the test plays
//! the browser that comes back from the consent page.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::session_support::*;
use smartnb::session::{Interrupter, Outcome, Output, Session};

/// The state every test sends, so the browser knows it before the link is built.
pub(crate) const STATE: &str = "test-state-4711";

/// A port nothing listens on right now.
pub(crate) fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().unwrap().port()
}

/// A session with a client whose redirect URI is `http://localhost:PORT/cb`.
fn session_redirecting_to_a_free_port() -> (Session, u16) {
    let port = free_port();
    let mut s = session();
    register_with(&mut s, &format!("http://localhost:{port}/cb"));
    (s, port)
}

fn register_with(s: &mut Session, redirect_uri: &str) {
    let out = ok(s, &format!("register --redirect-uri {redirect_uri}"));
    assert_eq!(statuses(&out), [201]);
}

/// `authorize --listen` running on its own thread.
pub(crate) struct Listening {
    port: u16,
    interrupter: Interrupter,
    cell: JoinHandle<(Session, Outcome, Vec<Output>)>,
}

impl Listening {
    /// Start the cell and wait until its port accepts connections.
    fn start(s: Session, port: u16) -> Listening {
        Listening::start_cell(
            s,
            port,
            format!("authorize --listen --timeout 20 --state {STATE}"),
        )
    }

    /// Start a cell that listens on `port`, and wait until the port accepts connections.
    pub(crate) fn start_cell(mut s: Session, port: u16, cell: String) -> Listening {
        let interrupter = s.interrupter();
        let cell = std::thread::spawn(move || {
            let (outcome, outputs) = run(&mut s, &cell);
            (s, outcome, outputs)
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(!cell.is_finished(), "the cell ended before it listened");
            assert!(Instant::now() < deadline, "nothing listens on port {port}");
            std::thread::sleep(Duration::from_millis(5));
        }
        Listening {
            port,
            interrupter,
            cell,
        }
    }

    /// Be the browser: GET a path on the redirect URI's port; status and body.
    pub(crate) fn browse(&self, path: &str) -> (u16, String) {
        let (status, _, body) = self.browse_with_headers(path);
        (status, body)
    }

    /// Be the browser: GET a path on the port; status, header lines and body.
    pub(crate) fn browse_with_headers(&self, path: &str) -> (u16, String, String) {
        browse_on(self.port, path)
    }
}

/// Be the browser: GET a path on a local port; status, header lines and body.
pub(crate) fn browse_on(port: u16, path: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .expect("the page arrives");
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    (status, head.to_string(), body.to_string())
}

impl Listening {
    /// Wait for the cell to end.
    pub(crate) fn finish(self) -> (Session, Outcome, Vec<Output>) {
        self.cell.join().expect("the cell does not panic")
    }
}

#[test]
fn the_redirect_with_code_and_state_binds_the_code() {
    let (s, port) = session_redirecting_to_a_free_port();
    let listening = Listening::start(s, port);
    let (status, page) = listening.browse(&format!("/cb?code=abc&state={STATE}"));
    assert_eq!(status, 200);
    assert!(page.contains("You can close this tab"), "{page}");
    assert!(
        page.contains("Go back to smartnb (your terminal or notebook)"),
        "{page}"
    );

    let (s, outcome, out) = listening.finish();
    assert_eq!(outcome, Outcome::Ok, "{out:#?}");
    assert_eq!(var(&s, "code"), "abc");
    assert_eq!(var(&s, "state"), STATE);
    let said = texts(&out);
    assert!(said
        .iter()
        .any(|t| t.starts_with("Continue to authorization:")));
    assert!(said.iter().any(|t| t.contains("Waiting up to 20 s")));
    assert!(said.iter().any(|t| t.contains("Bound $code")));
}

#[test]
fn other_paths_get_a_404_and_the_wait_goes_on() {
    let (s, port) = session_redirecting_to_a_free_port();
    let listening = Listening::start(s, port);
    let (status, _) = listening.browse("/favicon.ico");
    assert_eq!(status, 404);
    let (status, _) = listening.browse(&format!("/cb?code=xyz&state={STATE}"));
    assert_eq!(status, 200);
    let (s, outcome, _) = listening.finish();
    assert_eq!(outcome, Outcome::Ok);
    assert_eq!(var(&s, "code"), "xyz");
}

#[test]
fn a_wrong_state_is_refused_in_the_browser_and_the_cell() {
    let (s, port) = session_redirecting_to_a_free_port();
    let listening = Listening::start(s, port);
    let (status, page) = listening.browse("/cb?code=abc&state=forged");
    assert_eq!(status, 400);
    assert!(page.contains("State mismatch"), "{page}");

    let (s, outcome, out) = listening.finish();
    assert_eq!(outcome, Outcome::Failed);
    let error = errors(&out)[0];
    assert_eq!(error.kind, "StateMismatch");
    assert!(error.message.contains("forged") && error.message.contains(STATE));
    assert!(!bound(&s, "code"), "a forged code is never bound");
}

#[test]
fn an_error_redirect_is_an_authorize_error() {
    let (s, port) = session_redirecting_to_a_free_port();
    let listening = Listening::start(s, port);
    let (status, _) = listening.browse(&format!(
        "/cb?error=access_denied&error_description=the+participant+said+no&state={STATE}"
    ));
    assert_eq!(status, 200);

    let (s, outcome, out) = listening.finish();
    assert_eq!(outcome, Outcome::Failed);
    let error = errors(&out)[0];
    assert_eq!(error.kind, "AuthorizeError");
    assert!(error.message.contains("access_denied"), "{error}");
    assert!(error.message.contains("the participant said no"), "{error}");
    assert!(!bound(&s, "code"));
}

#[test]
fn an_interrupt_stops_the_wait_promptly_and_frees_the_port() {
    let (s, port) = session_redirecting_to_a_free_port();
    let listening = Listening::start(s, port);
    let asked = Instant::now();
    listening.interrupter.interrupt();
    let (s, outcome, out) = listening.finish();
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(outcome, Outcome::Failed);
    assert_eq!(errors(&out)[0].kind, "Interrupted");
    assert!(!bound(&s, "code"));
    assert!(!var(&s, "client_id").is_empty());

    // The port is given back (tiny_http closes it on its own thread, just after the cell
    // ends), and listening a second time works.
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpListener::bind(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "port {port} stays taken");
        std::thread::sleep(Duration::from_millis(5));
    }
    let listening = Listening::start(s, port);
    let (status, _) = listening.browse(&format!("/cb?code=again&state={STATE}"));
    assert_eq!(status, 200);
    let (s, outcome, _) = listening.finish();
    assert_eq!(outcome, Outcome::Ok);
    assert_eq!(var(&s, "code"), "again");
}

#[test]
fn no_browser_within_the_timeout_is_a_timeout_error() {
    let (mut s, _) = session_redirecting_to_a_free_port();
    let error = fails(&mut s, "authorize --listen --timeout 1");
    assert_eq!(error.kind, "Timeout");
    assert!(error.hint.unwrap().contains("--timeout"));
}

#[test]
fn a_redirect_uri_that_is_not_local_cannot_be_listened_on() {
    let mut s = session();
    register_with(&mut s, "http://not-a-real-site");
    let started = Instant::now();
    let error = fails(&mut s, "authorize --listen --timeout 20");
    assert_eq!(error.kind, "CannotListen");
    assert!(error.message.contains("http://not-a-real-site"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(5), "fails at once");
}

#[test]
fn a_port_in_use_cannot_be_listened_on() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let mut s = session();
    register_with(&mut s, &format!("http://localhost:{port}/cb"));
    let error = fails(&mut s, "authorize --listen --timeout 20");
    assert_eq!(error.kind, "CannotListen");
    assert!(error.message.contains(&port.to_string()), "{error}");
}
