//! What a command produces: structured data that render/ turns into terminal text or
//! Jupyter MIME bundles. Nothing here knows how it will be shown.

use serde_json::Value;

pub use super::faults::Simulated;

/// One piece of a command's output.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// An HTTP status line, e.g. `Response status code: 201`.
    Status(u16),
    /// A JSON document, shown pretty-printed.
    Json(Value),
    /// Rows and columns.
    Table(Table),
    /// A link to open, with a label.
    Link {
        /// What the link is for.
        label: String,
        /// The URL.
        url: String,
    },
    /// A line (or lines) of plain text.
    Text(String),
    /// A note about what the session did on its own (server started, variable bound).
    Note(String),
    /// A fault the server simulated on purpose for one of the command's requests (its
    /// answer carried `Smartnb-Simulated`), shown beneath the command's other outputs.
    Simulated(Simulated),
    /// A failure: what went wrong and what to do.
    Error(CommandError),
    /// Text a Rust cell printed to stdout, as it was printed.
    Stdout(String),
    /// Text a Rust cell printed to stderr, as it was printed.
    Stderr(String),
    /// The value of a Rust cell's trailing expression, as a MIME bundle (`text/plain`, …);
    /// Jupyter shows it as the cell's execute_result.
    Value(serde_json::Map<String, Value>),
    /// Rich content a Rust cell displayed, as a MIME bundle (Jupyter's display_data).
    Rich(serde_json::Map<String, Value>),
}

/// A table, with the JSON it was made from when there is one.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    /// Column headings.
    pub columns: Vec<String>,
    /// Cells, row by row.
    pub rows: Vec<Vec<String>>,
    /// The JSON behind the table, for front ends that can show it too.
    pub json: Option<Value>,
}

/// A command's failure, shaped like a Jupyter error (ename, evalue) plus a hint.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CommandError {
    /// Short kind, e.g. `UnknownCommand`, `HttpError`.
    pub kind: String,
    /// What went wrong.
    pub message: String,
    /// Longer text shown as it is below the message (a compiler's report).
    pub detail: Option<String>,
    /// What to do about it, when there is something to say.
    pub hint: Option<String>,
}

impl CommandError {
    /// An error of a kind with a message.
    pub fn new(kind: &str, message: impl Into<String>) -> Self {
        CommandError {
            kind: kind.to_string(),
            message: message.into(),
            detail: None,
            hint: None,
        }
    }

    /// The same error with a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)?;
        if let Some(detail) = &self.detail {
            write!(f, "\n{detail}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for CommandError {}
