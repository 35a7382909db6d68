//! `simulate` against the embedded server: faults set, listed and cleared; the `simulated:`
//! line beneath a faulted fetch, exchange, refresh and `authorize --as`; the server's 400s
//! shown with a hint; the session's fault names the server's own.

use smartnb::render::jupyter::to_nbformat;
use smartnb::session::{Outcome, Output, Session, Table};

use crate::session_support::*;

/// The `simulated:` lines, in order.
fn simulated(outputs: &[Output]) -> Vec<String> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Simulated(s) => Some(s.to_string()),
            _ => None,
        })
        .collect()
}

/// The one table a cell showed.
fn the_table(outputs: &[Output]) -> &Table {
    let found = tables(outputs);
    assert_eq!(found.len(), 1, "{outputs:#?}");
    found[0]
}

/// A cell that fails; its outputs, the error last and the `simulated:` line just above it.
fn fails_simulated(s: &mut Session, cell: &str, line: &str) -> Vec<Output> {
    let (outcome, out) = run(s, cell);
    assert_eq!(outcome, Outcome::Failed, "`{cell}`: {out:#?}");
    let n = out.len();
    assert!(n >= 2, "`{cell}`: {out:#?}");
    assert!(
        matches!(&out[n - 1], Output::Error(_)),
        "`{cell}`: {out:#?}"
    );
    assert!(
        matches!(&out[n - 2], Output::Simulated(x) if x.to_string() == line),
        "`{cell}` should show {line:?} above its error: {out:#?}"
    );
    out
}

/// A session whose client was approved by daniel-adams: a code in `$code`.
fn approved() -> Session {
    let mut s = session();
    register(&mut s);
    ok(&mut s, "authorize --as daniel-adams:demo-password");
    s
}

#[test]
fn the_sessions_fault_names_are_the_servers() {
    let session: Vec<&str> = smartnb::session::faults::names().collect();
    assert_eq!(session, smartnb::server::simulate::FAULT_NAMES);
    assert_eq!(
        smartnb::client::SIMULATED,
        smartnb::server::simulate::HEADER.as_str()
    );
}

#[test]
fn faults_are_set_listed_and_cleared() {
    let mut s = session();
    register(&mut s);
    let client_id = var(&s, "client_id");
    let out = ok(&mut s, "simulate fhir_expired_token --times 2");
    assert_eq!(statuses(&out), [200]);
    assert_eq!(
        the_table(&out).rows,
        [["fhir_expired_token", "2 of 2", "fhir", ""]]
    );
    assert!(
        notes(&out)[0].starts_with(&format!(
            "Queued fhir_expired_token for client {client_id}: its next 2 FHIR requests get 401"
        )),
        "{out:#?}"
    );
    let out = ok(&mut s, "simulate slow --delay 1.5s --at token --times 0");
    let table = the_table(&out);
    assert_eq!(table.rows[1], ["slow", "until cleared", "token", "1.5s"]);
    assert_eq!(
        table.json.as_ref().unwrap()["faults"][1]["delay_ms"],
        1500,
        "the table carries the server's JSON"
    );
    let out = ok(&mut s, "simulate");
    assert_eq!(the_table(&out).rows.len(), 2);
    assert_eq!(
        the_table(&out).rows[0],
        ["fhir_expired_token", "2 of 2", "fhir", ""]
    );
    let out = ok(&mut s, "simulate clear");
    assert_eq!(the_json(&out)["cleared"], 2);
    assert_eq!(
        texts(&out),
        [format!(
            "Cleared 2 queued faults of client {client_id}: its requests get real answers again."
        )]
    );
    let out = ok(&mut s, "simulate");
    assert!(tables(&out).is_empty());
    assert!(
        texts(&out)[0].starts_with("No faults are queued"),
        "{out:#?}"
    );
    // Another client by --client: this session's own is left alone.
    let other = var(&s, "client_id");
    register(&mut s);
    ok(&mut s, &format!("simulate fhir_throttled --client {other}"));
    let out = ok(&mut s, "simulate");
    assert!(
        texts(&out)[0].starts_with("No faults are queued"),
        "{out:#?}"
    );
    let out = ok(&mut s, &format!("simulate --client {other}"));
    assert_eq!(the_table(&out).rows[0][0], "fhir_throttled");
}

