//! Shared helpers for the session tests: a session on an ephemeral port, cells run with
//! their outcome, and small lookups over the structured outputs they emit.
#![allow(dead_code)] // each test file uses its own share of these

use serde_json::Value;
use smartnb::server::Config;
use smartnb::session::{Collect, CommandError, Outcome, Output, Session, SessionOptions, Table};

/// The seed walkthrough's patient, owned by daniel-adams.
pub const SEED_PATIENT: &str = "smart-1288992";

/// A session whose embedded server starts on a free port, so tests run in parallel.
pub fn session() -> Session {
    Session::new(SessionOptions {
        server: Config {
            port: 0,
            ..Default::default()
        },
        ..Default::default()
    })
    .expect("the session starts")
}

/// Run a cell; its outcome and everything it emitted.
pub fn run(session: &mut Session, cell: &str) -> (Outcome, Vec<Output>) {
    let mut sink = Collect::default();
    let outcome = session.execute(cell, &mut sink);
    (outcome, sink.0)
}

/// Run a cell that must succeed without emitting an error; its outputs.
pub fn ok(session: &mut Session, cell: &str) -> Vec<Output> {
    let (outcome, outputs) = run(session, cell);
    assert_eq!(outcome, Outcome::Ok, "`{cell}` failed: {outputs:#?}");
    assert!(
        errors(&outputs).is_empty(),
        "`{cell}` emitted errors: {outputs:#?}"
    );
    outputs
}

/// Run a cell that must fail; its one error (always the last output).
pub fn fails(session: &mut Session, cell: &str) -> CommandError {
    let (outcome, outputs) = run(session, cell);
    assert_eq!(outcome, Outcome::Failed, "`{cell}` succeeded: {outputs:#?}");
    let found = errors(&outputs);
    assert_eq!(
        found.len(),
        1,
        "`{cell}` should emit one error: {outputs:#?}"
    );
    assert!(
        matches!(outputs.last(), Some(Output::Error(_))),
        "`{cell}`: the error should come last: {outputs:#?}"
    );
    found[0].clone()
}

/// A variable as text; panics when it is not bound.
pub fn var(session: &Session, name: &str) -> String {
    session
        .vars()
        .text(name)
        .unwrap_or_else(|| panic!("${name} is not bound"))
}

/// Whether a variable is bound.
pub fn bound(session: &Session, name: &str) -> bool {
    session.vars().get(name).is_some()
}

/// The status lines, in order.
pub fn statuses(outputs: &[Output]) -> Vec<u16> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Status(s) => Some(*s),
            _ => None,
        })
        .collect()
}

/// The JSON documents, in order.
pub fn jsons(outputs: &[Output]) -> Vec<&Value> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Json(v) => Some(v),
            _ => None,
        })
        .collect()
}

/// The one JSON document a cell emitted.
pub fn the_json(outputs: &[Output]) -> &Value {
    let found = jsons(outputs);
    assert_eq!(found.len(), 1, "expected one JSON output: {outputs:#?}");
    found[0]
}

/// The tables, in order.
pub fn tables(outputs: &[Output]) -> Vec<&Table> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Table(t) => Some(t),
            _ => None,
        })
        .collect()
}

/// The errors, in order.
pub fn errors(outputs: &[Output]) -> Vec<&CommandError> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Error(e) => Some(e),
            _ => None,
        })
        .collect()
}

/// Text, notes and link labels, in order (what a person reads besides JSON and tables).
pub fn texts(outputs: &[Output]) -> Vec<String> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Text(t) | Output::Note(t) => Some(t.clone()),
            Output::Link { label, url } => Some(format!("{label} {url}")),
            _ => None,
        })
        .collect()
}

/// The notes, in order.
pub fn notes(outputs: &[Output]) -> Vec<&str> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Note(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

/// A two-column field/value table as lookups: the value of one field.
pub fn field<'t>(table: &'t Table, name: &str) -> Option<&'t str> {
    table
        .rows
        .iter()
        .find(|row| row.first().map(String::as_str) == Some(name))
        .and_then(|row| row.get(1))
        .map(String::as_str)
}

/// The names listed by `vars`.
pub fn listed_vars(session: &mut Session) -> Vec<String> {
    let outputs = ok(session, "vars");
    let table = tables(&outputs)
        .first()
        .copied()
        .cloned()
        .expect("`vars` shows a table");
    table.rows.into_iter().map(|row| row[0].clone()).collect()
}

/// Register the seed's client, asserting the 201.
pub fn register(session: &mut Session) -> Vec<Output> {
    let outputs = ok(session, "register");
    assert_eq!(statuses(&outputs), [201]);
    outputs
}

/// Register a client for the OAuth part of the walkthrough (cell [9]).
pub fn register_fake_app(s: &mut Session) -> Value {
    let out = ok(
        s,
        r#"register --name "Fake Research Application" --redirect-uri http://not-a-real-site"#,
    );
    assert_eq!(statuses(&out), [201]);
    the_json(&out).clone()
}

/// The query parameters of the authorize link a cell showed.
pub fn link_params(outputs: &[Output]) -> Vec<(String, String)> {
    let url = outputs
        .iter()
        .find_map(|o| match o {
            Output::Link { label, url } => {
                assert_eq!(label, "Continue to authorization:");
                Some(url.clone())
            }
            _ => None,
        })
        .expect("authorize shows the link");
    url::Url::parse(&url)
        .expect("the link is a URL")
        .query_pairs()
        .into_owned()
        .collect()
}

/// One query parameter of a link.
pub fn param<'p>(params: &'p [(String, String)], name: &str) -> Option<&'p str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}
