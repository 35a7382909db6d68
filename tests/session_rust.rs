//! Rust cells through the session's worker process (the real smartnb binary runs evcxr):
//! streams, values, rich output, compile errors, variables, helper variables, evcxr's own
//! commands, and an interrupt that the next cell survives. Slow (seconds per cell), so one
//! session does it all.
#![cfg(feature = "rust")]

mod session_support;

use std::time::Duration;

use session_support::{fails, ok, run, var, SEED_PATIENT};
use smartnb::server::Config;
use smartnb::session::{Outcome, Output, RustStart, Session, SessionOptions};

fn text_of(outputs: &[Output], pick: fn(&Output) -> Option<&str>) -> String {
    outputs.iter().filter_map(pick).collect()
}

fn stdout(outputs: &[Output]) -> String {
    text_of(outputs, |o| match o {
        Output::Stdout(text) => Some(text),
        _ => None,
    })
}

fn stderr(outputs: &[Output]) -> String {
    text_of(outputs, |o| match o {
        Output::Stderr(text) => Some(text),
        _ => None,
    })
}

/// A session on its own embedded server (a free port) whose Rust worker starts as `rust` says.
fn rust_session(rust: RustStart) -> Session {
    Session::new(SessionOptions {
        server: Config {
            port: 0,
            ..Default::default()
        },
        rust,
        rust_program: Some(env!("CARGO_BIN_EXE_smartnb").into()),
    })
    .expect("the session starts")
}

