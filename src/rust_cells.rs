//! Rust cells: the evcxr bridge behind the session (cargo feature "rust").
//!
//! The evaluator starts in the background so helper cells and kernel_info never wait for
//! it. Each Rust cell runs on a worker thread while the session thread streams the child's
//! stdout and stderr live and watches for interrupts; an interrupt kills evcxr's child
//! process, which evcxr restarts on the next cell (Rust variables are lost then, helper
//! variables never are).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{select, Receiver};
use evcxr::{CommandContext, CompilationError, EvalContextOutputs};
use serde_json::{Map, Value};

use crate::session::complete::Completion;
use crate::session::vars::{as_text, Vars};
use crate::session::{CommandError, Frontend, Interrupter, Output, RustStart};

type Started = Result<(CommandContext, EvalContextOutputs), String>;

struct Ready {
    context: Arc<Mutex<CommandContext>>,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
}

enum Evaluator {
    NotStarted,
    Starting(JoinHandle<Started>),
    Ready(Ready),
    Failed(String),
}

/// The evcxr evaluator and what it has been told of the session's variables.
pub struct RustCells {
    evaluator: Evaluator,
    synced: HashMap<String, String>,
}

impl RustCells {
    /// An evaluator that starts now in the background, or on first use.
    pub fn new(start: RustStart) -> Self {
        let mut cells = RustCells {
            evaluator: Evaluator::NotStarted,
            synced: HashMap::new(),
        };
        if start == RustStart::Background {
            cells.begin();
        }
        cells
    }

    fn begin(&mut self) {
        let spawned = std::thread::Builder::new()
            .name("smartnb-evcxr-start".into())
            .spawn(|| CommandContext::new().map_err(|e| e.to_string()));
        self.evaluator = match spawned {
            Ok(handle) => Evaluator::Starting(handle),
            Err(e) => Evaluator::Failed(e.to_string()),
        };
    }