#[test]
fn a_faulted_fetch_says_so_beneath_it() {
    let mut s = session();
    register(&mut s);
    ok(&mut s, "token");
    ok(&mut s, "simulate fhir_expired_token --times 2");
    let fetch = format!("fetch Patient/{SEED_PATIENT}");
    let out = ok(&mut s, &fetch);
    assert_eq!(statuses(&out), [401]);
    assert_eq!(simulated(&out), ["simulated: fhir_expired_token (1 more)"]);
    assert!(matches!(out.last(), Some(Output::Simulated(_))), "{out:#?}");
    let out = ok(&mut s, &fetch);
    assert_eq!(
        simulated(&out),
        ["simulated: fhir_expired_token (last one)"]
    );
    let out = ok(&mut s, &fetch);
    assert_eq!(statuses(&out), [200]);
    assert!(simulated(&out).is_empty(), "{out:#?}");

    // In Jupyter the line is its own display_data, text and HTML.
    ok(&mut s, "simulate fhir_throttled --times 0");
    let out = ok(
        &mut s,
        &format!("http GET /api/fhir/Patient/{SEED_PATIENT} --bearer $access_token --include"),
    );
    assert_eq!(statuses(&out), [429]);
    let headers = texts(&out).join("\n");
    assert!(headers.contains("Retry-After: 2"), "{headers}");
    assert!(
        headers.contains("Smartnb-Simulated: fhir_throttled; remaining=until-cleared"),
        "{headers}"
    );
    let stored = to_nbformat(out.last().unwrap());
    let [last] = &stored[..] else {
        panic!("one output for the simulated line: {stored:?}")
    };
    assert_eq!(last["output_type"], "display_data");
    assert_eq!(
        last["data"]["text/plain"],
        "simulated: fhir_throttled (until cleared)"
    );
    assert!(last["data"]["text/html"]
        .as_str()
        .unwrap()
        .contains("<code>fhir_throttled</code> (until cleared)"));
}

#[test]
fn a_faulted_exchange_and_refresh_say_so_above_their_error() {
    let mut s = approved();
    ok(&mut s, "simulate token_invalid_grant");
    let out = fails_simulated(
        &mut s,
        "exchange",
        "simulated: token_invalid_grant (last one)",
    );
    assert_eq!(statuses(&out), [400]);
    assert_eq!(the_json(&out)["error"], "invalid_grant");
    // The code was not spent: the same exchange now succeeds, and says nothing.
    let out = ok(&mut s, "exchange");
    assert!(simulated(&out).is_empty(), "{out:#?}");

    ok(&mut s, "simulate token_unavailable --times 0");
    let out = fails_simulated(
        &mut s,
        "refresh",
        "simulated: token_unavailable (until cleared)",
    );
    assert_eq!(statuses(&out), [503]);
    ok(&mut s, "simulate clear");
    let out = ok(&mut s, "refresh");
    assert_eq!(statuses(&out), [200]);
    assert!(simulated(&out).is_empty());
}

#[test]
fn authorize_as_shows_the_line_for_the_pages_it_drives() {
    let mut s = session();
    register(&mut s);
    ok(&mut s, "simulate authorize_access_denied");
    let out = fails_simulated(
        &mut s,
        "authorize --as daniel-adams:demo-password",
        "simulated: authorize_access_denied (last one)",
    );
    let error = errors(&out)[0];
    assert!(error.message.contains("access_denied"), "{error}");
    ok(&mut s, "simulate authorize_invalid_client");
    let out = fails_simulated(
        &mut s,
        "authorize --as daniel-adams:demo-password",
        "simulated: authorize_invalid_client (last one)",
    );
    assert!(
        errors(&out)[0].message.contains("HTTP 400"),
        "{:?}",
        errors(&out)
    );
    // Nothing left: the next one signs in and approves.
    let out = ok(&mut s, "authorize --as daniel-adams:demo-password");
    assert!(simulated(&out).is_empty());
    assert!(bound(&s, "code"));
}

#[test]
fn the_servers_refusals_are_shown_with_a_hint() {
    let mut s = session();
    register(&mut s);
    let (_, out) = run(&mut s, "simulate fhir_expired");
    assert_eq!(statuses(&out), [400]);
    assert_eq!(the_json(&out)["error"], "unknown_fault");
    let error = fails(&mut s, "simulate fhir_expired");
    assert_eq!(error.kind, "HttpError");
    assert!(error.message.contains("HTTP 400: unknown_fault"), "{error}");
    assert!(
        error.message.contains("fhir_expired_token"),
        "the server names the faults: {error}"
    );
    assert!(
        error
            .hint
            .unwrap_or_default()
            .starts_with("did you mean fhir_expired_token?"),
        "did you mean"
    );

    let error = fails(&mut s, "simulate fhir_throttled --client nobody");
    assert!(error.message.contains("no_client"), "{error}");
    assert!(error.hint.unwrap_or_default().contains("register"));

    let error = fails(&mut s, "simulate fhir_throttled --delay 2s");
    assert!(error.message.contains("invalid_request"), "{error}");
    assert!(error.hint.unwrap_or_default().contains("only with slow"));

    // A fault that can never apply to this client is refused, with the server's reason.
    let error = fails(&mut s, "simulate token_replayed_jti");
    assert!(error.message.contains("client assertion"), "{error}");
}
