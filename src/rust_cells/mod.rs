//! Rust cells: the session's side of the evcxr worker (cargo feature "rust").
//!
//! evcxr runs in a child process of ours (`smartnb rust-worker`, see [`worker`]) that
//! starts only when Rust is needed (or a queued cell will need it), so a kernel that runs
//! helper cells only never pays for it. Helper variables arrive typed ([`prelude`]), and a
//! cell's `smart("…")` runs a helper command here through the [`bridge`]. Output streams back live while a cell runs; an interrupt
//! asks the worker to stop evcxr's evaluation process, which evcxr restarts on the next cell
//! (Rust variables are lost then, helper variables never are).

pub mod bridge;
mod build_dir;
mod cell_shape;
mod diagnostics;
pub mod prelude;
mod prelude_crate;
pub mod protocol;
mod std_source;
pub mod worker;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, SystemTime};

use crossbeam_channel::{select, Receiver, RecvTimeoutError};
use serde_json::{Map, Value};

use crate::session::complete::Completion;
use crate::session::vars::{rust_type, Vars};
use crate::session::{CommandError, Frontend, Interrupter, Output, RustStart};
use protocol::{encode, Event, Request};

/// The subcommand that runs [`worker::serve`].
pub const WORKER_SUBCOMMAND: &str = "rust-worker";

/// How long a completion request may wait for an answer from a ready worker.
const COMPLETION_WAIT: Duration = Duration::from_secs(3);

/// How long the first completion of Rust text may wait for the worker to start.
const COMPLETION_START_WAIT: Duration = Duration::from_secs(15);

/// What a Rust cell needs from the session: its variables, and a way to run one helper
/// command for `smart("…")`.
pub trait Helpers {
    /// The session's variables.
    fn vars(&self) -> &Vars;
    /// Run one helper command; the JSON it showed last, or its error.
    fn run(&mut self, command: &str) -> Result<Value, CommandError>;
}

/// The worker process and what it has been told of the session's variables.
pub struct RustCells {
    program: PathBuf,
    worker: Option<Worker>,
    /// Each copied helper variable's JSON text, as last copied into this evaluator.
    synced: HashMap<String, String>,
    /// No cell has run in this evaluator yet: it has no variables a copy could replace.
    fresh: bool,
    bridge: Option<bridge::Bridge>,
    /// Why the new evaluator has no serde_json, until a cell has said so.
    without_serde_json: Option<String>,
}