#[test]
fn rust_cells_in_a_session() {
    let mut session = rust_session(RustStart::Background);

    let first = ok(&mut session, "println!(\"hello, world\");");
    assert_eq!(stdout(&first), "hello, world\n", "{first:#?}");

    let err = ok(&mut session, "eprintln!(\"to stderr\");");
    assert!(stderr(&err).contains("to stderr\n"), "{err:#?}");

    let value = ok(&mut session, "6 * 7");
    assert!(
        value.iter().any(|o| matches!(o, Output::Value(bundle)
            if bundle.get("text/plain").and_then(|v| v.as_str()) == Some("42"))),
        "a trailing expression is the cell's value: {value:#?}"
    );

    let rich = ok(
        &mut session,
        "println!(\"EVCXR_BEGIN_CONTENT text/html\\n<b>bold</b>\\nEVCXR_END_CONTENT\");",
    );
    assert!(
        rich.iter().any(|o| matches!(o, Output::Rich(bundle)
            if bundle.get("text/html").and_then(|v| v.as_str()).is_some_and(|h| h.contains("<b>bold</b>")))),
        "evcxr's MIME content is displayed: {rich:#?}"
    );

    let compile = fails(&mut session, "let n: u8 = \"not a number\";");
    assert_eq!(compile.kind, "CompilationError");
    let detail = compile.detail.expect("rustc's report");
    assert!(detail.contains("error[E0308]"), "{detail}");
    assert!(detail.contains("--> cell:1:13"), "{detail}");
    assert!(
        detail.contains("1 | let n: u8 = \"not a number\";"),
        "{detail}"
    );

    ok(&mut session, "let kept = 41;");
    let kept = ok(&mut session, "println!(\"kept+1={}\", kept + 1);");
    assert_eq!(stdout(&kept), "kept+1=42\n");
    // These cells needed no serde_json, so it was added after them (by a cell that uses
    // it, or while the evaluator idled): their variables outlive that.
    let json = ok(
        &mut session,
        "println!(\"{}\", serde_json::json!({\"kept\": kept}));",
    );
    assert_eq!(stdout(&json), "{\"kept\":41}\n");

    ok(&mut session, "register");
    ok(&mut session, "token");
    let token = var(&session, "access_token");
    let seen = ok(&mut session, "println!(\"{}\", access_token);");
    assert_eq!(
        stdout(&seen),
        format!("{token}\n"),
        "helper variables are Strings in Rust"
    );
    // A compile error in a later line is reported against the cell's own line numbers,
    // not those of the copied helper variables that ride along.
    ok(&mut session, "token");
    let late = fails(&mut session, "let fine = 1;\nlet n: u8 = access_token;");
    let detail = late.detail.expect("rustc's report");
    assert!(detail.contains("--> cell:2:13"), "{detail}");
    ok(&mut session, "token");
    assert_ne!(var(&session, "access_token"), token);
    let refreshed = ok(&mut session, "println!(\"{}\", access_token);");
    assert_eq!(
        stdout(&refreshed),
        format!("{}\n", var(&session, "access_token"))
    );

    // Cells that only read a helper variable got their copy in a block of their own, so
    // evcxr kept no variable for it; one that declares something keeps the copy.
    let vars = ok(&mut session, ":vars");
    let listed = format!("{vars:?}");
    assert!(
        listed.contains("kept") && !listed.contains("access_token"),
        "{vars:#?}"
    );
    ok(&mut session, "let token_length = access_token.len();");
    let vars = ok(&mut session, ":vars");
    let listed = format!("{vars:?}");
    assert!(
        listed.contains("token_length") && listed.contains("access_token"),
        "{vars:#?}"
    );

    let interrupter = session.interrupter();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(3));
        interrupter.interrupt();
    });
    let (outcome, outputs) = run(
        &mut session,
        "println!(\"looping\"); loop { std::thread::sleep(std::time::Duration::from_millis(10)); }",
    );
    stopper.join().unwrap();
    assert_eq!(outcome, Outcome::Failed);
    assert!(
        stdout(&outputs).contains("looping"),
        "streamed before the interrupt: {outputs:#?}"
    );
    let Some(Output::Error(stopped)) = outputs.last() else {
        panic!("an interrupt ends with an error: {outputs:#?}");
    };
    assert_eq!(stopped.kind, "Interrupted");
    assert!(stopped.message.contains("Rust variables"), "{stopped:?}");

    // The next cell works, the helper variables came back in, the Rust ones are gone.
    let after = ok(&mut session, "println!(\"{}\", access_token.len());");
    assert_eq!(
        stdout(&after),
        format!("{}\n", var(&session, "access_token").len())
    );
    let gone = fails(&mut session, "kept");
    assert_eq!(gone.kind, "CompilationError", "{gone:?}");
    // A lost Rust value is never taken for a misspelt helper command (`s`, `sets` ~ `set`);
    // a one-word near miss of a long helper name is pointed at it.
    for lost in ["s", "sets"] {
        let gone = fails(&mut session, lost);
        assert_eq!(gone.kind, "CompilationError", "{gone:?}");
        assert!(!gone.hint.unwrap_or_default().contains("did you mean"));
    }
    let typo = fails(&mut session, "regster");
    assert!(typo.hint.unwrap_or_default().contains("`register`"));
}

/// Records outputs and passing statuses apart.
#[derive(Default)]
struct Watch {
    outputs: Vec<Output>,
    statuses: Vec<Option<String>>,
}

impl smartnb::session::Frontend for Watch {
    fn emit(&mut self, output: Output) {
        self.outputs.push(output);
    }
    fn progress(&mut self, note: Option<&str>) {
        self.statuses.push(note.map(str::to_string));
    }
}

#[test]
fn the_evaluator_starting_is_a_passing_status_not_stderr() {
    // Started by the first Rust cell, so that cell always waits for it.
    let mut session = rust_session(RustStart::OnFirstUse);
    let mut watch = Watch::default();
    let outcome = session.execute("println!(\"ready\");", &mut watch);
    assert_eq!(outcome, Outcome::Ok, "{:#?}", watch.outputs);
    assert_eq!(
        watch.statuses,
        [Some("starting the Rust evaluator…".to_string()), None],
        "shown, then taken back"
    );
    assert_eq!(stderr(&watch.outputs), "", "{:#?}", watch.outputs);
    assert_eq!(stdout(&watch.outputs), "ready\n");
}

