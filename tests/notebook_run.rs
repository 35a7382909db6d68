//! `smartnb run` on a small notebook of its own: `--check` prints only what differs and a
//! summary per notebook (`--verbose` everything), and `--write` stores outputs that show the
//! embedded server on port 9000 whichever port served them (`--port`, or a fallback).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

/// A notebook whose outputs name the embedded server's URL in text, links, JSON and tables.
fn notebook(dir: &Path) -> PathBuf {
    let cells = [
        r#"register --name "Port Test" --redirect-uri http://localhost:9001/cb"#,
        "authorize --state port-test",
        "token --user daniel-adams",
        "introspect",
    ]
    .iter()
    .map(|source| {
        json!({"cell_type": "code", "execution_count": null, "metadata": {},
               "outputs": [], "source": source})
    })
    .collect::<Vec<_>>();
    let doc = json!({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5});
    let path = dir.join("ports.ipynb");
    std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    path
}

fn smartnb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smartnb"))
        .args(args)
        .output()
        .expect("run smartnb")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn shown(output: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    )
}

/// Every `localhost:N` and `localhost%3AN` port in the file.
fn ports(file: &str) -> Vec<String> {
    let re = regex::Regex::new(r"localhost(?::|%3A)(\d+)").unwrap();
    re.captures_iter(file).map(|c| c[1].to_string()).collect()
}

fn write_then_read(path: &Path, port: u16) -> String {
    let out = smartnb(&[
        "run",
        "--write",
        "--port",
        &port.to_string(),
        path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", shown(&out));
    std::fs::read_to_string(path).unwrap()
}

fn assert_canonical(file: &str, not: u16) {
    let found = ports(file);
    assert!(
        found.iter().filter(|p| *p == "9000").count() >= 3,
        "the server's URL is stored as localhost:9000: {found:?}\n{file}"
    );
    assert!(
        found.iter().all(|p| p == "9000" || p == "9001"),
        "only the canonical port and the app's: {found:?}\n{file}"
    );
    assert!(!file.contains(&not.to_string()), "{file}");
    assert!(!file.contains("was taken"), "{file}");
}

#[test]
fn write_stores_port_9000_when_the_asked_port_was_taken() {
    let dir = tempfile::tempdir().unwrap();
    let path = notebook(dir.path());
    let _taken = std::net::TcpListener::bind("127.0.0.1:9201").expect("port 9201 is free");
    let file = write_then_read(&path, 9201);
    assert_canonical(&file, 9201);
}

#[test]
fn write_stores_port_9000_for_any_port_asked() {
    let dir = tempfile::tempdir().unwrap();
    let path = notebook(dir.path());
    let file = write_then_read(&path, 9202);
    assert_canonical(&file, 9202);
    // Tables are drawn after the rewrite: the borders stay aligned.
    let doc: Value = serde_json::from_str(&file).unwrap();
    for cell in doc["cells"].as_array().unwrap() {
        for output in cell["outputs"].as_array().unwrap() {
            let Some(plain) = output["data"]["text/plain"].as_str() else {
                continue;
            };
            if plain.starts_with('┌') {
                let widths: Vec<usize> = plain.lines().map(|l| l.chars().count()).collect();
                assert!(widths.windows(2).all(|w| w[0] == w[1]), "{plain}");
            }
        }
    }
}

#[test]
fn check_prints_a_summary_and_only_what_differs() {
    let dir = tempfile::tempdir().unwrap();
    let path = notebook(dir.path());
    write_then_read(&path, 9203);
    let name = path.to_str().unwrap();

    let out = smartnb(&["run", "--check", "--port", "9203", name]);
    assert!(out.status.success(), "{}", shown(&out));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{}", shown(&out));
    assert!(
        stdout.starts_with(&format!("{name}: ok, 4 cells match their stored outputs (")),
        "{}",
        shown(&out)
    );
    assert!(out.stderr.is_empty(), "{}", shown(&out));

    // One stored output altered: that cell's diff and a failing summary, nothing else.
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let stored = &mut doc["cells"][0]["outputs"][0]["text"];
    assert!(stored.as_str().unwrap().contains("Started"), "{stored}");
    *stored = json!("Started something else\n");
    std::fs::write(&path, serde_json::to_string(&doc).unwrap()).unwrap();
    let out = smartnb(&["run", "--check", "--port", "9203", name]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with(&format!("{name}: FAILED, 1 of 4 cells differ (")),
        "{}",
        shown(&out)
    );
    assert_eq!(stdout.lines().count(), 1, "{}", shown(&out));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("cell 0 (`register --name \"Port Test\"")
            && stderr.contains("-    \"text\": \"Started something else\\n\""),
        "{}",
        shown(&out)
    );
    assert!(!stderr.contains("cell 1 "), "{}", shown(&out));

    // --verbose prints the run as well.
    let out = smartnb(&["run", "--check", "--verbose", "--port", "9203", name]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("-- cell 0") && stdout.contains("Response status code: 201"),
        "{}",
        shown(&out)
    );
    assert!(
        stdout.contains("FAILED, 1 of 4 cells differ"),
        "{}",
        shown(&out)
    );
}

#[test]
fn check_shows_the_failed_cell() {
    let dir = tempfile::tempdir().unwrap();
    let doc = json!({"cells": [
        {"cell_type": "code", "execution_count": null, "metadata": {}, "outputs": [],
         "source": "introspect"},
        {"cell_type": "code", "execution_count": null, "metadata": {}, "outputs": [],
         "source": "vars"}
    ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5});
    let path = dir.path().join("fails.ipynb");
    std::fs::write(&path, doc.to_string()).unwrap();
    let name = path.to_str().unwrap();
    let out = smartnb(&["run", "--check", "--port", "9204", name]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("-- cell 0\n") && stderr.contains(&format!("{name}: cell 0 failed")),
        "{}",
        shown(&out)
    );
    assert!(
        text(&out.stdout).contains(", 1 did not run ("),
        "{}",
        shown(&out)
    );
}
