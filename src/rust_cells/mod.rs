//! Rust cells: the session's side of the evcxr worker (cargo feature "rust").
//!
//! evcxr runs in a child process of ours (`smartnb rust-worker`, see [`worker`]) that
//! starts in the background, so helper cells and kernel_info never wait for it and the
//! kernel itself stays small. Output streams back live while a cell runs; an interrupt
//! asks the worker to stop evcxr's evaluation process, which evcxr restarts on the next cell
//! (Rust variables are lost then, helper variables never are).

mod diagnostics;
pub mod protocol;
pub mod worker;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use crossbeam_channel::{select, Receiver};
use serde_json::{Map, Value};

use crate::session::complete::Completion;
use crate::session::vars::{as_text, Vars};
use crate::session::{CommandError, Frontend, Interrupter, Output, RustStart};
use protocol::{encode, Event, Request};

/// The subcommand that runs [`worker::serve`].
pub const WORKER_SUBCOMMAND: &str = "rust-worker";

/// How long a completion request may wait for the worker.
const COMPLETION_WAIT: Duration = Duration::from_secs(3);

/// The worker process and what it has been told of the session's variables.
pub struct RustCells {
    program: PathBuf,
    worker: Option<Worker>,
    synced: HashMap<String, String>,
}

struct Worker {
    child: Child,
    stdin: ChildStdin,
    events: Receiver<Event>,
    ready: bool,
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
        };
        if start == RustStart::Background {
            // A failure to start is reported by the first Rust cell, which tries again.
            let _ = cells.begin();
        }
        cells
    }

    fn begin(&mut self) -> Result<(), CommandError> {
        let mut command = Command::new(&self.program);
        command
            .arg(WORKER_SUBCOMMAND)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
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
        });
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
        self.worker
            .as_mut()
            .ok_or_else(|| unavailable("the Rust worker is not running".into()))
    }

    /// Wait until the starting worker is ready, has failed, or the cell is interrupted.
    fn wait_started(&mut self, interrupter: &Interrupter) -> Result<(), CommandError> {
        let interrupts = interrupter.watch();
        while let Some(worker) = self.worker.as_mut() {
            select! {
                recv(worker.events) -> event => match event {
                    Ok(Event::Ready) => {
                        worker.ready = true;
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
        vars: &Vars,
        frontend: &mut dyn Frontend,
        interrupter: &Interrupter,
    ) -> Result<(), CommandError> {
        let prelude = self.prelude(vars);
        let result = if prelude.is_empty() {
            self.run(code, 0, frontend, interrupter)
        } else if code.trim_start().starts_with(':') {
            // evcxr runs `:` commands before any code of their cell, so the copies go first.
            self.run(&prelude, 0, frontend, interrupter).map_err(|e| {
                e.hint("this happened while copying helper variables into Rust; `vars` lists them")
            })?;
            self.mark_synced(vars);
            self.run(code, 0, frontend, interrupter)
        } else {
            let lines = prelude.lines().count();
            self.run(&format!("{prelude}{code}"), lines, frontend, interrupter)
        };
        match result {
            Ok(content) => {
                self.mark_synced(vars);
                emit_content(content, frontend);
                Ok(())
            }
            Err(e) => {
                if e.kind == "Interrupted" || e.kind == "EvaluatorRestarted" {
                    // evcxr starts a fresh process: every variable must be copied in again.
                    self.synced.clear();
                }
                Err(e)
            }
        }
    }

    /// Send one cell to the worker and relay what comes back until it is done.
    fn run(
        &mut self,
        code: &str,
        prelude_lines: usize,
        frontend: &mut dyn Frontend,
        interrupter: &Interrupter,
    ) -> Result<Map<String, Value>, CommandError> {
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
                Ok(_) => {}
                Err(_) => return Err(self.worker_gone()),
            }
        }
    }

    /// The worker died: forget it (the next Rust cell starts another) and say what that cost.
    fn worker_gone(&mut self) -> CommandError {
        self.worker = None;
        self.synced.clear();
        CommandError::new(
            "EvaluatorRestarted",
            "the Rust evaluator's process ended, so the Rust variables of earlier cells are gone (helper variables are all kept); the next Rust cell starts a new one",
        )
    }

    /// `let NAME: String = "…".to_string();` for each helper variable that changed.
    fn prelude(&self, vars: &Vars) -> String {
        vars.iter()
            .filter(|(name, _)| is_rust_identifier(name))
            .filter(|(name, value)| self.synced.get(*name) != Some(&as_text(value)))
            .map(|(name, value)| {
                format!("let {name}: String = {:?}.to_string();\n", as_text(value))
            })
            .collect()
    }

    fn mark_synced(&mut self, vars: &Vars) {
        for (name, value) in vars.iter() {
            self.synced.insert(name.clone(), as_text(value));
        }
    }

    /// Rust completions from evcxr (none until the evaluator is ready).
    pub fn complete(&mut self, code: &str, cursor: usize) -> Option<Completion> {
        let worker = self.worker.as_mut().filter(|w| w.ready)?;
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

impl Worker {
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

/// Only `text/plain` is the trailing expression's value (execute_result); anything richer
/// was displayed by the cell (display_data).
fn emit_content(content: Map<String, Value>, frontend: &mut dyn Frontend) {
    if content.is_empty() {
        return;
    }
    if content.len() == 1 && content.contains_key("text/plain") {
        frontend.emit(Output::Value(content));
    } else {
        frontend.emit(Output::Rich(content));
    }
}

fn is_rust_identifier(name: &str) -> bool {
    const KEYWORDS: &[&str] = &[
        "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum",
        "extern", "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod",
        "move", "mut", "pub", "ref", "return", "self", "static", "struct", "super", "trait",
        "true", "type", "unsafe", "use", "where", "while", "abstract", "become", "box", "do",
        "final", "macro", "override", "priv", "try", "typeof", "unsized", "virtual", "yield",
    ];
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name != "_"
        && !KEYWORDS.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prelude_copies_changed_helper_variables_as_strings() {
        let mut vars = Vars::default();
        vars.set_str("access_token", "a\"b");
        vars.set("status", Value::from(200));
        vars.set_str("type", "reserved word");
        let mut cells = RustCells::new(RustStart::OnFirstUse, PathBuf::from("smartnb"));
        let prelude = cells.prelude(&vars);
        assert!(
            prelude.contains("let access_token: String = \"a\\\"b\".to_string();"),
            "{prelude}"
        );
        assert!(prelude.contains("let status: String = \"200\".to_string();"));
        assert!(!prelude.contains("let type"));
        cells.mark_synced(&vars);
        assert_eq!(cells.prelude(&vars), "");
        vars.set_str("access_token", "new");
        assert_eq!(
            cells.prelude(&vars),
            "let access_token: String = \"new\".to_string();\n"
        );
    }
}
