//! `smartnb repl`: the terminal front end (rustyline), thin over the session.
//!
//! Interactive: history in the user's data directory, completion (a second Tab lists the
//! candidates), hints, multi-line input with the kernel's is_complete rules under a `...> `
//! prompt, Ctrl-C cancels the line, the running request or a question, Ctrl-D exits.
//! Piped: reads cells line by line, prints plain text, names each failing line on stderr
//! and stops there with exit status 1 (`--keep-going` runs every line and exits 0).

mod piped;
mod printer;

use std::borrow::Cow;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{CompletionType, Config, Context, Editor};

use crate::render::terminal::Style;
use crate::session::vars::Vars;
use crate::session::{complete, is_complete, spec, Completeness, Outcome, Session};
use piped::piped_loop;
use printer::Printer;

/// The prompt for a new cell.
const PROMPT: &str = "smartnb> ";
/// The prompt for the next line of a cell that is not finished (an open quote, a trailing
/// `\`, an open bracket).
const CONTINUATION: &str = "...> ";

/// Options of `smartnb repl`.
#[derive(Debug, Clone, Default)]
pub struct ReplOptions {
    /// With piped input, run every line even after a failure (each is still named on
    /// stderr) and exit 0; without it the first failure stops the run with exit status 1.
    pub keep_going: bool,
}

/// Completion and hints for the editor.
#[derive(rustyline::Helper)]
struct ReplHelper {
    vars: Arc<Mutex<Vars>>,
    /// The lines of the unfinished cell above the one being edited.
    pending: Arc<Mutex<String>>,
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
        // A continuation line completes as part of its cell (`--user` after `token \`).
        let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let cell = format!("{pending}{line}");
        let found = complete::complete(&vars, &cell, pending.len() + pos);
        let start = found.start.saturating_sub(pending.len());
        let pairs = found
            .matches
            .into_iter()
            .map(|m| Pair {
                display: m.clone(),
                replacement: m,
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for ReplHelper {
    type Hint = String;

    fn hint(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> Option<String> {
        if pos != line.len() || !line.ends_with(' ') || line.contains('\n') {
            return None;
        }
        if !self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
        {
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

/// Lines are gathered into cells by the loop, under the continuation prompt, not here.
impl Validator for ReplHelper {}

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

/// Run one cell with `running` set, so Ctrl-C interrupts it rather than the REPL.
fn execute(
    session: &mut Session,
    running: &AtomicBool,
    cell: &str,
    mut printer: Printer,
) -> Outcome {
    running.store(true, Ordering::SeqCst);
    let outcome = session.execute(cell, &mut printer);
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
    let pending = Arc::new(Mutex::new(String::new()));
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .build();
    let mut editor: Editor<ReplHelper, rustyline::history::DefaultHistory> =
        match Editor::with_config(config) {
            Ok(editor) => editor,
            Err(e) => {
                eprintln!(
                    "smartnb: cannot open the terminal editor ({e}); reading plain lines instead"
                );
                return piped_loop(session, running, &ReplOptions { keep_going: true });
            }
        };
    editor.set_helper(Some(ReplHelper {
        vars: vars.clone(),
        pending: pending.clone(),
    }));
    let history = history_path();
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    let set_pending = |text: &str| {
        *pending.lock().unwrap_or_else(|e| e.into_inner()) = text.to_string();
    };
    let mut cell = String::new();
    loop {
        let prompt = if cell.is_empty() {
            PROMPT
        } else {
            CONTINUATION
        };
        match editor.readline(prompt) {
            Ok(line) => {
                if cell.is_empty() && line.trim().is_empty() {
                    continue;
                }
                cell.push_str(&line);
                if is_complete(&cell) == Completeness::Incomplete {
                    cell.push('\n');
                    set_pending(&cell);
                    continue;
                }
                set_pending("");
                let _ = editor.add_history_entry(cell.as_str());
                if let Some(path) = &history {
                    let _ = editor.append_history(path);
                }
                execute(session, running, &cell, Printer::new(Style::Color, None));
                cell.clear();
                *vars.lock().unwrap_or_else(|e| e.into_inner()) = session.vars().clone();
            }
            Err(ReadlineError::Interrupted) => {
                // Ctrl-C drops the line, and the unfinished cell above it.
                cell.clear();
                set_pending("");
            }
            Err(ReadlineError::Eof) if !cell.is_empty() => {
                // Ctrl-D inside an unfinished cell: run it, so its error says what is open.
                set_pending("");
                execute(session, running, &cell, Printer::new(Style::Color, None));
                cell.clear();
            }
            Err(ReadlineError::Eof) => return 0,
            Err(e) => {
                eprintln!("smartnb: cannot read input: {e}");
                return 1;
            }
        }
    }
}
