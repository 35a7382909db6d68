//! The loopback channel by which a Rust cell's `smart("…")` runs a helper command in the
//! session: a listener on 127.0.0.1 whose address and random token reach only the worker
//! (and so evcxr's evaluation process) through its environment.
//!
//! One JSON line each way: `{"token": …, "command": …}` in, `{"value": …}` or
//! `{"error": {kind, message, hint}}` out. A connection without the token is answered with
//! an error and never reaches the session, so nothing else on the machine can drive it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use serde_json::{json, Value};

use crate::session::CommandError;

/// The environment variable that tells the evaluation process where the session listens.
pub const ADDR_VARIABLE: &str = "SMARTNB_HELPER_ADDR";
/// The environment variable that carries the token the session expects.
pub const TOKEN_VARIABLE: &str = "SMARTNB_HELPER_TOKEN";

/// The longest request line read (a helper command is one line of text).
const MAX_REQUEST: u64 = 1 << 20;

/// A listening bridge: where it listens, its token, and the calls it has received.
pub struct Bridge {
    /// The loopback address it listens on.
    pub addr: SocketAddr,
    /// The token every call must carry.
    pub token: String,
    /// Calls waiting for the session to run them.
    pub calls: Receiver<Call>,
}

/// One helper command sent by a Rust cell, and where its result goes.
pub struct Call {
    /// The helper command's text, e.g. `fetch Patient/smart-1288992`.
    pub command: String,
    reply: Sender<Result<Value, CommandError>>,
}

impl Call {
    /// Send the command's result back to the Rust cell.
    pub fn answer(self, result: Result<Value, CommandError>) {
        let _ = self.reply.send(result);
    }
}

/// Listen on a free loopback port with a fresh random token.
pub fn open() -> std::io::Result<Bridge> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let addr = listener.local_addr()?;
    let token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let (tx, calls) = crossbeam_channel::unbounded();
    let expected = token.clone();
    std::thread::Builder::new()
        .name("smartnb-helper-bridge".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                if !serve(stream, &expected, &tx) {
                    return;
                }
            }
        })?;
    Ok(Bridge { addr, token, calls })
}

/// Answer one connection; `false` once the session is gone.
fn serve(stream: TcpStream, token: &str, calls: &Sender<Call>) -> bool {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(mut writer) = stream.try_clone() else {
        return true;
    };
    let mut line = String::new();
    let read = BufReader::new(stream.take(MAX_REQUEST)).read_line(&mut line);
    let request: Option<Value> = read.ok().and_then(|_| serde_json::from_str(&line).ok());
    let Some(request) = request else {
        answer(
            &mut writer,
            Err(refused("the request was not one JSON line")),
        );
        return true;
    };
    if request["token"].as_str() != Some(token) {
        answer(
            &mut writer,
            Err(refused(
                "the token is wrong: only this session's Rust cells may call it",
            )),
        );
        return true;
    }
    let Some(command) = request["command"].as_str() else {
        answer(
            &mut writer,
            Err(refused("the request has no \"command\" string")),
        );
        return true;
    };
    let (reply, result) = crossbeam_channel::bounded(1);
    let call = Call {
        command: command.to_string(),
        reply,
    };
    if calls.send(call).is_err() {
        return false;
    }
    let result = result.recv().unwrap_or_else(|_| {
        Err(CommandError::new(
            "HelperUnavailable",
            "the session ended before the helper command ran",
        ))
    });
    answer(&mut writer, result);
    true
}

fn refused(message: &str) -> CommandError {
    CommandError::new("HelperRefused", message)
}

fn answer(writer: &mut TcpStream, result: Result<Value, CommandError>) {
    let line = match result {
        Ok(value) => json!({ "value": value }),
        Err(e) => json!({ "error": { "kind": e.kind, "message": e.message, "hint": e.hint } }),
    };
    let _ = writeln!(writer, "{line}");
    let _ = writer.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(addr: SocketAddr, line: &str) -> Value {
        let mut stream = TcpStream::connect(addr).unwrap();
        writeln!(stream, "{line}").unwrap();
        let mut answer = String::new();
        BufReader::new(stream).read_line(&mut answer).unwrap();
        serde_json::from_str(&answer).unwrap()
    }

    #[test]
    fn calls_with_the_token_reach_the_session_and_others_do_not() {
        let bridge = open().unwrap();
        let calls = bridge.calls.clone();
        let session = std::thread::spawn(move || {
            let call = calls.recv().unwrap();
            let command = call.command.clone();
            call.answer(Ok(json!({"ran": command})));
        });
        let wrong = call(bridge.addr, r#"{"token":"guess","command":"vars"}"#);
        assert_eq!(wrong["error"]["kind"], "HelperRefused", "{wrong}");
        let garbled = call(bridge.addr, "not json");
        assert_eq!(garbled["error"]["kind"], "HelperRefused");
        let good = json!({"token": bridge.token, "command": "fetch Patient/x"}).to_string();
        let answer = call(bridge.addr, &good);
        assert_eq!(answer["value"]["ran"], "fetch Patient/x", "{answer}");
        session.join().unwrap();
        assert!(
            bridge.calls.try_recv().is_err(),
            "the refused calls never queued"
        );
    }
}