struct Worker {
    child: Child,
    stdin: ChildStdin,
    events: Receiver<Event>,
    ready: bool,
    /// serde_json was added: helper variables are typed and `smart` exists.
    typed: bool,
    started: SystemTime,
    /// The kept build directory it was given (released after the worker is killed), or
    /// `None` for evcxr's temporary one.
    _build_dir: Option<build_dir::BuildDir>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RustCells {
    /// Cells evaluated by `program rust-worker` (the smartnb binary), started now in the
    /// background or on first use.
    pub fn new(start: RustStart, program: PathBuf) -> Self {
        let mut cells = RustCells {
            program,
            worker: None,
            synced: HashMap::new(),
            fresh: true,
            bridge: None,
            without_serde_json: None,
        };
        if start == RustStart::Background {
            // A failure to start is reported by the first Rust cell, which tries again.
            let _ = cells.begin();
        }
        cells
    }

    /// Start the worker in the background unless it is running or starting (a queued Rust
    /// cell is coming); a failure is reported by the cell that needs it.
    pub fn prepare(&mut self) {
        if self.worker.is_none() {
            let _ = self.begin();
        }
    }

    /// The worker's process id and when it was started, while it runs.
    pub fn worker(&self) -> Option<(u32, SystemTime)> {
        self.worker.as_ref().map(|w| (w.child.id(), w.started))
    }

    fn begin(&mut self) -> Result<(), CommandError> {
        if self.bridge.is_none() {
            // Without the bridge Rust cells still run; `smart` then says it cannot reach us.
            self.bridge = bridge::open()
                .map_err(|e| tracing::warn!("no helper bridge for Rust cells: {e}"))
                .ok();
        }
        let mut command = Command::new(&self.program);
        command
            .arg(WORKER_SUBCOMMAND)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            // evcxr's cargo builds (adding serde_json, the prelude) would print their
            // "Compiling …" lines on the terminal or the kernel's log; errors still show.
            .env("CARGO_TERM_QUIET", "true");
        // A directory the user chose for evcxr is theirs to manage.
        let build_dir = std::env::var_os(build_dir::EVCXR_TMPDIR)
            .is_none()
            .then(build_dir::BuildDir::claim)
            .flatten();
        if let Some(dir) = &build_dir {
            command.env(build_dir::EVCXR_TMPDIR, dir.path());
        }
        if let Some(bridge) = &self.bridge {
            command
                .env(bridge::ADDR_VARIABLE, bridge.addr.to_string())
                .env(bridge::TOKEN_VARIABLE, &bridge.token);
        }
        // A process group of its own: Ctrl-C in a terminal reaches the REPL, which asks
        // the worker to stop the cell, instead of killing the worker and its variables.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command.spawn().map_err(|e| {
            unavailable(format!(
                "cannot start `{} {WORKER_SUBCOMMAND}`: {e}",
                self.program.display()
            ))
        })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            return Err(unavailable("the Rust worker has no pipes".into()));
        };
        let (tx, events) = crossbeam_channel::unbounded();
        std::thread::Builder::new()
            .name("smartnb-rust-events".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    match serde_json::from_str::<Event>(&line) {
                        Ok(event) => {
                            if tx.send(event).is_err() {
                                break;
                            }
                        }
                        // Not ours: something in the worker printed; keep it in the log.
                        Err(_) => eprintln!("{line}"),
                    }
                }
            })
            .map_err(|e| unavailable(e.to_string()))?;
        self.worker = Some(Worker {
            child,
            stdin,
            events,
            ready: false,
            typed: false,
            started: SystemTime::now(),
            _build_dir: build_dir,
        });
        self.synced.clear();
        self.fresh = true;
        Ok(())
    }

    /// The ready worker, waiting for it if it is still starting (with a passing status,
    /// taken back once it is ready or has failed).
    fn ready(
        &mut self,
        frontend: &mut dyn Frontend,
        interrupter: &Interrupter,
    ) -> Result<&mut Worker, CommandError> {
        if self.worker.is_none() {
            self.begin()?;
        }
        let waiting = self.worker.as_ref().is_some_and(|w| !w.ready);
        if waiting {
            frontend.progress(Some("starting the Rust evaluator…"));
            let started = self.wait_started(interrupter);
            frontend.progress(None);
            started?;
        }
        let worker = self
            .worker
            .as_mut()
            .ok_or_else(|| unavailable("the Rust worker is not running".into()))?;
        // The worker sets up while idle; it may have found serde_json missing meanwhile.
        while let Ok(event) = worker.events.try_recv() {
            if let Event::Untyped { why } = event {
                worker.untyped(&why);
                self.without_serde_json = Some(why);
            }
        }
        Ok(worker)
    }

    /// Wait until the starting worker is ready, has failed, or the cell is interrupted.
    fn wait_started(&mut self, interrupter: &Interrupter) -> Result<(), CommandError> {
        let interrupts = interrupter.watch();
        while let Some(worker) = self.worker.as_mut() {
            select! {
                recv(worker.events) -> event => match event {
                    Ok(Event::Ready { without_serde_json }) => {
                        worker.ready = true;
                        worker.typed = without_serde_json.is_none();
                        if let Some(why) = without_serde_json {
                            tracing::warn!("Rust cells without serde_json: {why}");
                            self.without_serde_json = Some(why);
                        }
                        return Ok(());
                    }
                    Ok(Event::StartFailed { message }) => {
                        self.worker = None;
                        return Err(unavailable(message));
                    }
                    Ok(_) => {}
                    Err(_) => {
                        self.worker = None;
                        return Err(unavailable("the Rust worker exited while starting".into()));
                    }
                },
                default(Duration::from_millis(50)) => {
                    if interrupts.has_changed().unwrap_or(false) {
                        return Err(CommandError::new(
                            "Interrupted",
                            "the cell did not run, because the Rust evaluator was still starting (it goes on starting; run the cell again)",
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Run one Rust cell, streaming its output; `Err` is the cell's error.
    pub fn execute(
        &mut self,
        code: &str,
        helpers: &mut dyn Helpers,
        frontend: &mut dyn Frontend,
        interrupter: &Interrupter,
    ) -> Result<(), CommandError> {
        let typed = self.ready(frontend, interrupter)?.typed;
        if let Some(why) = self.without_serde_json.take() {
            frontend.emit(Output::Note(format!(
                "serde_json could not be added to Rust cells ({why}); helper variables are Strings and smart(…) is not defined. Connect to the network, or run `cargo fetch` in a project that uses serde_json, then restart the kernel"
            )));
        }
        // The variables as they are now: what `smart` binds during the cell is copied next time.
        let vars = helpers.vars().clone();
        let copies = self.to_copy(&vars, typed, code);
        let (prelude, copied) = prelude_of(&copies, typed);
        // A cell that declares nothing gets its copies in a block of its own, which evcxr
        // keeps nothing of: no `let` for rust-analyzer to type, no Rust variable replaced.
        let in_block = !prelude.is_empty() && cell_shape::declares_nothing(code);
        if !self.fresh && !copied.is_empty() && !in_block {
            frontend.emit(Output::Note(format!(
                "helper variables refreshed in Rust (earlier values of these names are replaced): {}",
                copied.join(", ")
            )));
        }
        let result = if prelude.is_empty() {
            self.run(code, 0, helpers, frontend, interrupter)
        } else if code.trim_start().starts_with(':') {
            // evcxr runs `:` commands before any code of their cell, so the copies go first.
            self.run(&prelude, 0, helpers, frontend, interrupter)
                .map_err(|e| {
                    e.hint(
                        "this happened while copying helper variables into Rust; `vars` lists them",
                    )
                })?;
            self.mark_synced(&copies, typed);
            self.run(code, 0, helpers, frontend, interrupter)
        } else {
            // `cell_shape::declares_nothing` is false for a `:` command, so this is Rust code.
            let (text, lines) = if in_block {
                (
                    format!("{{\n{prelude}{code}\n}}"),
                    prelude.lines().count() + 1,
                )
            } else {
                (format!("{prelude}{code}"), prelude.lines().count())
            };
            self.run(&text, lines, helpers, frontend, interrupter)
        };
        match result {
            Ok(content) => {
                // Copies in the cell's own block are gone with it: copied again next time.
                if !in_block {
                    self.mark_synced(&copies, typed);
                }
                self.fresh = false;
                emit_content(content, frontend);
                Ok(())
            }
            Err(e) => {
                if e.kind == "Interrupted" || e.kind == "EvaluatorRestarted" {
                    // evcxr starts a fresh process: every variable must be copied in again.
                    self.synced.clear();
                    self.fresh = true;
                }
                Err(e)
            }
        }
    }

    /// Send one cell to the worker and relay what comes back until it is done, running
    /// the helper commands the cell asks for meanwhile.
    fn run(
        &mut self,
        code: &str,
        prelude_lines: usize,
        helpers: &mut dyn Helpers,
        frontend: &mut dyn Frontend,
        interrupter: &Interrupter,
    ) -> Result<Map<String, Value>, CommandError> {
        let calls = self
            .bridge
            .as_ref()
            .map_or_else(crossbeam_channel::never, |b| b.calls.clone());
        let worker = self.ready(frontend, interrupter)?;
        let request = Request::Execute {
            code: code.to_string(),
            prelude_lines,
        };
        if worker.send(&request).is_err() {
            return Err(self.worker_gone());
        }
        let interrupts = interrupter.watch();
        let mut interrupted = false;
        loop {
            let event = select! {
                recv(worker.events) -> event => event,
                recv(calls) -> call => {
                    if let Ok(call) = call {
                        let result = if interrupted {
                            Err(CommandError::new("Interrupted", "the cell was interrupted"))
                        } else {
                            helpers.run(&call.command)
                        };
                        call.answer(result);
                    }
                    continue;
                }
                default(Duration::from_millis(50)) => {
                    if !interrupted && interrupts.has_changed().unwrap_or(false) {
                        interrupted = true;
                        let _ = worker.send(&Request::Interrupt);
                    }
                    continue;
                }
            };
            match event {
                Ok(Event::Stdout { line }) => frontend.emit(Output::Stdout(format!("{line}\n"))),
                Ok(Event::Stderr { line }) => frontend.emit(Output::Stderr(format!("{line}\n"))),
                Ok(Event::Done { result }) => return result,
                Ok(Event::Untyped { why }) => worker.untyped(&why),
                Ok(_) => {}
                Err(_) => return Err(self.worker_gone()),
            }
        }
    }

    /// The worker died: forget it (the next Rust cell starts another) and say what that cost.
    fn worker_gone(&mut self) -> CommandError {
        self.worker = None;
        self.synced.clear();
        self.fresh = true;
        CommandError::new(
            "EvaluatorRestarted",
            "the Rust evaluator's process ended, so the Rust variables of earlier cells are gone (helper variables are all kept); the next Rust cell starts a new one",
        )
    }

    /// The helper variables `code` names whose copy in Rust is missing or out of date.
    fn to_copy<'a>(&self, vars: &'a Vars, typed: bool, code: &str) -> Vec<(&'a str, &'a Value)> {
        static NULL: Value = Value::Null;
        let response = (typed && vars.get("response").is_none()).then_some(("response", &NULL));
        vars.iter()
            .map(|(n, v)| (n.as_str(), v))
            .chain(response)
            .filter(|(name, value)| {
                prelude::mentions(code, name)
                    && self.synced.get(*name) != Some(&synced_text(value, typed))
            })
            .collect()
    }

    /// Remember these copies as made.
    fn mark_synced(&mut self, copies: &[(&str, &Value)], typed: bool) {
        for (name, value) in copies {
            self.synced
                .insert(name.to_string(), synced_text(value, typed));
        }
    }

    /// Rust completions from evcxr. The first one may start the worker and wait for it a
    /// little; none while it is still starting after that.
    pub fn complete(&mut self, code: &str, cursor: usize) -> Option<Completion> {
        self.prepare();
        let worker = self.worker.as_mut()?;
        if !worker.ready {
            let deadline = std::time::Instant::now() + COMPLETION_START_WAIT;
            loop {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                match worker.events.recv_timeout(left) {
                    Ok(Event::Ready { without_serde_json }) => {
                        worker.ready = true;
                        worker.typed = without_serde_json.is_none();
                        self.without_serde_json = without_serde_json;
                        break;
                    }
                    Ok(Event::StartFailed { .. }) | Err(RecvTimeoutError::Disconnected) => {
                        self.worker = None;
                        return None;
                    }
                    Ok(_) => {}
                    Err(RecvTimeoutError::Timeout) => return None,
                }
            }
        }
        let worker = self.worker.as_mut()?;
        let request = Request::Complete {
            code: code.to_string(),
            cursor,
        };
        worker.send(&request).ok()?;
        loop {
            match worker.events.recv_timeout(COMPLETION_WAIT) {
                Ok(Event::Completions { found }) => return found,
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }
}

/// A typed `let` for each copy (`response` is `Value::Null` until a request answers), and
/// `name: Type` of each. A variable the cell does not name is copied when one does: a first
/// `println!` then has no `let` for evcxr to analyse and keep.
fn prelude_of(copies: &[(&str, &Value)], typed: bool) -> (String, Vec<String>) {
    let mut prelude = String::new();
    let mut copied = Vec::new();
    for (name, value) in copies {
        if let Some(line) = prelude::binding(name, value, typed) {
            prelude.push_str(&line);
            let kind = if typed {
                rust_type(name, value)
            } else {
                "String"
            };
            copied.push(format!("{name}: {kind}"));
        }
    }
    (prelude, copied)
}

/// What is remembered of a copied variable: its JSON text and the type it was given.
fn synced_text(value: &Value, typed: bool) -> String {
    format!("{typed}:{value}")
}

impl Worker {
    /// serde_json turned out unavailable: helper variables are copied as Strings from now on.
    fn untyped(&mut self, why: &str) {
        tracing::warn!("Rust cells without serde_json: {why}");
        self.typed = false;
    }

    fn send(&mut self, request: &Request) -> std::io::Result<()> {
        self.stdin.write_all(encode(request).as_bytes())?;
        self.stdin.flush()
    }
}

fn unavailable(message: String) -> CommandError {
    CommandError::new(
        "RustUnavailable",
        format!("the Rust evaluator could not start: {message}"),
    )
    .hint("Rust cells need cargo and rustc on PATH; helper commands still work")
}

/// Only `text/plain` is the trailing expression's value (execute_result), unless it is `()`;
/// anything richer was displayed by the cell (display_data).
fn emit_content(content: Map<String, Value>, frontend: &mut dyn Frontend) {
    if content.is_empty() {
        return;
    }
    if content.len() == 1 && content.contains_key("text/plain") {
        // A cell ending in a loop or a `match` of statements has the value `()`: nothing.
        if content.get("text/plain").and_then(Value::as_str) == Some("()") {
            return;
        }
        frontend.emit(Output::Value(content));
    } else {
        frontend.emit(Output::Rich(content));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy_code(cells: &RustCells, vars: &Vars, typed: bool, code: &str) -> (String, Vec<String>) {
        prelude_of(&cells.to_copy(vars, typed, code), typed)
    }

    fn mark(cells: &mut RustCells, vars: &Vars, typed: bool, code: &str) {
        let copies = cells.to_copy(vars, typed, code);
        cells.mark_synced(&copies, typed);
    }

    #[test]
    fn prelude_copies_changed_helper_variables_typed() {
        let mut vars = Vars::default();
        vars.set_str("access_token", "a\"b");
        vars.set("status", Value::from(200));
        vars.set_str("type", "reserved word");
        let mut cells = RustCells::new(RustStart::OnFirstUse, PathBuf::from("smartnb"));
        assert!(cells.worker().is_none(), "nothing starts on first use");
        let all = "access_token; status; r#type; type; response;";
        let (prelude, copied) = copy_code(&cells, &vars, true, all);
        assert!(
            prelude.contains("let access_token: String = \"a\\\"b\".to_string();"),
            "{prelude}"
        );
        assert!(prelude.contains("let status: u16 = 200;"), "{prelude}");
        assert!(
            prelude.contains("let response: serde_json::Value = smartnb_json(\"null\")"),
            "{prelude}"
        );
        assert!(!prelude.contains("let type"));
        assert_eq!(
            copied,
            [
                "access_token: String",
                "status: u16",
                "response: serde_json::Value"
            ]
        );
        mark(&mut cells, &vars, true, all);
        assert_eq!(copy_code(&cells, &vars, true, all).0, "");
        vars.set_str("access_token", "new");
        assert_eq!(
            copy_code(&cells, &vars, true, all),
            (
                "let access_token: String = \"new\".to_string();\n".to_string(),
                vec!["access_token: String".to_string()]
            )
        );
        // Without serde_json everything is text, and is copied again as text.
        let (untyped, _) = copy_code(&cells, &vars, false, all);
        assert!(untyped.contains("let status: String = \"200\".to_string();"));
        assert!(!untyped.contains("response"));
    }

    #[test]
    fn only_the_variables_a_cell_names_are_copied_and_the_rest_wait() {
        let mut vars = Vars::default();
        vars.set_str("access_token", "t1");
        vars.set("status", Value::from(200));
        let mut cells = RustCells::new(RustStart::OnFirstUse, PathBuf::from("smartnb"));
        let hello = "println!(\"hi\");";
        assert_eq!(
            copy_code(&cells, &vars, true, hello),
            (String::new(), vec![])
        );
        mark(&mut cells, &vars, true, hello);
        // Named in a format string: copied, and only that one.
        let uses_status = "println!(\"{status}\");";
        let (prelude, copied) = copy_code(&cells, &vars, true, uses_status);
        assert_eq!(prelude, "let status: u16 = 200;\n");
        assert_eq!(copied, ["status: u16"]);
        mark(&mut cells, &vars, true, uses_status);
        assert_eq!(copy_code(&cells, &vars, true, uses_status).0, "");
        // The token was never copied: the first cell naming it gets it.
        let (prelude, _) = copy_code(&cells, &vars, true, "access_token.len()");
        assert_eq!(prelude, "let access_token: String = \"t1\".to_string();\n");
    }

    #[test]
    fn a_unit_value_is_not_shown() {
        let mut shown = crate::session::Collect::default();
        let unit: Map<String, Value> = [("text/plain".to_string(), Value::from("()"))]
            .into_iter()
            .collect();
        emit_content(unit, &mut shown);
        assert!(shown.0.is_empty(), "{:?}", shown.0);
        let value: Map<String, Value> = [("text/plain".to_string(), Value::from("42"))]
            .into_iter()
            .collect();
        emit_content(value.clone(), &mut shown);
        assert_eq!(shown.0, [Output::Value(value)]);
    }
}
