//! Rust cells through the session's worker process (the real smartnb binary runs evcxr):
//! streams, values, rich output, compile errors, variables, helper variables, evcxr's own
//! commands, and an interrupt that the next cell survives. Slow (seconds per cell), so one
//! session does it all.
#![cfg(feature = "rust")]

mod session_support;

use std::time::Duration;

use session_support::{fails, ok, run, var};
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

#[test]
fn rust_cells_in_a_session() {
    let mut session = Session::new(SessionOptions {
        server: Config {
            port: 0,
            ..Default::default()
        },
        rust: RustStart::Background,
        rust_program: Some(env!("CARGO_BIN_EXE_smartnb").into()),
    })
    .expect("the session starts");

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

    let vars = ok(&mut session, ":vars");
    let listed = format!("{vars:?}");
    assert!(
        listed.contains("kept") && listed.contains("access_token"),
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
    let mut session = Session::new(SessionOptions {
        server: Config {
            port: 0,
            ..Default::default()
        },
        rust: RustStart::OnFirstUse,
        rust_program: Some(env!("CARGO_BIN_EXE_smartnb").into()),
    })
    .expect("the session starts");
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
