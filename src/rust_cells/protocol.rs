//! What the session and its Rust worker process say to each other: one JSON object per
//! line, requests on the worker's stdin and events on its stdout.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::session::complete::Completion;
use crate::session::CommandError;

/// A request from the session to the worker.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    /// Evaluate `code`; its first `prelude_lines` lines are the session's own (helper
    /// variables), so compile errors are reported against the lines after them.
    Execute { code: String, prelude_lines: usize },
    /// Rust completions at a code-point cursor.
    Complete { code: String, cursor: usize },
    /// Stop the running cell.
    Interrupt,
}

/// An event from the worker to the session.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// The evaluator is ready for cells; `without_serde_json` says why `serde_json` (and so
    /// typed helper variables and `smart`) could not be added, when it could not.
    Ready { without_serde_json: Option<String> },
    /// serde_json turned out unavailable after Ready: copy helper variables as Strings.
    Untyped { why: String },
    /// The evaluator could not start; the worker exits after saying so.
    StartFailed { message: String },
    /// A line the cell printed on stdout.
    Stdout { line: String },
    /// A line the cell printed on stderr.
    Stderr { line: String },
    /// The cell finished: its MIME bundle, or its error.
    Done {
        result: Result<Map<String, Value>, CommandError>,
    },
    /// The answer to a completion request (`None` while the evaluator is busy).
    Completions { found: Option<Completion> },
}

/// One line of JSON, newline included.
pub fn encode<T: Serialize>(message: &T) -> String {
    let mut line = serde_json::to_string(message).unwrap_or_else(|_| "{}".into());
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_events_survive_a_round_trip() {
        let request = Request::Execute {
            code: "let x = 1;\nx".into(),
            prelude_lines: 0,
        };
        let line = encode(&request);
        assert!(line.ends_with('\n'));
        assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), request);
        let event = Event::Done {
            result: Err(CommandError::new("CompilationError", "nope")),
        };
        assert_eq!(
            serde_json::from_str::<Event>(&encode(&event)).unwrap(),
            event
        );
    }
}
