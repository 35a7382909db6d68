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
        /// msg_id of the input_request it answers; `None` when its parent header is empty,
        /// as jupyter_client's `input()` sends it (and so `jupyter console`).
        parent: Option<String>,
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
    ///
    /// One question is pending at a time (this call blocks until it is answered), so a
    /// reply with an empty parent header answers it, as ipykernel takes it; a reply naming
    /// another input_request is ignored.
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
                Ok(StdinEvent::Reply { parent, value })
                    if parent.as_ref().is_none_or(|parent| *parent == id) =>
                {
                    return value.map_or(Answer::Declined, Answer::Value);
                }
                Ok(StdinEvent::Reply { parent, .. }) => {
                    tracing::warn!(
                        "input_reply to an unknown input_request {}; ignored",
                        parent.unwrap_or_default()
                    );
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
    let parent = request
        .message
        .parent_header
        .as_ref()
        .map(|header| header.msg_id.clone())
        .filter(|id| !id.is_empty());
    let value = (reply.status == ReplyStatus::Ok).then(|| reply.value.clone());
    Some(StdinEvent::Reply { parent, value })
}

/// Where the stdin reader and the control handler send their events.
pub type StdinEvents = Sender<StdinEvent>;

#[cfg(test)]
mod tests {
    use super::*;
    use jupyter_protocol::ExecuteRequest;
    use tokio::sync::mpsc::unbounded_channel;

    /// Ask once; when the input_request goes out, `answer` (given its msg_id) is what the
    /// client sends back, event by event.
    fn ask_answered(answer: impl FnOnce(String) -> Vec<StdinEvent> + Send + 'static) -> Answer {
        let (sender, mut outgoing) = unbounded_channel();
        let (events, receiver) = std::sync::mpsc::channel();
        let stdin = Stdin::new(Outbox::new(sender), receiver);
        let client = std::thread::spawn(move || {
            let Some(Outgoing::Stdin(request)) = outgoing.blocking_recv() else {
                panic!("an input_request on stdin");
            };
            for event in answer(request.header.msg_id) {
                events.send(event).unwrap();
            }
        });
        let parent: JupyterMessage = ExecuteRequest::new("exchange".into()).into();
        let answer = stdin.ask(&parent, "code: ", false);
        client.join().unwrap();
        answer
    }

    #[test]
    fn a_reply_with_an_empty_parent_answers_the_pending_question() {
        let answer = ask_answered(|_| {
            vec![StdinEvent::Reply {
                parent: None,
                value: Some("typed".into()),
            }]
        });
        assert_eq!(answer, Answer::Value("typed".into()));
    }

    #[test]
    fn a_reply_to_another_question_is_ignored() {
        let answer = ask_answered(|id| {
            vec![
                StdinEvent::Reply {
                    parent: Some("another".into()),
                    value: Some("stale".into()),
                },
                StdinEvent::Reply {
                    parent: Some(id),
                    value: Some("fresh".into()),
                },
            ]
        });
        assert_eq!(answer, Answer::Value("fresh".into()));
    }

    #[test]
    fn an_input_reply_without_a_parent_becomes_an_event() {
        let reply = |parent: Option<&str>| {
            let mut message: JupyterMessage = jupyter_protocol::InputReply {
                value: "typed".into(),
                status: ReplyStatus::Ok,
                error: None,
            }
            .into();
            message.parent_header = parent.map(|id| {
                let mut header = message.header.clone();
                header.msg_id = id.into();
                header
            });
            Request {
                message,
                content: serde_json::json!({}),
                problem: None,
                received: std::time::Instant::now(),
            }
        };
        for (parent, expected) in [(None, None), (Some(""), None), (Some("q1"), Some("q1"))] {
            let Some(StdinEvent::Reply { parent, value }) = event(&reply(parent)) else {
                panic!("an input_reply is an event");
            };
            assert_eq!(parent.as_deref(), expected);
            assert_eq!(value.as_deref(), Some("typed"));
        }
    }
}