#[test]
fn typed_helper_variables_and_helper_calls_from_rust() {
    let mut session = rust_session(RustStart::OnFirstUse);
    ok(&mut session, "register");
    ok(&mut session, &format!("token --patient {SEED_PATIENT}"));
    ok(&mut session, &format!("fetch Patient/{SEED_PATIENT}"));
    assert!(
        session.rust_worker().is_none(),
        "helper cells never start the Rust worker"
    );

    // response is serde_json::Value, status u16, tokens String: this compiles only so.
    let typed = ok(
        &mut session,
        "{\nlet code: u16 = status;\nlet kind: &serde_json::Value = &response[\"resourceType\"];\nlet token: &String = &access_token;\nprintln!(\"{} {} {} {}\", code, kind.as_str().unwrap(), response[\"id\"], token.len());\n}",
    );
    let token = var(&session, "access_token");
    assert_eq!(
        stdout(&typed),
        format!("200 Patient \"{SEED_PATIENT}\" {}\n", token.len()),
        "{typed:#?}"
    );
    assert!(session.rust_worker().is_some(), "the worker runs now");

    // A helper command from Rust: its JSON comes back, and it binds helper variables.
    let called = ok(
        &mut session,
        "let bundle = smart(\"fetch Observation?patient=smart-1288992&code=8867-4\").unwrap();\nprintln!(\"{} {}\", bundle[\"resourceType\"].as_str().unwrap(), bundle[\"entry\"].as_array().map_or(0, |e| e.len()) > 0);",
    );
    assert_eq!(stdout(&called), "Bundle true\n", "{called:#?}");
    let bound = session.vars().get("response").expect("response is bound");
    assert_eq!(bound["resourceType"], "Bundle", "smart bound $response");

    // A failing helper command is an Err with the helper's message; a non-command too.
    let failed = ok(
        &mut session,
        "match smart(\"fetch Patient/no-such-patient\") { Ok(v) => println!(\"ok {}\", v), Err(e) => println!(\"{} | {}\", e.kind, e.message) }\nmatch smart(\"regster\") { Ok(_) => println!(\"ok\"), Err(e) => println!(\"{} | {:?}\", e.kind, e.hint) }",
    );
    let printed = stdout(&failed);
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 2, "{failed:#?}");
    assert!(lines[0].starts_with("HttpError | "), "{}", lines[0]);
    assert!(lines[0].contains("404"), "{}", lines[0]);
    assert!(lines[1].starts_with("NotAHelper | "), "{}", lines[1]);
    assert!(lines[1].contains("register"), "did you mean: {}", lines[1]);

    // A Rust variable of a helper variable's name is replaced only with a note saying so.
    ok(&mut session, "let status = \"mine\";");
    ok(&mut session, &format!("fetch Patient/{SEED_PATIENT}"));
    let refreshed = ok(
        &mut session,
        "let next = status + 1;\nprintln!(\"{}\", next);",
    );
    assert_eq!(stdout(&refreshed), "201\n");
    let note = refreshed
        .iter()
        .find_map(|o| match o {
            Output::Note(note) => Some(note.clone()),
            _ => None,
        })
        .expect("a note names the refreshed variables");
    // Only what the cell names is copied: `status`, not the `response` the fetch changed.
    // (A cell that declares nothing would have read it in a block: nothing replaced.)
    assert!(note.ends_with(": status: u16"), "{note}");
    let named = ok(
        &mut session,
        "println!(\"{}\", response[\"resourceType\"]);",
    );
    assert_eq!(stdout(&named), "\"Patient\"\n");

    // `vars` shows each variable's Rust type.
    let vars = ok(&mut session, "vars");
    let table = vars
        .iter()
        .find_map(|o| match o {
            Output::Table(t) => Some(t.clone()),
            _ => None,
        })
        .expect("vars is a table");
    assert_eq!(table.columns.last().map(String::as_str), Some("Rust type"));
    let row = |name: &str| {
        table
            .rows
            .iter()
            .find(|r| r[0] == name)
            .map(|r| r[2].clone())
    };
    assert_eq!(row("response").as_deref(), Some("serde_json::Value"));
    assert_eq!(row("status").as_deref(), Some("u16"));
    assert_eq!(row("access_token").as_deref(), Some("String"));
}
