//! Bad input and failing requests: each is an error output that names the problem and the
//! fix, never a panic, and the session keeps every variable it had.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use crate::session_support::*;
use smartnb::session::{Outcome, Output, Session};

/// A session with a registered client and a token.
fn ready() -> Session {
    let mut s = session();
    register(&mut s);
    ok(&mut s, "token");
    s
}

/// The cell fails with `kind`, its hint mentions `hint`, and no variable changed.
fn refused(s: &mut Session, cell: &str, kind: &str, hint: &str) {
    let before = s.vars().clone();
    let error = fails(s, cell);
    assert_eq!(error.kind, kind, "`{cell}`: {error}");
    let said = error.hint.clone().unwrap_or_default();
    assert!(
        said.contains(hint),
        "`{cell}`: hint {said:?} lacks {hint:?}"
    );
    assert!(
        *s.vars() == before,
        "`{cell}` changed the variables: {:?}",
        s.vars()
    );
    assert!(listed_vars(s).contains(&"client_id".to_string()));
}

#[test]
fn unknown_commands_suggest_the_nearest() {
    let mut s = ready();
    refused(&mut s, "%regster", "UnknownCommand", "`register`");
    refused(
        &mut s,
        "%xyzzy",
        "UnknownCommand",
        "`help` lists every command",
    );
    refused(&mut s, "help regster", "UnknownCommand", "`register`");
    // Without the %, a word that is no helper makes the cell Rust. It fails as Rust (in a
    // test binary evcxr cannot even start: it needs its runtime hook in smartnb's own main),
    // and the error still points at the helper command.
    let error = fails(&mut s, "regster");
    assert!(
        ["CompilationError", "RustUnavailable"].contains(&error.kind.as_str()),
        "{error}"
    );
    assert!(error.hint.unwrap_or_default().contains("`register`"));
}

#[test]
fn bad_flags_and_arguments_say_the_usage() {
    let mut s = ready();
    refused(
        &mut s,
        "register --nmae x",
        "UnknownFlag",
        "did you mean --name?",
    );
    refused(
        &mut s,
        "fetch Patient/x --no-uath",
        "UnknownFlag",
        "--no-auth",
    );
    refused(&mut s, "fetch", "MissingArgument", "usage: fetch PATH");
    refused(
        &mut s,
        "set only_a_name",
        "MissingArgument",
        "set NAME VALUE",
    );
    refused(&mut s, "register --name", "MissingValue", "usage: register");
    refused(
        &mut s,
        "register --public=yes",
        "BadFlag",
        "usage: register",
    );
    refused(
        &mut s,
        "introspect a b",
        "UnexpectedArgument",
        "quote values",
    );
    refused(&mut s, "token --lifetime soon", "BadValue", "3h");
    refused(&mut s, "set 1abc x", "BadName", "letters, digits");
    refused(&mut s, "http POST /x --json '{nope'", "BadValue", "--json");
}

#[test]
fn unreadable_cells_are_parse_errors() {
    let mut s = ready();
    refused(
        &mut s,
        "register --name \"Fake Research",
        "ParseError",
        "close the \" quote",
    );
    refused(&mut s, "set a 'half", "ParseError", "close the ' quote");
    refused(&mut s, "set a b \\", "ParseError", "backslash");
    refused(&mut s, "set a ${client_id", "ParseError", "letters, digits");
}

#[test]
fn undefined_variables_name_the_fix() {
    let mut s = ready();
    refused(
        &mut s,
        "fetch Patient/$nope",
        "UndefinedVariable",
        "set nope",
    );
    ok(&mut s, "http GET /api/fhir/metadata");
    refused(
        &mut s,
        "set x $response.nope",
        "UndefinedVariable",
        "resourceType",
    );

    let mut fresh = session();
    let error = fails(&mut fresh, "exchange $code");
    assert_eq!(error.kind, "UndefinedVariable");
    assert!(error.hint.unwrap().contains("authorize --as"));
    let error = fails(&mut fresh, "token");
    assert_eq!(error.kind, "UndefinedVariable");
    assert!(error.message.contains("$client_id"), "{error}");
}

#[test]
fn an_unreachable_server_is_an_http_error() {
    let mut s = ready();
    refused(
        &mut s,
        "http GET http://127.0.0.1:1/",
        "HttpError",
        "check that the server is running",
    );
    refused(
        &mut s,
        "http GET not-a-url",
        "HttpError",
        "absolute http://",
    );
    refused(
        &mut s,
        "fetch http://127.0.0.1:1/Patient/x --no-auth",
        "HttpError",
        "`connect` shows the target",
    );
}

