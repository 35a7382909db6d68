//! `smartnb repl --state FILE`: the REPL's embedded server keeps its state in the file, so
//! a token minted in one REPL run still reads FHIR in the next.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Run `smartnb repl --port 0 --fail-fast --state FILE` with `input` piped; its stdout.
fn repl(state: &Path, input: &str) -> String {
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_smartnb"))
        .args(["repl", "--port", "0", "--fail-fast", "--state"])
        .arg(state)
        .env("HOME", home.path())
        .env("XDG_DATA_HOME", home.path().join("data"))
        .env_remove("SMARTNB_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(output.stdout).expect("UTF-8 stdout");
    assert!(
        output.status.success(),
        "the REPL failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn a_token_from_one_repl_run_works_in_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("repl.db");
    let first = repl(&state, "register\ntoken\n");
    let token = first
        .split("\"access_token\": \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no access token in {first}"));

    let second = repl(
        &state,
        &format!("fetch Patient/smart-1288992 --token {token}\nserver status\n"),
    );
    assert!(second.contains("Response status code: 200"), "{second}");
    assert!(second.contains("SQLite file"), "{second}");
    assert!(second.contains(&state.display().to_string()), "{second}");
}
