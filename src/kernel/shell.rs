//! The session thread: shell requests in arrival order, each between `status: busy` and
//! `status: idle`. It owns the session, so a running cell never blocks the control channel.

use std::collections::VecDeque;
use std::sync::mpsc::Receiver;

use jupyter_protocol::{HistoryReply, JupyterMessageContent, ReplyStatus, ShutdownReply};

use super::execute::Executor;
use super::handlers;
use super::history;
use super::stdin::Stdin;
use super::wire::{child, raw, Outbox, Outgoing, Request};
use crate::session::Session;

/// Whether the kernel goes on after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Serve the next request.
    Continue,
    /// shutdown_request: the reply is queued, the kernel exits.
    Exit,
}

/// The interpreter side of the kernel.
pub struct ShellLoop {
    session: Session,
    executor: Executor,
    outbox: Outbox,
    stdin: Stdin,
    requests: Receiver<Request>,
    /// Requests taken off the channel early; `true` marks those queued before a failed
    /// cell's reply with stop_on_error, whose execute_requests are aborted.
    pending: VecDeque<(Request, bool)>,
}

impl ShellLoop {
    /// A loop serving `requests` with `session`.
    pub fn new(
        session: Session,
        outbox: Outbox,
        stdin: Stdin,
        requests: Receiver<Request>,
    ) -> Self {
        ShellLoop {
            session,
            executor: Executor::default(),
            outbox,
            stdin,
            requests,
            pending: VecDeque::new(),
        }
    }

    /// Serve until shutdown or until the socket side is gone.
    pub fn run(mut self) {
        loop {
            let (request, abort) = match self.pending.pop_front() {
                Some(next) => next,
                None => match self.requests.recv() {
                    Ok(request) => (request, false),
                    Err(_) => return,
                },
            };
            let parent = request.message.clone();
            self.outbox.status(&parent, true);
            let flow = if abort && request.msg_type() == "execute_request" {
                tracing::info!("aborted {} after an error", parent.header.msg_id);
                self.reply(&request, self.executor.aborted());
                Flow::Continue
            } else {
                self.dispatch(&request)
            };
            self.outbox.status(&parent, false);
            if flow == Flow::Exit {
                self.outbox.send(Outgoing::Exit);
                return;
            }
        }
    }

    fn reply(&self, request: &Request, content: impl Into<JupyterMessageContent>) {
        self.outbox
            .send(Outgoing::Shell(child(&request.message, content)));
    }

    fn dispatch(&mut self, request: &Request) -> Flow {
        if let Some(problem) = &request.problem {
            tracing::warn!("{}: {problem}", request.msg_type());
            if request.msg_type().ends_with("_request") {
                self.reply(request, handlers::bad_request(request.msg_type(), problem));
            }
            return Flow::Continue;
        }
        match &request.message.content {
            JupyterMessageContent::KernelInfoRequest(_) => {
                self.reply(request, handlers::kernel_info());
            }
            JupyterMessageContent::ExecuteRequest(execute) => {
                let ran = self.executor.run(
                    &mut self.session,
                    &request.message,
                    execute,
                    &self.outbox,
                    &self.stdin,
                );
                if ran.failed && execute.stop_on_error && !execute.silent {
                    // Requests already here arrived before this reply is sent.
                    let queued: Vec<Request> = self.requests.try_iter().collect();
                    self.pending.extend(queued.into_iter().map(|r| (r, true)));
                }
                self.reply(request, ran.reply);
            }
            JupyterMessageContent::CompleteRequest(complete) => {
                let reply = handlers::complete(&mut self.session, complete);
                self.reply(request, reply);
            }
            JupyterMessageContent::InspectRequest(inspect) => {
                self.reply(request, handlers::inspect(&self.session, inspect));
            }
            JupyterMessageContent::IsCompleteRequest(is_complete) => {
                self.reply(request, handlers::is_complete(&is_complete.code));
            }
            JupyterMessageContent::CommInfoRequest(_) => {
                self.reply(request, handlers::comm_info());
            }
            JupyterMessageContent::ShutdownRequest(shutdown) => {
                self.reply(
                    request,
                    ShutdownReply {
                        restart: shutdown.restart,
                        status: ReplyStatus::Ok,
                        error: None,
                    },
                );
                return Flow::Exit;
            }
            JupyterMessageContent::UnknownMessage(_) if request.msg_type() == "history_request" => {
                self.history(request);
            }
            _ => {
                tracing::warn!("{} is not served on shell; ignored", request.msg_type());
            }
        }
        Flow::Continue
    }

    fn history(&self, request: &Request) {
        match history::parse(&request.content) {
            Ok(query) => {
                let found = self.executor.history().query(&query);
                self.reply(request, HistoryReply::new(found));
            }
            Err(e) => self.reply(
                request,
                raw(
                    "history_reply",
                    serde_json::json!({
                        "status": "error",
                        "history": [],
                        "ename": "BadRequest",
                        "evalue": e.to_string(),
                        "traceback": [],
                    }),
                ),
            ),
        }
    }
}
