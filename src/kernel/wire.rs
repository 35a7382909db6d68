//! Messages on the wire: verifying and parsing what arrives, addressing what leaves.
//!
//! Every incoming message has its HMAC checked by `jupyter-zmq-client` before anything
//! reads it, and a signature seen before is refused (a replayed message). Parsing is
//! lenient: a content the typed parser rejects still reaches its handler, which answers
//! with an error reply instead of leaving the client waiting.

use std::collections::{HashSet, VecDeque};
use std::time::Instant;

use bytes::Bytes;
use jupyter_protocol::{Header, JupyterMessage, JupyterMessageContent, UnknownMessage};
use jupyter_zmq_client::{RawMessage, RuntimeError};
use ring::hmac;
use serde_json::{Map, Value};
use tokio::sync::mpsc::UnboundedSender;

/// The frame that separates routing identities from the signed message.
const DELIMITER: &[u8] = b"<IDS|MSG>";

/// How many signatures are remembered to refuse replays (ipykernel keeps as many).
const REMEMBERED_SIGNATURES: usize = 1 << 16;

/// Why an incoming message was dropped.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// Not framed as a Jupyter message.
    #[error("not a Jupyter message: {0}")]
    Framing(String),
    /// Missing, malformed or wrong HMAC signature.
    #[error("bad or missing signature: {0}")]
    Signature(String),
    /// A signature already seen: the message is a replay.
    #[error("a replayed message (its signature was seen before)")]
    Replay,
    /// The header is not JSON or lacks msg_type.
    #[error("unreadable header: {0}")]
    Header(String),
}

/// A verified incoming message.
#[derive(Debug, Clone)]
pub struct Request {
    /// The message; its content is `UnknownMessage` when the typed parse failed, and for
    /// requests this kernel parses itself (history).
    pub message: JupyterMessage,
    /// The content exactly as sent.
    pub content: Value,
    /// Why the typed parse failed, when it did.
    pub problem: Option<String>,
    /// When the socket side read it (stop-on-error aborts by arrival, not by turn).
    pub received: Instant,
}

impl Request {
    /// The message type from the header.
    pub fn msg_type(&self) -> &str {
        &self.message.header.msg_type
    }

    /// The client session that sent it (the header's `session`).
    pub fn session(&self) -> &str {
        &self.message.header.session
    }
}

/// Signatures seen recently, to refuse replays.
#[derive(Debug, Default)]
pub struct Signatures {
    seen: HashSet<Bytes>,
    order: VecDeque<Bytes>,
}

