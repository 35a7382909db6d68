//! What a running command can reach: outputs, variables, the target server, and waiting
//! on requests in a way an interrupt can cancel.

use std::future::Future;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::watch;

use super::output::{CommandError, Output, Simulated};
use super::target::{Endpoints, Target};
use super::{Frontend, State};
use crate::client::{Body, ClientError, Reply};
use crate::server::{self, StartError};

/// Cancels whatever the session is waiting on; cheap to clone and send to other threads.
#[derive(Clone)]
pub struct Interrupter {
    signal: Arc<watch::Sender<u64>>,
}

impl Default for Interrupter {
    fn default() -> Self {
        Interrupter {
            signal: Arc::new(watch::channel(0).0),
        }
    }
}

impl Interrupter {
    /// Cancel the running command (nothing happens when none is running).
    pub fn interrupt(&self) {
        self.signal.send_modify(|n| *n += 1);
    }

    /// A receiver that fires on interrupts from now on.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.signal.subscribe()
    }
}

/// The context of one command.
pub(crate) struct Ctx<'a> {
    pub state: &'a mut State,
    pub frontend: &'a mut dyn Frontend,
}

/// The error a cancelled command ends with.
pub fn interrupted() -> CommandError {
    CommandError::new(
        "Interrupted",
        "the command stopped before it finished; your variables keep the values they had before it",
    )
}

