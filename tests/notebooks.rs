//! The bundled notebooks in notebooks/: each one runs through `smartnb run --check` (its
//! stored outputs still match a fresh run after normalisation), and each is a well-formed
//! nbformat 4.5 document for the smartnb kernel. A new notebook is picked up by its name
//! alone.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};
use smartnb::session::parse::{classify, Cell};

fn notebooks() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("notebooks");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "ipynb"))
        .collect();
    found.sort();
    assert!(!found.is_empty(), "no notebooks in {}", dir.display());
    found
}

fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()))
}

fn cells(doc: &Value) -> &[Value] {
    doc["cells"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn source(cell: &Value) -> String {
    match &cell["source"] {
        Value::String(s) => s.clone(),
        Value::Array(lines) => lines.iter().filter_map(Value::as_str).collect(),
        _ => String::new(),
    }
}

fn tagged_raises_exception(cell: &Value) -> bool {
    cell["metadata"]["tags"]
        .as_array()
        .is_some_and(|tags| tags.iter().any(|t| t == "raises-exception"))
}

/// Whether any code cell is Rust (which a build without the `rust` feature cannot run).
fn has_rust_cells(doc: &Value) -> bool {
    cells(doc)
        .iter()
        .filter(|c| c["cell_type"] == "code")
        .any(|c| matches!(classify(&source(c)), Ok(Cell::Rust(_))))
}

fn shown(output: &Output) -> String {
    format!(
        "{}\n--- stderr (what failed, and how the outputs differ)\n{}\n--- stdout (the run)\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    )
}

#[test]
fn every_notebook_matches_its_stored_outputs() {
    // All notebooks at once, each in its own `smartnb run` (and its own embedded server:
    // the ones that find port 9000 taken use a free port, which normalisation ignores).
    let runs: Vec<(PathBuf, std::process::Child)> = notebooks()
        .into_iter()
        .filter(|path| {
            let skip = !cfg!(feature = "rust") && has_rust_cells(&load(path));
            if skip {
                eprintln!(
                    "skipping {} (Rust cells need the rust feature)",
                    path.display()
                );
            }
            !skip
        })
        .map(|path| {
            let child = Command::new(env!("CARGO_BIN_EXE_smartnb"))
                .arg("run")
                .arg("--check")
                .arg(&path)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("start smartnb run");
            (path, child)
        })
        .collect();
    let mut failed = Vec::new();
    for (path, child) in runs {
        let output = child.wait_with_output().expect("wait for smartnb run");
        if !output.status.success() {
            failed.push(format!("== {}\n{}", path.display(), shown(&output)));
        }
    }
    assert!(
        failed.is_empty(),
        "`smartnb run --check` failed (after an intended change, store fresh outputs with `smartnb run --write`):\n{}",
        failed.join("\n")
    );
}

#[test]
fn every_notebook_is_nbformat_4_5_for_the_smartnb_kernel() {
    let id_pattern = regex::Regex::new(r"^[a-zA-Z0-9_-]{1,64}$").unwrap();
    for path in notebooks() {
        let name = path.display();
        let doc = load(&path);
        assert_eq!(doc["nbformat"], 4, "{name}: nbformat");
        assert_eq!(doc["nbformat_minor"], 5, "{name}: nbformat_minor");
        assert_eq!(
            doc["metadata"]["kernelspec"],
            json!({"name": "smartnb", "display_name": "SMART on FHIR (Rust)", "language": "rust"}),
            "{name}: kernelspec"
        );
        let info = &doc["metadata"]["language_info"];
        for (key, value) in [
            ("name", "rust"),
            ("file_extension", ".rs"),
            ("mimetype", "text/rust"),
            ("pygments_lexer", "rust"),
            ("codemirror_mode", "rust"),
        ] {
            assert_eq!(info[key], value, "{name}: language_info.{key}");
        }

        let cells = cells(&doc);
        assert!(
            cells.first().is_some_and(|c| c["cell_type"] == "markdown"),
            "{name}: a notebook opens with a markdown cell that says what it is about"
        );
        let mut ids = std::collections::HashSet::new();
        for (i, cell) in cells.iter().enumerate() {
            let id = cell["id"].as_str().unwrap_or_default();
            assert!(
                id_pattern.is_match(id),
                "{name}: cell {i} has id {:?}",
                cell["id"]
            );
            assert!(ids.insert(id), "{name}: cell id {id:?} is used twice");
            assert!(cell["metadata"].is_object(), "{name}: cell {i} metadata");
            match cell["cell_type"].as_str() {
                Some("markdown") => {}
                Some("code") => {
                    assert!(
                        cell["execution_count"].is_u64(),
                        "{name}: cell {i} was never run; store outputs with `smartnb run --write`"
                    );
                    let outputs = cell["outputs"].as_array();
                    assert!(outputs.is_some(), "{name}: cell {i} outputs");
                    let errors = outputs
                        .into_iter()
                        .flatten()
                        .any(|o| o["output_type"] == "error");
                    assert!(
                        !errors || tagged_raises_exception(cell),
                        "{name}: cell {i} stores an error but is not tagged raises-exception"
                    );
                }
                other => panic!("{name}: cell {i} has cell_type {other:?}"),
            }
        }
    }
}
