//! The control channel, served on the socket side while a cell runs: interrupt_request,
//! shutdown_request and kernel_info_request, each between busy and idle.

use jupyter_protocol::{InterruptReply, JupyterMessageContent, ReplyStatus, ShutdownReply};

use super::handlers;
use super::shell::Flow;
use super::stdin::{StdinEvent, StdinEvents};
use super::wire::{child, Outbox, Outgoing, Request};
use crate::session::Interrupter;

/// What the control channel can reach: the outbox, the session's interrupter, and a
/// question waiting on stdin.
#[derive(Clone)]
pub struct Control {
    outbox: Outbox,
    interrupter: Interrupter,
    stdin: StdinEvents,
}

impl Control {
    /// A control handler.
    pub fn new(outbox: Outbox, interrupter: Interrupter, stdin: StdinEvents) -> Self {
        Control {
            outbox,
            interrupter,
            stdin,
        }
    }

    /// The outbox control replies go to.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// Cancel the running command, or the question it is waiting on. Every variable stays.
    pub fn interrupt(&self) {
        self.interrupter.interrupt();
        // Nobody may be waiting; a stale event is dropped before the next question.
        let _ = self.stdin.send(StdinEvent::Interrupted);
    }

    /// Serve one control request.
    pub fn handle(&self, request: &Request) -> Flow {
        let parent = &request.message;
        self.outbox.status(parent, true);
        let reply = |content: JupyterMessageContent| {
            self.outbox.send(Outgoing::Control(child(parent, content)));
        };
        let mut flow = Flow::Continue;
        match (&parent.content, &request.problem) {
            (_, Some(problem)) => {
                tracing::warn!("{}: {problem}", request.msg_type());
                if request.msg_type().ends_with("_request") {
                    reply(handlers::bad_request(request.msg_type(), problem));
                }
            }
            (JupyterMessageContent::InterruptRequest(_), None) => {
                tracing::info!("interrupt requested");
                self.interrupt();
                reply(InterruptReply::new().into());
            }
            (JupyterMessageContent::ShutdownRequest(shutdown), None) => {
                tracing::info!("shutdown requested (restart: {})", shutdown.restart);
                reply(
                    ShutdownReply {
                        restart: shutdown.restart,
                        status: ReplyStatus::Ok,
                        error: None,
                    }
                    .into(),
                );
                flow = Flow::Exit;
            }
            (JupyterMessageContent::KernelInfoRequest(_), None) => {
                reply(handlers::kernel_info().into());
            }
            _ => tracing::warn!("{} is not served on control; ignored", request.msg_type()),
        }
        self.outbox.status(parent, false);
        if flow == Flow::Exit {
            self.outbox.send(Outgoing::Exit);
        }
        flow
    }
}