impl Ctx<'_> {
    /// Show an output.
    pub fn emit(&mut self, output: Output) {
        self.frontend.emit(output);
    }

    /// Run a future to completion on the session's runtime, unless interrupted first.
    pub fn wait<F: Future>(&mut self, future: F) -> Result<F::Output, CommandError> {
        let mut interrupts = self.state.interrupter.watch();
        self.state.runtime.block_on(async move {
            tokio::select! {
                out = future => Ok(out),
                _ = interrupts.changed() => Err(interrupted()),
            }
        })
    }

    /// Wait for an HTTP request, mapping transport failures to errors that say what to do.
    pub fn request<F>(&mut self, future: F) -> Result<Reply, CommandError>
    where
        F: Future<Output = Result<Reply, ClientError>>,
    {
        let reply = self.wait(future)?.map_err(|e| {
            let hint = match &e {
                ClientError::Refused { .. } => "check that the server is running and the port is right; `connect` shows the target",
                ClientError::Unreachable { .. } => "check that the server is running and the URL is right; `connect` shows the target",
                ClientError::Timeout { .. } => "the server is slow or stuck; try again, or interrupt",
                ClientError::BadUrl(_) => "give an absolute http:// or https:// URL, or a path starting with /",
                ClientError::BadHeader(_) => "headers are written Name:value",
            };
            CommandError::new("HttpError", e.to_string()).hint(hint)
        })?;
        self.simulated(reply.simulated.as_deref());
        Ok(reply)
    }

    /// Keep what an answer's `Smartnb-Simulated` header said, to show beneath the command's
    /// outputs (every request the session makes passes here).
    pub fn simulated(&mut self, header: Option<&str>) {
        if let Some(header) = header {
            self.state.simulated.push(Simulated::parse(header));
        }
    }

    /// The target's endpoints, starting the embedded server first if it is the target.
    pub fn endpoints(&mut self) -> Result<Endpoints, CommandError> {
        match &self.state.target {
            Target::Remote(endpoints) => Ok(endpoints.clone()),
            Target::Embedded => {
                let base = self.start_embedded(None)?;
                Ok(Endpoints::reference(&base))
            }
        }
    }

    /// Start the embedded server unless it runs; its base URL. Port 9000 (or the asked
    /// port) falls back to a free one when taken, and the note says which.
    pub fn start_embedded(
        &mut self,
        config: Option<server::Config>,
    ) -> Result<String, CommandError> {
        if let Some(running) = &self.state.embedded {
            return Ok(running.base_url.clone());
        }
        let config = config.unwrap_or_else(|| self.state.options.server.clone());
        let wanted = config.port;
        let runtime = self.state.runtime.clone();
        let first = runtime.block_on(server::spawn(config.clone()));
        let running = match first {
            Ok(running) => running,
            Err(StartError::Bind { .. }) if wanted != 0 => runtime
                .block_on(server::spawn(server::Config { port: 0, ..config }))
                .map_err(|e| CommandError::new("ServerError", e.to_string()))?,
            Err(e) => return Err(CommandError::new("ServerError", e.to_string())),
        };
        let base = running.base_url.clone();
        let note = if running.addr.port() == wanted || wanted == 0 {
            format!("Started the embedded SMART server on {base} (FHIR base {base}/api/fhir)")
        } else {
            format!("Started the embedded SMART server on {base} (port {wanted} was taken; FHIR base {base}/api/fhir)")
        };
        self.state.embedded = Some(running);
        self.emit(Output::Note(note));
        Ok(base)
    }

    /// Bind `response` and `status` to a reply.
    pub fn record(&mut self, reply: &Reply) {
        let body = match &reply.body {
            Body::Json(v) => v.clone(),
            Body::Text(t) => Value::String(t.clone()),
            Body::Empty => Value::Null,
        };
        self.state.vars.set("response", body);
        self.state.vars.set("status", Value::from(reply.status));
    }

    /// Record a reply and show it as the walkthrough printed it: status line, then body.
    pub fn show(&mut self, reply: &Reply) {
        self.record(reply);
        self.emit(Output::Status(reply.status));
        self.show_body(reply);
    }

    fn show_body(&mut self, reply: &Reply) {
        match &reply.body {
            Body::Json(v) => self.emit(Output::Json(v.clone())),
            Body::Text(t) => self.emit(Output::Text(t.clone())),
            Body::Empty => {}
        }
    }

    /// Like [`Ctx::show`], with the response headers between the status line and the body
    /// (as `curl -i` prints them).
    pub fn show_with_headers(&mut self, reply: &Reply) {
        self.record(reply);
        self.emit(Output::Status(reply.status));
        let lines: Vec<String> = reply
            .headers
            .iter()
            .map(|(name, value)| format!("{}: {value}", header_case(name)))
            .collect();
        if !lines.is_empty() {
            self.emit(Output::Text(lines.join("\n")));
        }
        self.show_body(reply);
    }

    /// A variable's text, or an error saying how to set it.
    pub fn var(&self, name: &str) -> Result<String, CommandError> {
        self.state
            .vars
            .resolve(&super::parse::Word(vec![super::parse::Piece::Var {
                name: name.to_string(),
                path: Vec::new(),
            }]))
    }

    /// An optional variable's text.
    pub fn var_opt(&self, name: &str) -> Option<String> {
        self.state.vars.text(name).filter(|s| !s.is_empty())
    }

    /// Bind a string variable and say so.
    pub fn bind(&mut self, name: &str, value: &str) {
        self.state.vars.set_str(name, value);
    }
}

/// A header name as people write it: `retry-after` → `Retry-After`.
fn header_case(name: &str) -> String {
    name.split('-')
        .map(|part| {
            if part == "www" {
                return "WWW".to_string();
            }
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// An error for a reply that is not 2xx, carrying the server's own error text.
pub fn http_failure(reply: &Reply, what: &str) -> CommandError {
    let detail = reply
        .json()
        .map(|j| {
            let code = j.get("error").and_then(Value::as_str).unwrap_or_default();
            let text = j
                .get("error_description")
                .and_then(Value::as_str)
                .or_else(|| j.pointer("/issue/0/diagnostics").and_then(Value::as_str))
                .unwrap_or_default();
            [code, text]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(": ")
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("HTTP {}", reply.status));
    CommandError::new(
        "HttpError",
        format!("{what} failed with HTTP {}: {detail}", reply.status),
    )
}

#[cfg(test)]
mod tests {
    use super::header_case;

    #[test]
    fn header_names_are_written_as_people_write_them() {
        assert_eq!(header_case("retry-after"), "Retry-After");
        assert_eq!(header_case("www-authenticate"), "WWW-Authenticate");
        assert_eq!(header_case("smartnb-simulated"), "Smartnb-Simulated");
    }
}