    /// The ready evaluator, waiting for it (with a note on stderr) if it is still starting.
    fn ready(&mut self, frontend: &mut dyn Frontend) -> Result<&Ready, CommandError> {
        if matches!(self.evaluator, Evaluator::NotStarted) {
            self.begin();
        }
        if matches!(self.evaluator, Evaluator::Starting(_)) {
            frontend.emit(Output::Stderr("starting the Rust evaluator…\n".into()));
            let Evaluator::Starting(handle) =
                std::mem::replace(&mut self.evaluator, Evaluator::NotStarted)
            else {
                unreachable!("checked just above")
            };
            self.evaluator = match handle.join() {
                Ok(Ok((context, outputs))) => Evaluator::Ready(Ready {
                    context: Arc::new(Mutex::new(context)),
                    stdout: outputs.stdout,
                    stderr: outputs.stderr,
                }),
                Ok(Err(message)) => Evaluator::Failed(message),
                Err(_) => Evaluator::Failed("the evaluator's start-up thread panicked".into()),
            };
        }
        match &self.evaluator {
            Evaluator::Ready(ready) => Ok(ready),
            Evaluator::Failed(message) => Err(CommandError::new(
                "RustUnavailable",
                format!("the Rust evaluator could not start: {message}"),
            )
            .hint("Rust cells need cargo and rustc on PATH; helper commands still work")),
            _ => Err(CommandError::new(
                "RustUnavailable",
                "the Rust evaluator is not running",
            )),
        }
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
        if !prelude.is_empty() {
            run(self.ready(frontend)?, &prelude, frontend, interrupter).map_err(|e| {
                e.hint("this happened while copying helper variables into Rust; `vars` lists them")
            })?;
            self.mark_synced(vars);
        }
        let ready = self.ready(frontend)?;
        match run(ready, code, frontend, interrupter) {
            Ok(outputs) => {
                emit_content(outputs, frontend);
                Ok(())
            }
            Err(e) => {
                if e.kind == "Interrupted" || e.kind == "EvaluatorRestarted" {
                    // evcxr starts a fresh child: every variable must be copied in again.
                    self.synced.clear();
                }
                Err(e)
            }
        }
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

    /// Rust completions from evcxr (empty until the evaluator is ready).
    pub fn complete(&mut self, code: &str, cursor: usize) -> Option<Completion> {
        let Evaluator::Ready(ready) = &self.evaluator else {
            return None;
        };
        let mut context = ready.context.lock().ok()?;
        let found = context.completions(code, cursor).ok()?;
        let mut matches: Vec<String> = found.completions.into_iter().map(|c| c.code).collect();
        matches.dedup();
        Some(Completion {
            start: found.start_offset,
            end: found.end_offset,
            matches,
        })
    }
}

/// Execute on a worker thread, forwarding output live and killing the child on interrupt.
fn run(
    ready: &Ready,
    code: &str,
    frontend: &mut dyn Frontend,
    interrupter: &Interrupter,
) -> Result<Map<String, Value>, CommandError> {
    let context = ready.context.clone();
    let child = ready
        .context
        .lock()
        .map(|c| c.process_handle())
        .map_err(|_| lost())?;
    let source = code.to_string();
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    std::thread::Builder::new()
        .name("smartnb-evcxr-cell".into())
        .spawn(move || {
            let result = match context.lock() {
                Ok(mut context) => context.execute(&source),
                Err(_) => Err(evcxr::Error::Message(
                    "the evaluator was lost after a crash".into(),
                )),
            };
            let _ = done_tx.send(result);
        })
        .map_err(|e| CommandError::new("RustError", e.to_string()))?;
    let interrupts = interrupter.watch();
    let mut interrupted = false;
    let result = loop {
        select! {
            recv(ready.stdout) -> line => if let Ok(line) = line { frontend.emit(Output::Stdout(format!("{line}\n"))) },
            recv(ready.stderr) -> line => if let Ok(line) = line { frontend.emit(Output::Stderr(format!("{line}\n"))) },
            recv(done_rx) -> result => break result.map_err(|_| lost())?,
            default(Duration::from_millis(50)) => {
                if !interrupted && interrupts.has_changed().unwrap_or(false) {
                    interrupted = true;
                    if let Ok(mut process) = child.lock() {
                        let _ = process.kill();
                    }
                }
            }
        }
    };
    // stderr has its own reader thread in evcxr: give late lines a moment to arrive.
    for (channel, to_stdout) in [(&ready.stdout, true), (&ready.stderr, false)] {
        while let Ok(line) =
            channel.recv_timeout(Duration::from_millis(if to_stdout { 0 } else { 20 }))
        {
            let text = format!("{line}\n");
            frontend.emit(if to_stdout {
                Output::Stdout(text)
            } else {
                Output::Stderr(text)
            });
        }
    }
    match result {
        Ok(outputs) => Ok(outputs.content_by_mime_type.into_iter().map(|(k, v)| (k, Value::String(v))).collect()),
        Err(_) if interrupted => Err(CommandError::new(
            "Interrupted",
            "the Rust cell was interrupted: evcxr's process was stopped, so the Rust variables of earlier cells are gone (helper variables are all kept)",
        )
        .hint("re-run the cells that define the Rust variables you need")),
        Err(evcxr::Error::CompilationErrors(errors)) => Err(compile_error(code, &errors)),
        Err(evcxr::Error::SubprocessTerminated(message)) => Err(CommandError::new(
            "EvaluatorRestarted",
            format!("the Rust cell's process ended ({}); evcxr restarts it, and the Rust variables of earlier cells are gone", message.trim()),
        )),
        Err(e) => Err(CommandError::new("RustError", e.to_string().trim().to_string())),
    }
}

fn lost() -> CommandError {
    CommandError::new("RustError", "the Rust evaluator stopped answering")
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

/// rustc-style text for compile errors, with spans into the cell.
fn compile_error(code: &str, errors: &[CompilationError]) -> CommandError {
    let lines: Vec<&str> = code.lines().collect();
    let mut text = String::new();
    for error in errors {
        let head = match error.code() {
            Some(c) => format!("{}[{c}]: {}", error.level(), error.message()),
            None => format!("{}: {}", error.level(), error.message()),
        };
        text.push_str(&head);
        text.push('\n');
        for spanned in error.spanned_messages() {
            let Some(span) = &spanned.span else { continue };
            let number = span.start_line;
            let source = lines
                .get(number.wrapping_sub(1))
                .copied()
                .unwrap_or_default();
            let width = number.to_string().len();
            let start = span.start_column.max(1);
            let end = if span.end_line == span.start_line {
                span.end_column.max(start + 1)
            } else {
                source.chars().count() + 1
            };
            text.push_str(&format!("{:width$}--> cell:{number}:{start}\n", ""));
            text.push_str(&format!("{:width$} |\n{number} | {source}\n", ""));
            text.push_str(&format!(
                "{:width$} | {}{} {}\n",
                "",
                " ".repeat(start - 1),
                "^".repeat(end - start),
                spanned.label
            ));
        }
        for help in error.help() {
            text.push_str(&format!("help: {help}\n"));
        }
        if let Some(hint) = error.evcxr_extra_hint() {
            text.push_str(&format!("note: {hint}\n"));
        }
    }
    let first = errors
        .first()
        .map(|e| e.message())
        .unwrap_or_else(|| "the cell did not compile".into());
    let mut err = CommandError::new("CompilationError", first);
    err.detail = Some(text.trim_end().to_string());
    err
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
        let mut cells = RustCells::new(RustStart::OnFirstUse);
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
