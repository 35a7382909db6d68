//! `smartnb repl`: the terminal front end (rustyline), thin over the session.
//!
//! Interactive: history in the user's data directory, completion, hints, multi-line input
//! with the kernel's is_complete rules, Ctrl-C cancels the line or the running request,
//! Ctrl-D exits. Piped: reads cells line by line, prints plain text, exits 0 at the end
//! (or 1 at the first failure with `--fail-fast`).

use std::borrow::Cow;
use std::io::{BufRead, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Editor};

use crate::render::terminal::{render, Style};
use crate::session::vars::Vars;
use crate::session::{
    complete, is_complete, spec, Completeness, Frontend, Outcome, Output, Session,
};

/// Options of `smartnb repl`.
#[derive(Debug, Clone, Default)]
pub struct ReplOptions {
    /// With piped input, stop at the first failing cell and exit 1.
    pub fail_fast: bool,
}

struct Printer {
    style: Style,
}

impl Frontend for Printer {
    fn emit(&mut self, output: Output) {
        // Streams from Rust cells pass through exactly as printed, each to its own stream.
        match &output {
            Output::Stdout(text) => {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(text.as_bytes());
                let _ = out.flush();
            }
            Output::Stderr(text) => {
                let mut err = std::io::stderr().lock();
                let _ = err.write_all(text.as_bytes());
                let _ = err.flush();
            }
            _ => {
                let text = render(&output, self.style);
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{text}");
                let _ = out.flush();
            }
        }
    }

    /// The terminal keeps the status as a line on stderr: the output that follows shows
    /// the step is over.
    fn progress(&mut self, note: Option<&str>) {
        if let Some(note) = note {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{note}");
            let _ = err.flush();
        }
    }

    fn ask(&mut self, prompt: &str, secret: bool) -> Option<String> {
        if !std::io::stdin().is_terminal() {
            return None;
        }
        let mut editor = rustyline::DefaultEditor::new().ok()?;
        if secret {
            // Echo is not hidden by rustyline; say so rather than pretend.
            eprintln!(
                "(the password will be visible as you type; the demo password is demo-password)"
            );
        }
        editor.readline(prompt).ok()
    }
}

/// Completion, hints and multi-line validation for the editor.
#[derive(rustyline::Helper)]
struct ReplHelper {
    vars: Arc<Mutex<Vars>>,
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let vars = self.vars.lock().unwrap_or_else(|e| e.into_inner());
        let found = complete::complete(&vars, line, pos);
        let pairs = found
            .matches
            .into_iter()
            .map(|m| Pair {
                display: m.clone(),
                replacement: m,
            })
            .collect();
        Ok((found.start, pairs))
    }
}

impl Hinter for ReplHelper {
    type Hint = String;

    fn hint(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> Option<String> {
        if pos != line.len() || !line.ends_with(' ') || line.contains('\n') {
            return None;
        }
        let mut words = line.split_whitespace();
        let name = words.next()?.trim_start_matches('%');
        if words.next().is_some() {
            return None;
        }
        let usage = spec::spec(name)?.usage;
        usage
            .strip_prefix(name)
            .map(|rest| rest.trim_start().to_string())
    }
}

impl Highlighter for ReplHelper {
    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        Cow::Owned(format!("\x1b[2m{hint}\x1b[0m"))
    }
}

impl Validator for ReplHelper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        Ok(match is_complete(ctx.input()) {
            Completeness::Complete => ValidationResult::Valid(None),
            Completeness::Incomplete => ValidationResult::Incomplete,
        })
    }
}

/// Run the REPL until Ctrl-D or end of input; the process exit code.
pub fn run(mut session: Session, options: ReplOptions) -> i32 {
    let running = Arc::new(AtomicBool::new(false));
    let interactive = std::io::stdin().is_terminal();
    install_interrupt_handler(&session, running.clone(), interactive);
    if interactive {
        interactive_loop(&mut session, &running)
    } else {
        piped_loop(&mut session, &running, &options)
    }
}

/// Ctrl-C as a stream of events, caught from the moment this returns.
#[cfg(unix)]
fn ctrl_c_events() -> std::io::Result<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
}

