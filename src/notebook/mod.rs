//! `.ipynb` walkthroughs (nbformat 4): read, execute through a Session, normalise, compare.
//!
//! The runner uses the same Session and the same render::jupyter code as the kernel, so a
//! cell's stored outputs are what a Jupyter front end would have shown.

pub mod canonical;
mod normalise;
pub mod runner;

use std::path::Path;

use serde_json::{json, Value};

use crate::render::jupyter::to_nbformat;
use crate::session::{Frontend, Outcome, Output, Session};
use canonical::Canonical;

pub use normalise::{diff, normalise_outputs};

/// Why a notebook could not be used.
#[derive(Debug, thiserror::Error)]
pub enum NotebookError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The notebook's path.
        path: String,
        /// The reason.
        source: std::io::Error,
    },
    /// The file is not an nbformat 4 notebook.
    #[error("{path} is not an nbformat 4 notebook: {reason}")]
    Format {
        /// The notebook's path.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// A notebook document.
#[derive(Debug, Clone)]
pub struct Notebook {
    /// Where it was read from.
    pub path: String,
    doc: Value,
}

/// One executed code cell.
#[derive(Debug, Clone)]
pub struct CellRun {
    /// Index among all cells.
    pub index: usize,
    /// The cell's source.
    pub source: String,
    /// Fresh nbformat outputs.
    pub outputs: Vec<Value>,
    /// How it ended.
    pub outcome: Outcome,
    /// Whether the cell is tagged `raises-exception` (an error there is expected).
    pub may_fail: bool,
}

impl Notebook {
    /// Read and check a notebook file.
    pub fn load(path: &Path) -> Result<Notebook, NotebookError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| NotebookError::Io {
            path: name.clone(),
            source,
        })?;
        let doc: Value = serde_json::from_str(&text).map_err(|e| NotebookError::Format {
            path: name.clone(),
            reason: e.to_string(),
        })?;
        if doc["nbformat"] != 4 || !doc["cells"].is_array() {
            return Err(NotebookError::Format {
                path: name,
                reason: "nbformat must be 4 and cells an array".into(),
            });
        }
        Ok(Notebook { path: name, doc })
    }

    /// Code cells: index and source.
    pub fn code_cells(&self) -> Vec<(usize, String)> {
        self.cells()
            .iter()
            .enumerate()
            .filter(|(_, c)| c["cell_type"] == "code")
            .map(|(i, c)| (i, source_text(&c["source"])))
            .collect()
    }

    fn cells(&self) -> &[Value] {
        self.doc["cells"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// The stored outputs of a cell.
    pub fn stored_outputs(&self, index: usize) -> Vec<Value> {
        self.cells()
            .get(index)
            .and_then(|c| c["outputs"].as_array())
            .cloned()
            .unwrap_or_default()
    }

    /// Run every code cell in order (stopping after a failure not tagged
    /// `raises-exception`); `observer` sees each cell start and each output as it comes.
    /// The outputs kept show the embedded server on its canonical port, whichever it got.
    pub fn run(&self, session: &mut Session, observer: &mut dyn CellObserver) -> Vec<CellRun> {
        let mut runs = Vec::new();
        // The whole notebook is queued: start Rust now if any cell will need it.
        if self
            .code_cells()
            .iter()
            .any(|(_, code)| Session::is_rust(code))
        {
            session.prepare_rust();
        }
        for (n, (index, source)) in self.code_cells().into_iter().enumerate() {
            let count = n + 1;
            let may_fail = self.cells()[index]["metadata"]["tags"]
                .as_array()
                .is_some_and(|tags| tags.iter().any(|t| t == "raises-exception"));
            observer.started(index);
            let mut sink = CellSink {
                index,
                outputs: Vec::new(),
                observer: &mut *observer,
            };
            let outcome = session.execute(&source, &mut sink);
            let canonical = Canonical::new(session.embedded_url());
            let outputs = nbformat_outputs(
                sink.outputs.iter().map(|output| canonical.output(output)),
                count,
            );
            runs.push(CellRun {
                index,
                source,
                outputs,
                outcome,
                may_fail,
            });
            if outcome == Outcome::Failed && !may_fail {
                break;
            }
        }
        runs
    }

    /// Store fresh outputs and execution counts in the document.
    pub fn store(&mut self, runs: &[CellRun]) {
        let Some(cells) = self.doc["cells"].as_array_mut() else {
            return;
        };
        for (n, run) in runs.iter().enumerate() {
            if let Some(cell) = cells.get_mut(run.index) {
                cell["outputs"] = Value::Array(run.outputs.clone());
                cell["execution_count"] = json!(n + 1);
            }
        }
    }

    /// Write the document back, formatted as Jupyter writes it (one-space indent, trailing newline).
    pub fn save(&self) -> Result<(), NotebookError> {
        let mut buf = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b" ");
        let mut ser = serde_json::Serializer::with_formatter(&mut buf, formatter);
        serde::Serialize::serialize(&self.doc, &mut ser).map_err(|e| NotebookError::Format {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        buf.push(b'\n');
        std::fs::write(&self.path, buf).map_err(|source| NotebookError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

/// Watches a notebook run.
pub trait CellObserver {
    /// A code cell is about to run.
    fn started(&mut self, _index: usize) {}
    /// A cell produced an output.
    fn output(&mut self, _index: usize, _output: &Output) {}
}

struct CellSink<'a> {
    index: usize,
    outputs: Vec<Output>,
    observer: &'a mut dyn CellObserver,
}

impl Frontend for CellSink<'_> {
    fn emit(&mut self, output: Output) {
        self.observer.output(self.index, &output);
        self.outputs.push(output);
    }
}

/// A cell's outputs as nbformat stores them: consecutive stream output of the same name is
/// one output, as Jupyter stores it, and an execute_result carries the cell's count.
fn nbformat_outputs(outputs: impl Iterator<Item = Output>, count: usize) -> Vec<Value> {
    let mut stored: Vec<Value> = Vec::new();
    for mut value in outputs.flat_map(|output| to_nbformat(&output)) {
        if value["output_type"] == "execute_result" {
            value["execution_count"] = json!(count);
        }
        if let Some(last) = stored.last_mut() {
            if last["output_type"] == "stream"
                && value["output_type"] == "stream"
                && last["name"] == value["name"]
            {
                let joined = format!(
                    "{}{}",
                    last["text"].as_str().unwrap_or_default(),
                    value["text"].as_str().unwrap_or_default()
                );
                last["text"] = Value::String(joined);
                continue;
            }
        }
        stored.push(value);
    }
    stored
}

/// nbformat sources are a string or a list of lines.
fn source_text(source: &Value) -> String {
    match source {
        Value::String(s) => s.clone(),
        Value::Array(lines) => lines.iter().filter_map(Value::as_str).collect(),
        _ => String::new(),
    }
}