#[test]
fn a_page_that_is_not_json_shows_as_text() {
    let mut s = ready();
    let out = ok(&mut s, "http GET /login");
    assert_eq!(statuses(&out), [200]);
    assert!(jsons(&out).is_empty());
    let page = out.iter().find_map(|o| match o {
        Output::Text(t) => Some(t.clone()),
        _ => None,
    });
    let page = page.expect("the page shows as text");
    assert!(page.contains("<form"), "{page}");
    assert_eq!(
        s.vars().get("response").and_then(|r| r.as_str()),
        Some(page.as_str())
    );
    assert!(bound(&s, "client_id"));
}

#[test]
fn a_4xx_shows_the_reply_and_then_the_error() {
    let mut s = ready();
    let access = var(&s, "access_token");
    let (outcome, out) = run(&mut s, "token --user nobody");
    assert_eq!(outcome, Outcome::Failed);
    assert!(
        matches!(
            out.as_slice(),
            [Output::Status(400), Output::Json(_), Output::Error(_)]
        ),
        "{out:#?}"
    );
    let error = errors(&out)[0];
    assert_eq!(error.kind, "HttpError");
    assert!(error.message.contains("HTTP 400"), "{error}");
    assert!(error.hint.as_ref().unwrap().contains("daniel-adams"));
    assert_eq!(var(&s, "status"), "400");
    assert_eq!(var(&s, "access_token"), access, "the old token stays bound");
    assert!(listed_vars(&mut s).contains(&"client_id".to_string()));
}

#[test]
fn a_cell_stops_at_its_first_failure() {
    let mut s = ready();
    let (outcome, out) = run(&mut s, "set before 1\nfetch\nset after 2");
    assert_eq!(outcome, Outcome::Failed);
    assert_eq!(errors(&out).len(), 1);
    assert_eq!(var(&s, "before"), "1");
    assert!(!bound(&s, "after"), "the command after the failure ran");

    let (outcome, out) = run(&mut s, "token --user nobody\nset after 2\nregister");
    assert_eq!(outcome, Outcome::Failed);
    assert_eq!(statuses(&out), [400], "register after the failure ran");
    assert!(!bound(&s, "after"));
}

#[cfg(not(feature = "rust"))]
#[test]
fn rust_cells_are_unavailable_in_this_build() {
    let mut s = ready();
    refused(&mut s, "let x = 1;", "RustUnavailable", "help");
    refused(&mut s, "token = 3;", "RustUnavailable", "help");
}

#[test]
fn empty_and_comment_only_cells_do_nothing() {
    let mut s = ready();
    let before = s.vars().clone();
    for cell in ["", "   \n\n", "# just a note\n  # another"] {
        assert!(ok(&mut s, cell).is_empty(), "{cell:?}");
    }
    assert!(*s.vars() == before);
}

#[test]
fn interrupting_a_request_that_never_answers() {
    let mut s = ready();
    let before = s.vars().clone();
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    silent.set_nonblocking(true).unwrap();
    let port = silent.local_addr().unwrap().port();
    let interrupter = s.interrupter();
    let cell = std::thread::spawn(move || {
        let (outcome, out) = run(&mut s, &format!("http GET http://127.0.0.1:{port}/"));
        (s, outcome, out)
    });

    // Accept the connection and never answer.
    let deadline = Instant::now() + Duration::from_secs(10);
    let _connection = loop {
        match silent.accept() {
            Ok((stream, _)) => break stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(!cell.is_finished(), "the request ended before connecting");
                assert!(Instant::now() < deadline, "the request never connected");
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    let asked = Instant::now();
    interrupter.interrupt();
    let (mut s, outcome, out) = cell.join().unwrap();
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(outcome, Outcome::Failed);
    assert_eq!(errors(&out)[0].kind, "Interrupted");
    assert!(*s.vars() == before, "an interrupted request binds nothing");
    assert_eq!(statuses(&ok(&mut s, "fetch Patient/smart-1288992")), [200]);
}

#[test]
fn an_interrupt_between_cells_does_not_cancel_the_next_one() {
    let mut s = ready();
    s.interrupter().interrupt();
    assert_eq!(statuses(&ok(&mut s, "fetch Patient/smart-1288992")), [200]);
}