/// Ctrl-C as a stream of events, caught from the moment this returns.
#[cfg(windows)]
fn ctrl_c_events() -> std::io::Result<tokio::signal::windows::CtrlC> {
    tokio::signal::windows::ctrl_c()
}

fn install_interrupt_handler(session: &Session, running: Arc<AtomicBool>, interactive: bool) {
    let interrupter = session.interrupter();
    let (ready, installed) = std::sync::mpsc::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("smartnb-sigint".into())
        .spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                let Ok(mut events) = ctrl_c_events() else {
                    return;
                };
                let _ = ready.send(());
                while events.recv().await.is_some() {
                    if running.load(Ordering::SeqCst) {
                        interrupter.interrupt();
                    } else if !interactive {
                        std::process::exit(130);
                    }
                }
            });
        });
    // Wait until the handler is in place: rustyline saves the SIGINT action it finds when
    // it reads a line and puts it back afterwards, so a handler installed while the first
    // line is being read would be replaced by the default action, and the next Ctrl-C
    // during a request would kill the REPL instead of interrupting the request.
    if spawned.is_err() || installed.recv().is_err() {
        eprintln!("smartnb: Ctrl-C will not interrupt requests (no signal handler)");
    }
}

fn banner(session: &Session) -> String {
    let server = match session.embedded_url() {
        Some(url) => format!("the embedded SMART server runs on {url}"),
        None => {
            "the embedded SMART server starts on first use (http://localhost:9000, or a free port)"
                .to_string()
        }
    };
    format!(
        "smartnb {} — SMART on FHIR from the command line; {server}.\nType `help` for the helper commands, Tab to complete, Ctrl-D to leave.",
        env!("CARGO_PKG_VERSION")
    )
}

fn execute(session: &mut Session, running: &AtomicBool, cell: &str, style: Style) -> Outcome {
    running.store(true, Ordering::SeqCst);
    let outcome = session.execute(cell, &mut Printer { style });
    running.store(false, Ordering::SeqCst);
    outcome
}

fn history_path() -> Option<std::path::PathBuf> {
    let dir = dirs::data_dir()?.join("smartnb");
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir.join("history.txt"))
}

fn interactive_loop(session: &mut Session, running: &AtomicBool) -> i32 {
    println!("{}", banner(session));
    let vars = Arc::new(Mutex::new(session.vars().clone()));
    let mut editor: Editor<ReplHelper, rustyline::history::DefaultHistory> = match Editor::new() {
        Ok(editor) => editor,
        Err(e) => {
            eprintln!(
                "smartnb: cannot open the terminal editor ({e}); reading plain lines instead"
            );
            return piped_loop(session, running, &ReplOptions::default());
        }
    };
    editor.set_helper(Some(ReplHelper { vars: vars.clone() }));
    let history = history_path();
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    loop {
        match editor.readline("smartnb> ") {
            Ok(cell) => {
                if cell.trim().is_empty() {
                    continue;
                }
                let _ = editor.add_history_entry(cell.as_str());
                if let Some(path) = &history {
                    let _ = editor.append_history(path);
                }
                execute(session, running, &cell, Style::Color);
                *vars.lock().unwrap_or_else(|e| e.into_inner()) = session.vars().clone();
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => return 0,
            Err(e) => {
                eprintln!("smartnb: cannot read input: {e}");
                return 1;
            }
        }
    }
}

fn piped_loop(session: &mut Session, running: &AtomicBool, options: &ReplOptions) -> i32 {
    let stdin = std::io::stdin();
    let mut cell = String::new();
    let mut failed = false;
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        cell.push_str(&line);
        cell.push('\n');
        if is_complete(&cell) == Completeness::Incomplete {
            continue;
        }
        let outcome = execute(session, running, &cell, Style::Plain);
        cell.clear();
        if outcome == Outcome::Failed {
            failed = true;
            if options.fail_fast {
                return 1;
            }
        }
    }
    if !cell.trim().is_empty() {
        // The input ended inside a quote or after a backslash: run it so the error shows.
        if execute(session, running, &cell, Style::Plain) == Outcome::Failed {
            failed = true;
        }
    }
    i32::from(failed && options.fail_fast)
}
