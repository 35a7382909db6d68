//! Asking the person for a value: an input_request on the stdin channel, answered by an
//! input_reply, or cut short by an interrupt.

use std::sync::mpsc::{Receiver, Sender};

use jupyter_protocol::{InputRequest, JupyterMessage, ReplyStatus};

use super::wire::{child, Outbox, Outgoing, Request};

/// What reaches a waiting `ask`.
#[derive(Debug)]
pub enum StdinEvent {
    /// An input_reply to the input_request with this msg_id (`None`: the client declined).
    Reply {
        /// msg_id of the input_request it answers.
        parent: String,
        /// The text typed.
        value: Option<String>,
    },
    /// interrupt_request arrived: stop waiting.
    Interrupted,
}

/// How an `ask` ended.
#[derive(Debug, PartialEq)]
pub enum Answer {
    /// The person typed this.
    Value(String),
    /// The kernel was interrupted while waiting.
    Interrupted,
    /// No answer will come (the client declined, or the kernel is exiting).
    Declined,
}

/// The session thread's end of the stdin channel.
pub struct Stdin {
    outbox: Outbox,
    events: Receiver<StdinEvent>,
}

impl Stdin {
    /// A stdin port sending through `outbox` and hearing replies on `events`.
    pub fn new(outbox: Outbox, events: Receiver<StdinEvent>) -> Self {
        Stdin { outbox, events }
    }

    /// Ask for a value on behalf of `parent` (the execute_request, whose routing identity
    /// the client's stdin socket shares) and wait for the answer.
    pub fn ask(&self, parent: &JupyterMessage, prompt: &str, password: bool) -> Answer {
        // Replies and interrupts left over from an earlier question mean nothing now.
        while self.events.try_recv().is_ok() {}
        let request = child(
            parent,
            InputRequest {
                prompt: prompt.to_string(),
                password,
            },
        );
        let id = request.header.msg_id.clone();
        self.outbox.send(Outgoing::Stdin(request));
        loop {
            match self.events.recv() {
                Ok(StdinEvent::Reply { parent, value }) if parent == id => {
                    return value.map_or(Answer::Declined, Answer::Value);
                }
                Ok(StdinEvent::Reply { parent, .. }) => {
                    tracing::warn!("input_reply to an unknown input_request {parent}; ignored");
                }
                Ok(StdinEvent::Interrupted) => return Answer::Interrupted,
                Err(_) => return Answer::Declined,
            }
        }
    }
}

/// Turn a message read on the stdin socket into an event (None when it is no input_reply).
pub fn event(request: &Request) -> Option<StdinEvent> {
    let jupyter_protocol::JupyterMessageContent::InputReply(reply) = &request.message.content
    else {
        tracing::warn!(
            "{} on the stdin channel; only input_reply is expected",
            request.msg_type()
        );
        return None;
    };
    let parent = request.message.parent_header.as_ref()?.msg_id.clone();
    let value = (reply.status == ReplyStatus::Ok).then(|| reply.value.clone());
    Some(StdinEvent::Reply { parent, value })
}

/// Where the stdin reader and the control handler send their events.
pub type StdinEvents = Sender<StdinEvent>;