impl Signatures {
    /// Remember a signature; false when it was seen before.
    fn admit(&mut self, signature: Bytes) -> bool {
        if !self.seen.insert(signature.clone()) {
            return false;
        }
        self.order.push_back(signature);
        if self.order.len() > REMEMBERED_SIGNATURES {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
    }
}

/// Verify and parse one multipart message from a ROUTER socket.
pub fn decode(
    multipart: zeromq::ZmqMessage,
    mac: &Option<hmac::Key>,
    seen: &mut Signatures,
) -> Result<Request, WireError> {
    let signature = multipart
        .iter()
        .position(|frame| frame.as_ref() == DELIMITER)
        .and_then(|at| multipart.get(at + 1))
        .cloned();
    let raw = RawMessage::from_multipart(multipart, mac).map_err(|e| match e {
        RuntimeError::MissingHmac => WireError::Signature("no signature frame".into()),
        RuntimeError::DecodeError(_) => WireError::Signature("the signature is not hex".into()),
        RuntimeError::VerifyError(_) => {
            WireError::Signature("it does not match the connection file's key".into())
        }
        other => WireError::Framing(other.to_string()),
    })?;
    if mac.is_some() && !seen.admit(signature.unwrap_or_default()) {
        return Err(WireError::Replay);
    }
    parse(raw)
}

fn parse(raw: RawMessage) -> Result<Request, WireError> {
    let header = parse_header(&raw.jparts[0])?;
    let parent_header = serde_json::from_slice::<Header>(&raw.jparts[1]).ok();
    let metadata = match serde_json::from_slice::<Value>(&raw.jparts[2]) {
        Ok(Value::Object(map)) => Value::Object(map),
        _ => Value::Object(Map::new()),
    };
    let (content, mut problem) = match serde_json::from_slice::<Value>(&raw.jparts[3]) {
        Ok(Value::Object(map)) => (Value::Object(map), None),
        Ok(_) => (
            Value::Object(Map::new()),
            Some("content is not an object".into()),
        ),
        Err(e) => (Value::Object(Map::new()), Some(format!("content: {e}"))),
    };
    let unknown = || {
        JupyterMessageContent::UnknownMessage(UnknownMessage {
            msg_type: header.msg_type.clone(),
            content: content.clone(),
        })
    };
    // jupyter_client sends history searches without `unique`/`n` and ranges with a null
    // `stop`, which the typed parser rejects: history requests are read by history.rs.
    let typed = if header.msg_type == "history_request" || problem.is_some() {
        unknown()
    } else {
        match JupyterMessageContent::from_type_and_content(&header.msg_type, content.clone()) {
            Ok(typed) => typed,
            Err(e) => {
                problem = Some(e.to_string());
                unknown()
            }
        }
    };
    let message = JupyterMessage {
        zmq_identities: raw.zmq_identities,
        header,
        parent_header,
        metadata,
        content: typed,
        buffers: raw.jparts[4..].to_vec(),
        channel: None,
    };
    Ok(Request {
        message,
        content,
        problem,
        received: Instant::now(),
    })
}

/// A header, with the fields other than msg_type filled in when a client left them out.
fn parse_header(bytes: &[u8]) -> Result<Header, WireError> {
    let mut value: Value =
        serde_json::from_slice(bytes).map_err(|e| WireError::Header(e.to_string()))?;
    let object = value
        .as_object_mut()
        .ok_or_else(|| WireError::Header("not an object".into()))?;
    if !object.get("msg_type").is_some_and(Value::is_string) {
        return Err(WireError::Header("no msg_type".into()));
    }
    for (field, default) in [
        ("msg_id", ""),
        ("username", ""),
        ("session", ""),
        ("version", "5.3"),
    ] {
        if !object.get(field).is_some_and(Value::is_string) {
            object.insert(field.into(), Value::String(default.into()));
        }
    }
    serde_json::from_value(value).map_err(|e| WireError::Header(e.to_string()))
}

/// One message for one of the kernel's sockets, or the signal to stop.
#[derive(Debug)]
pub enum Outgoing {
    /// A reply on the shell socket.
    Shell(JupyterMessage),
    /// A reply on the control socket.
    Control(JupyterMessage),
    /// A request on the stdin socket.
    Stdin(JupyterMessage),
    /// A broadcast on iopub.
    Iopub(JupyterMessage),
    /// Everything before this has been queued: flush and exit.
    Exit,
}

/// Where handlers put messages; one writer task sends them in order.
#[derive(Debug, Clone)]
pub struct Outbox(UnboundedSender<Outgoing>);

impl Outbox {
    /// An outbox feeding this channel.
    pub fn new(sender: UnboundedSender<Outgoing>) -> Self {
        Outbox(sender)
    }

    /// Queue a message. When the writer is gone the kernel is exiting, so it is dropped.
    pub fn send(&self, message: Outgoing) {
        if self.0.send(message).is_err() {
            tracing::debug!("the kernel is exiting; a message was not sent");
        }
    }

    /// Publish a content on iopub as a child of `parent`.
    pub fn publish(&self, parent: &JupyterMessage, content: impl Into<JupyterMessageContent>) {
        self.send(Outgoing::Iopub(iopub(child(parent, content))));
    }

