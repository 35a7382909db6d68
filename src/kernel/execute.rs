//! execute_request: run a cell through the session, publish its outputs on iopub as
//! render::jupyter shapes them, count it, store it in the history, build the reply.

use std::collections::HashMap;

use jupyter_protocol::{
    ExecuteInput, ExecuteReply, ExecuteRequest, ExecutionCount, JupyterMessage, ReplyError,
    ReplyStatus, StreamContent,
};
use serde_json::{json, Map, Value};

use super::history::History;
use super::stdin::{Answer, Stdin};
use super::wire::{self, Outbox};
use crate::render::jupyter::{to_jupyter, JupyterOutput};
use crate::session::{self, Frontend, Outcome, Output, Session};

/// Execution count and history: the state xeus keeps in its kernel core.
#[derive(Debug, Default)]
pub struct Executor {
    count: usize,
    history: History,
}

/// How a cell went.
#[derive(Debug)]
pub struct Ran {
    /// The execute_reply content.
    pub reply: ExecuteReply,
    /// The cell failed (its error was published and is in the reply).
    pub failed: bool,
}

impl Executor {
    /// The history of stored cells.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// Run the cell of `parent`. Only store_history cells get a new execution count and a
    /// history line; silent cells publish nothing and are never stored.
    pub fn run(
        &mut self,
        session: &mut Session,
        parent: &JupyterMessage,
        request: &ExecuteRequest,
        outbox: &Outbox,
        stdin: &Stdin,
    ) -> Ran {
        let store = request.store_history && !request.silent;
        if store {
            self.count += 1;
        }
        let count = self.count;
        if !request.silent {
            outbox.publish(
                parent,
                ExecuteInput {
                    code: request.code.clone(),
                    execution_count: ExecutionCount::new(count),
                },
            );
        }
        let mut frontend = CellFrontend {
            outbox,
            parent,
            stdin: request.allow_stdin.then_some(stdin),
            silent: request.silent,
            count,
            error: None,
            text: String::new(),
            ask_interrupted: false,
        };
        let outcome = session.execute(&request.code, &mut frontend);
        if store {
            self.history.record(count, &request.code, &frontend.text);
        }
        let error = match (outcome, frontend.error) {
            (_, Some(error)) => Some(error),
            (Outcome::Failed, None) => Some(ReplyError {
                ename: "Error".into(),
                evalue: "the cell failed".into(),
                traceback: Vec::new(),
            }),
            (Outcome::Ok, None) => None,
        };
        let failed = error.is_some();
        Ran {
            reply: ExecuteReply {
                status: if failed {
                    ReplyStatus::Error
                } else {
                    ReplyStatus::Ok
                },
                execution_count: ExecutionCount::new(count),
                payload: Vec::new(),
                // `None` would be sent as null, which clients reject.
                user_expressions: Some(HashMap::new()),
                error: error.map(Box::new),
            },
            failed,
        }
    }

    /// The reply to an execute_request aborted because an earlier cell failed.
    pub fn aborted(&self) -> ExecuteReply {
        ExecuteReply {
            status: ReplyStatus::Aborted,
            execution_count: ExecutionCount::new(self.count),
            payload: Vec::new(),
            user_expressions: Some(HashMap::new()),
            error: None,
        }
    }
}

/// The session's view of one running cell: outputs go to iopub, questions to stdin.
struct CellFrontend<'a> {
    outbox: &'a Outbox,
    parent: &'a JupyterMessage,
    /// Present only when the request allowed stdin.
    stdin: Option<&'a Stdin>,
    silent: bool,
    count: usize,
    /// The first error, for the reply.
    error: Option<ReplyError>,
    /// The outputs as plain text, for history requests with output=true.
    text: String,
    /// An interrupt arrived while asking: the command's error is really an interrupt.
    ask_interrupted: bool,
}

impl CellFrontend<'_> {
    fn note(&mut self, text: &str) {
        self.text.push_str(text);
        if !text.ends_with('\n') {
            self.text.push('\n');
        }
    }

    fn publish_bundle(&self, msg_type: &str, mut content: Map<String, Value>, data: Value) {
        if self.silent {
            return;
        }
        content.insert("data".into(), data);
        content.insert("metadata".into(), json!({}));
        // `transient` must be an object when present; an empty one says "no display id".
        content.insert("transient".into(), json!({}));
        self.outbox
            .publish(self.parent, wire::raw(msg_type, Value::Object(content)));
    }
}

