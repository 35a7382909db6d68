//! execute_request: run a cell through the session, publish its outputs on iopub as
//! render::jupyter shapes them, count it, store it in the history, build the reply.

use std::collections::HashMap;

use jupyter_protocol::{
    ExecuteInput, ExecuteReply, ExecuteRequest, ExecutionCount, JupyterMessage,
    JupyterMessageContent, ReplyError, ReplyStatus, StreamContent,
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
            published: 0,
            status: None,
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

    /// The reply to an execute_request aborted because an earlier cell failed: the cell
    /// did not run, so it claims no execution count (front ends leave its prompt empty),
    /// as ipykernel replies.
    pub fn aborted() -> JupyterMessageContent {
        wire::raw("execute_reply", json!({"status": "aborted"}))
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
    /// How many output messages the cell has published.
    published: usize,
    /// The passing status on show, if any.
    status: Option<Shown>,
}

/// A passing status on show.
struct Shown {
    /// Its transient display_id.
    id: String,
    /// It was the cell's first output.
    alone: bool,
}

impl CellFrontend<'_> {
    fn note(&mut self, text: &str) {
        self.text.push_str(text);
        if !text.ends_with('\n') {
            self.text.push('\n');
        }
    }

    /// `transient` must be an object; an empty one says "no display id".
    fn publish_bundle(
        &self,
        msg_type: &str,
        mut content: Map<String, Value>,
        data: Value,
        transient: Value,
    ) {
        if self.silent {
            return;
        }
        content.insert("data".into(), data);
        content.insert("metadata".into(), json!({}));
        content.insert("transient".into(), transient);
        self.outbox
            .publish(self.parent, wire::raw(msg_type, Value::Object(content)));
    }

    /// Publish one message of an output (silent cells publish nothing) and keep its text.
    fn publish(&mut self, output: JupyterOutput) {
        if !self.silent && !matches!(output, JupyterOutput::Error { .. }) {
            self.published += 1;
        }
        match output {
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
                self.publish_bundle("display_data", Map::new(), Value::Object(bundle), json!({}));
            }
            JupyterOutput::Result(bundle) => {
                self.note(plain(&bundle));
                let mut content = Map::new();
                content.insert("execution_count".into(), json!(self.count));
                self.publish_bundle("execute_result", content, Value::Object(bundle), json!({}));
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
                    self.published += 1;
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
}

impl Frontend for CellFrontend<'_> {
    fn emit(&mut self, output: Output) {
        let output = match output {
            Output::Error(_) if self.ask_interrupted => Output::Error(session::interrupted()),
            other => other,
        };
        for message in to_jupyter(&output) {
            self.publish(message);
        }
    }

    /// A passing status ("starting the Rust evaluator…") is a display_data with a display
    /// id, taken back when the step is over: by clear_output while it is the cell's only
    /// output (so a saved notebook keeps no trace of it), else by updating that display to
    /// an empty bundle. Never stderr, which notebooks keep and colour as an error.
    fn progress(&mut self, note: Option<&str>) {
        if self.silent {
            return;
        }
        match (note, &self.status) {
            (Some(text), None) => {
                let id = format!("smartnb-status-{}", uuid::Uuid::new_v4());
                self.publish_bundle(
                    "display_data",
                    Map::new(),
                    json!({"text/plain": text}),
                    json!({"display_id": id}),
                );
                self.status = Some(Shown {
                    id,
                    alone: self.published == 0,
                });
                self.published += 1;
            }
            (Some(text), Some(shown)) => {
                let transient = json!({"display_id": shown.id});
                self.publish_bundle(
                    "update_display_data",
                    Map::new(),
                    json!({"text/plain": text}),
                    transient,
                );
            }
            (None, Some(shown)) => {
                if shown.alone && self.published == 1 {
                    self.outbox.publish(
                        self.parent,
                        wire::raw("clear_output", json!({"wait": false})),
                    );
                    self.published = 0;
                } else {
                    let transient = json!({"display_id": shown.id});
                    self.publish_bundle("update_display_data", Map::new(), json!({}), transient);
                }
                self.status = None;
            }
            (None, None) => {}
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
        driven(silent, |frontend| {
            for output in outputs {
                frontend.emit(output);
            }
        })
    }

    /// What a cell front end published when `drive` used it.
    fn driven(
        silent: bool,
        drive: impl FnOnce(&mut dyn Frontend),
    ) -> (Vec<(String, Value)>, Recorded) {
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
            published: 0,
            status: None,
        };
        drive(&mut frontend);
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

    #[test]
    fn a_table_from_json_publishes_the_table_and_the_json_apart() {
        let table = crate::session::Table {
            columns: vec!["field".into(), "value".into()],
            rows: vec![vec!["active".into(), "true".into()]],
            json: Some(json!({"active": true})),
        };
        let (sent, _) = published(false, vec![Output::Table(table)]);
        let types: Vec<&str> = sent.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(types, ["display_data", "display_data"]);
        assert!(sent[0].1["data"]["text/html"].is_string());
        assert!(sent[0].1["data"].get("application/json").is_none());
        assert_eq!(
            sent[1].1["data"]["application/json"],
            json!({"active": true})
        );
        assert!(sent[1].1["data"].get("text/html").is_none());
    }

    #[test]
    fn a_passing_status_is_a_display_taken_back_never_stderr() {
        let (sent, end) = driven(false, |frontend| {
            frontend.progress(Some("starting…"));
            frontend.progress(None);
            frontend.emit(Output::Stdout("hi\n".into()));
        });
        let types: Vec<&str> = sent.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(types, ["display_data", "clear_output", "stream"]);
        assert_eq!(sent[0].1["data"]["text/plain"], "starting…");
        assert!(sent[0].1["transient"]["display_id"].is_string());
        assert_eq!(sent[1].1["wait"], false);
        assert_eq!(sent[2].1["name"], "stdout");
        assert_eq!(end.text, "hi\n", "a status is no output of the cell");

        // After other outputs, clear_output would take them too: the display is emptied.
        let (sent, _) = driven(false, |frontend| {
            frontend.emit(Output::Stdout("before\n".into()));
            frontend.progress(Some("starting…"));
            frontend.progress(Some("still starting…"));
            frontend.progress(None);
        });
        let types: Vec<&str> = sent.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            types,
            [
                "stream",
                "display_data",
                "update_display_data",
                "update_display_data"
            ]
        );
        let id = &sent[1].1["transient"]["display_id"];
        assert_eq!(&sent[2].1["transient"]["display_id"], id);
        assert_eq!(sent[2].1["data"]["text/plain"], "still starting…");
        assert_eq!(&sent[3].1["transient"]["display_id"], id);
        assert_eq!(sent[3].1["data"], json!({}));

        let (sent, _) = driven(true, |frontend| {
            frontend.progress(Some("starting…"));
            frontend.progress(None);
        });
        assert!(sent.is_empty());
    }
}