    /// Publish `status: busy` (true) or `status: idle` (false) for `parent`.
    pub fn status(&self, parent: &JupyterMessage, busy: bool) {
        let status = if busy {
            jupyter_protocol::Status::busy()
        } else {
            jupyter_protocol::Status::idle()
        };
        self.publish(parent, status);
    }
}

/// A message answering or caused by `parent`, signed by this kernel.
pub fn child(parent: &JupyterMessage, content: impl Into<JupyterMessageContent>) -> JupyterMessage {
    let mut message = JupyterMessage::new(content, Some(parent));
    message.header.username = "smartnb".into();
    message
}

/// A message whose content is given as JSON (`msg_type` names it): used where the typed
/// structs would reshape the content (MIME bundles) or cannot express it.
pub fn raw(msg_type: &str, content: Value) -> JupyterMessageContent {
    JupyterMessageContent::UnknownMessage(UnknownMessage {
        msg_type: msg_type.to_string(),
        content,
    })
}

/// Give an iopub message its topic: on PUB sockets the routing frames are the topic, and the
/// client's identity copied from the request is no topic.
fn iopub(mut message: JupyterMessage) -> JupyterMessage {
    let topic = format!("kernel.smartnb.{}", message.header.msg_type);
    message.zmq_identities = vec![Bytes::from(topic)];
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Option<hmac::Key> {
        Some(hmac::Key::new(hmac::HMAC_SHA256, b"secret"))
    }

    fn frames(header: &str, content: &str, key: &Option<hmac::Key>) -> zeromq::ZmqMessage {
        let parts: Vec<Bytes> = vec![
            Bytes::from(header.to_string()),
            Bytes::from_static(b"{}"),
            Bytes::from_static(b"{}"),
            Bytes::from(content.to_string()),
        ];
        let signature = match key {
            Some(key) => {
                let mut ctx = hmac::Context::with_key(key);
                for p in &parts {
                    ctx.update(p);
                }
                data_encoding_hex(ctx.sign().as_ref())
            }
            None => String::new(),
        };
        let mut all = vec![
            Bytes::from_static(b"peer"),
            Bytes::from_static(DELIMITER),
            Bytes::from(signature),
        ];
        all.extend(parts);
        zeromq::ZmqMessage::try_from(all).unwrap()
    }

    fn data_encoding_hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    const HEADER: &str = r#"{"msg_id":"1","username":"u","session":"s","msg_type":"execute_request","version":"5.3","date":"2024-01-01T00:00:00Z"}"#;
    const CONTENT: &str = r#"{"code":"vars","silent":false,"store_history":true,"user_expressions":{},"allow_stdin":false,"stop_on_error":true}"#;

    #[test]
    fn accepts_a_signed_message_once() {
        let mut seen = Signatures::default();
        let request = decode(frames(HEADER, CONTENT, &key()), &key(), &mut seen).unwrap();
        assert!(matches!(
            request.message.content,
            JupyterMessageContent::ExecuteRequest(_)
        ));
        assert_eq!(request.message.zmq_identities, vec![Bytes::from("peer")]);
        let again = decode(frames(HEADER, CONTENT, &key()), &key(), &mut seen);
        assert!(matches!(again, Err(WireError::Replay)));
    }

    #[test]
    fn drops_forged_and_unsigned_messages() {
        let mut seen = Signatures::default();
        let forged = Some(hmac::Key::new(hmac::HMAC_SHA256, b"guess"));
        let err = decode(frames(HEADER, CONTENT, &forged), &key(), &mut seen).unwrap_err();
        assert!(matches!(err, WireError::Signature(_)), "{err}");
        let err = decode(frames(HEADER, CONTENT, &None), &key(), &mut seen).unwrap_err();
        assert!(matches!(err, WireError::Signature(_)), "{err}");
    }

    #[test]
    fn an_empty_key_checks_nothing() {
        let mut seen = Signatures::default();
        assert!(decode(frames(HEADER, CONTENT, &None), &None, &mut seen).is_ok());
        assert!(decode(frames(HEADER, CONTENT, &None), &None, &mut seen).is_ok());
    }

    #[test]
    fn parses_leniently() {
        let mut seen = Signatures::default();
        let history = HEADER.replace("execute_request", "history_request");
        let search = r#"{"hist_access_type":"search","pattern":"re*","output":false,"raw":true}"#;
        let request = decode(frames(&history, search, &key()), &key(), &mut seen).unwrap();
        assert_eq!(request.msg_type(), "history_request");
        assert_eq!(request.content["pattern"], "re*");
        let bad = decode(frames(HEADER, r#"{"silent":1}"#, &key()), &key(), &mut seen).unwrap();
        assert!(bad.problem.is_some());
        let bare = r#"{"msg_type":"kernel_info_request"}"#;
        let request = decode(frames(bare, "{}", &key()), &key(), &mut seen).unwrap();
        assert_eq!(request.message.header.version, "5.3");
        let err = decode(frames("nope", "{}", &key()), &key(), &mut seen).unwrap_err();
        assert!(matches!(err, WireError::Header(_)));
    }
}