impl Frontend for CellFrontend<'_> {
    fn emit(&mut self, output: Output) {
        let output = match output {
            Output::Error(_) if self.ask_interrupted => Output::Error(session::interrupted()),
            other => other,
        };
        match to_jupyter(&output) {
            JupyterOutput::Stream(text) => {
                self.note(&text);
                if !self.silent {
                    self.outbox
                        .publish(self.parent, StreamContent::stdout(&text));
                }
            }
            JupyterOutput::StreamErr(text) => {
                self.note(&text);
                if !self.silent {
                    self.outbox
                        .publish(self.parent, StreamContent::stderr(&text));
                }
            }
            JupyterOutput::Display(bundle) => {
                self.note(plain(&bundle));
                self.publish_bundle("display_data", Map::new(), Value::Object(bundle));
            }
            JupyterOutput::Result(bundle) => {
                self.note(plain(&bundle));
                let mut content = Map::new();
                content.insert("execution_count".into(), json!(self.count));
                self.publish_bundle("execute_result", content, Value::Object(bundle));
            }
            JupyterOutput::Error {
                ename,
                evalue,
                traceback,
            } => {
                if self.error.is_some() {
                    // A cell has one error: the one that stopped it.
                    tracing::warn!("a second error in one cell was not published: {ename}");
                    return;
                }
                self.note(&format!("{ename}: {evalue}"));
                let error = ReplyError {
                    ename,
                    evalue,
                    traceback,
                };
                if !self.silent {
                    self.outbox.publish(
                        self.parent,
                        jupyter_protocol::ErrorOutput {
                            ename: error.ename.clone(),
                            evalue: error.evalue.clone(),
                            traceback: error.traceback.clone(),
                        },
                    );
                }
                self.error = Some(error);
            }
        }
    }

    fn ask(&mut self, prompt: &str, secret: bool) -> Option<String> {
        match self.stdin?.ask(self.parent, prompt, secret) {
            Answer::Value(value) => Some(value),
            Answer::Interrupted => {
                self.ask_interrupted = true;
                None
            }
            Answer::Declined => None,
        }
    }
}

fn plain(bundle: &Map<String, Value>) -> &str {
    bundle
        .get("text/plain")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::CommandError;
    use jupyter_protocol::ExecuteRequest;
    use tokio::sync::mpsc::unbounded_channel;

    use super::super::wire::Outgoing;

    /// Emit outputs into a cell front end; what it published, as (msg_type, content).
    fn published(silent: bool, outputs: Vec<Output>) -> (Vec<(String, Value)>, Recorded) {
        let (sender, mut receiver) = unbounded_channel();
        let outbox = Outbox::new(sender);
        let parent: JupyterMessage = ExecuteRequest::new("cell".into()).into();
        let mut frontend = CellFrontend {
            outbox: &outbox,
            parent: &parent,
            stdin: None,
            silent,
            count: 7,
            error: None,
            text: String::new(),
            ask_interrupted: false,
        };
        for output in outputs {
            frontend.emit(output);
        }
        assert_eq!(frontend.ask("code? ", false), None, "no stdin, no question");
        let end = Recorded {
            error: frontend.error.map(|e| e.ename),
            text: frontend.text,
        };
        let mut sent = Vec::new();
        while let Ok(Outgoing::Iopub(message)) = receiver.try_recv() {
            assert_eq!(message.parent_header.unwrap().msg_id, parent.header.msg_id);
            let content = serde_json::to_value(&message.content).unwrap();
            sent.push((message.header.msg_type, content));
        }
        (sent, end)
    }

    struct Recorded {
        error: Option<String>,
        text: String,
    }

    fn bundle() -> Map<String, Value> {
        let mut bundle = Map::new();
        bundle.insert("text/plain".into(), json!("42"));
        bundle
    }

    #[test]
    fn outputs_become_iopub_messages() {
        let (sent, end) = published(
            false,
            vec![
                Output::Stdout("out\n".into()),
                Output::Stderr("err\n".into()),
                Output::Value(bundle()),
                Output::Rich(bundle()),
            ],
        );
        let types: Vec<&str> = sent.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            types,
            ["stream", "stream", "execute_result", "display_data"]
        );
        assert_eq!(sent[1].1["name"], "stderr");
        assert_eq!(sent[2].1["execution_count"], 7);
        assert_eq!(sent[2].1["data"]["text/plain"], "42");
        assert_eq!(sent[2].1["transient"], json!({}));
        assert_eq!(sent[3].1["metadata"], json!({}));
        assert_eq!(end.text, "out\nerr\n42\n42\n");
        assert_eq!(end.error, None);
    }

    #[test]
    fn one_error_per_cell_and_silence_publishes_nothing() {
        let errors = || {
            vec![
                Output::Error(CommandError::new("First", "one")),
                Output::Error(CommandError::new("Second", "two")),
            ]
        };
        let (sent, end) = published(false, errors());
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0, "error");
        assert_eq!(sent[0].1["ename"], "First");
        assert_eq!(end.error.as_deref(), Some("First"));
        let (sent, end) = published(true, errors());
        assert!(sent.is_empty());
        assert_eq!(end.error.as_deref(), Some("First"));
    }
}
