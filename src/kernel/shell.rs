//! The session thread: shell requests in arrival order, each between `status: busy` and
//! `status: idle`. It owns the session, so a running cell never blocks the control channel.
//! After a failed cell, stop_on_error.rs decides which execute requests are aborted.
//! Look-ahead: every request already sent is read before the next one runs, and when a
//! queued execute request is Rust (Run All sends a notebook's cells together) the Rust
//! evaluator starts then, while the helper cells before it run.

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::Instant;

use jupyter_protocol::{HistoryReply, JupyterMessageContent, ReplyStatus, ShutdownReply};

use super::execute::Executor;
use super::handlers;
use super::history;
use super::stdin::Stdin;
use super::stop_on_error::{Moment, StopOnError};
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
    /// Requests read ahead, in arrival order.
    queued: VecDeque<Request>,
    /// The sessions whose cells failed, for stop-on-error.
    stop: StopOnError,
}

impl ShellLoop {
    /// A loop serving `requests` with `session`; `stop` decides what is aborted.
    pub fn new(
        session: Session,
        outbox: Outbox,
        stdin: Stdin,
        requests: Receiver<Request>,
        stop: StopOnError,
    ) -> Self {
        ShellLoop {
            session,
            executor: Executor::default(),
            outbox,
            stdin,
            requests,
            queued: VecDeque::new(),
            stop,
        }
    }

    /// Serve until shutdown or until the socket side is gone.
    pub fn run(mut self) {
        loop {
            let Some(request) = self.next_request() else {
                return;
            };
            let parent = request.message.clone();
            self.outbox.status(&parent, true);
            let flow = if request.msg_type() == "execute_request" && self.stop.aborts(&request) {
                tracing::info!("aborted {} after an error", parent.header.msg_id);
                self.reply(&request, Executor::aborted());
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

    /// The next request; `None` when the socket side is gone.
    fn next_request(&mut self) -> Option<Request> {
        let gone = self.read_ahead();
        if let Some(request) = self.queued.pop_front() {
            return Some(request);
        }
        if gone {
            return None;
        }
        // Nothing is queued: what arrives from now on is judged by its date alone.
        self.stop.forget_before(Instant::now());
        let request = self.requests.recv().ok()?;
        self.look_ahead(&request);
        Some(request)
    }

    /// Queue every request already sent, starting the Rust evaluator when one of them is
    /// a Rust cell; whether the socket side is gone.
    fn read_ahead(&mut self) -> bool {
        loop {
            match self.requests.try_recv() {
                Ok(request) => {
                    self.look_ahead(&request);
                    self.queued.push_back(request);
                }
                Err(TryRecvError::Empty) => return false,
                Err(TryRecvError::Disconnected) => return true,
            }
        }
    }

    fn look_ahead(&mut self, request: &Request) {
        if let JupyterMessageContent::ExecuteRequest(execute) = &request.message.content {
            if Session::is_rust(&execute.code) {
                self.session.prepare_rust();
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
                self.reply(request, ran.reply);
                if ran.failed && execute.stop_on_error && !execute.silent {
                    self.stop.failed(&request.message, Moment::now());
                }
            }
            JupyterMessageContent::CompleteRequest(complete) => {
                let reply = handlers::complete(&mut self.session, complete);
                self.reply(request, reply);
            }
            JupyterMessageContent::InspectRequest(inspect) => {
                let reply = handlers::inspect(&mut self.session, inspect);
                self.reply(request, reply);
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
