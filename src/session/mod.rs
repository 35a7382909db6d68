//! The one interpreter behind every front end: a cell in, structured outputs out.
//!
//! REPL, Jupyter kernel and notebook runner all call [`Session::execute`] and render the
//! [`Output`]s it emits. A behaviour that exists in one front end and not the others is a bug.

pub mod args;
mod commands;
pub mod complete;
mod context;
pub mod faults;
pub mod jwt;
pub mod keys;
pub mod output;
pub mod parse;
pub mod spec;
pub mod target;
pub mod vars;
pub mod when;

use std::sync::Arc;

use context::Ctx;
pub use context::{interrupted, Interrupter};
pub use output::{CommandError, Output, Simulated, Table};
use parse::Cell;
pub use parse::{is_complete, Completeness};
use target::Target;
use vars::Vars;

use crate::client::SmartClient;
use crate::server::{Config, RunningServer};

/// Where a session's outputs go, and how it asks the person for a missing value.
pub trait Frontend {
    /// Show one output now.
    fn emit(&mut self, output: Output);
    /// Ask for a value (a password when `secret`); `None` when this front end cannot ask.
    fn ask(&mut self, _prompt: &str, _secret: bool) -> Option<String> {
        None
    }
    /// Show a passing status while a slow step runs (`None`: the step is over, take it
    /// back). Front ends that cannot take it back, and stored notebooks, show nothing.
    fn progress(&mut self, _note: Option<&str>) {}
}

/// Collects outputs in a vector (for tests and the notebook runner).
#[derive(Debug, Default)]
pub struct Collect(pub Vec<Output>);

impl Frontend for Collect {
    fn emit(&mut self, output: Output) {
        self.0.push(output);
    }
}

/// How a cell ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every command succeeded.
    Ok,
    /// A command failed (its error was emitted) and the rest of the cell was skipped.
    Failed,
}

/// When to create the Rust evaluator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RustStart {
    /// Right away, on a background thread (REPL and kernel), so the first Rust cell waits less.
    Background,
    /// When the first Rust cell arrives.
    #[default]
    OnFirstUse,
}

/// Settings for a session.
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    /// How the embedded server starts (its port 9000 falls back to a free one when taken).
    pub server: Config,
    /// When the Rust evaluator starts (ignored in builds without the `rust` feature).
    pub rust: RustStart,
    /// The smartnb binary whose `rust-worker` evaluates Rust cells (default: this program;
    /// tests, whose program is the test harness, name the real binary).
    pub rust_program: Option<std::path::PathBuf>,
}

/// Everything the commands share.
pub(crate) struct State {
    runtime: Arc<tokio::runtime::Runtime>,
    client: SmartClient,
    vars: Vars,
    target: Target,
    embedded: Option<RunningServer>,
    options: SessionOptions,
    interrupter: Interrupter,
    /// Which grant gave the id_token `exchange` or `refresh` last bound, for its nonce check.
    id_token_grant: Option<IdTokenGrant>,
    /// The key pair `keys` made, which signs this session's client assertions.
    client_key: Option<keys::ClientKey>,
    /// What the server said it simulated for the running command's requests, shown
    /// beneath the command's outputs when it ends.
    simulated: Vec<output::Simulated>,
}

/// The id_token a grant returned, and the nonce it should carry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IdTokenGrant {
    /// The token as bound to `$id_token` (a different `$id_token` was set by hand).
    pub token: String,
    /// What its nonce claim should be.
    pub nonce: jwt::NonceExpected,
}

/// The interpreter: variables, target server, embedded server, Rust evaluator.
pub struct Session {
    state: State,
    #[cfg(feature = "rust")]
    rust: crate::rust_cells::RustCells,
}

/// Why a session could not be created.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The async runtime or HTTP client could not start.
    #[error("the session could not start: {0}")]
    Start(String),
}

impl Session {
    /// A session targeting the embedded server (started on first use).
    pub fn new(options: SessionOptions) -> Result<Session, SessionError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("smartnb-session")
            .build()
            .map_err(|e| SessionError::Start(e.to_string()))?;
        let client = SmartClient::new().map_err(|e| SessionError::Start(e.to_string()))?;
        Ok(Session {
            #[cfg(feature = "rust")]
            rust: crate::rust_cells::RustCells::new(
                options.rust,
                options
                    .rust_program
                    .clone()
                    .or_else(|| std::env::current_exe().ok())
                    .unwrap_or_else(|| "smartnb".into()),
            ),
            state: State {
                runtime: Arc::new(runtime),
                client,
                vars: Vars::default(),
                target: Target::Embedded,
                embedded: None,
                options,
                interrupter: Interrupter::default(),
                id_token_grant: None,
                client_key: None,
                simulated: Vec::new(),
            },
        })
    }

    /// Run a cell, emitting outputs as they come.
    pub fn execute(&mut self, cell: &str, frontend: &mut dyn Frontend) -> Outcome {
        let commands = match parse::classify(cell) {
            Ok(Cell::Empty) => return Outcome::Ok,
            Ok(Cell::Helper(commands)) => commands,
            Ok(Cell::Rust(code)) => return self.execute_rust(&code, frontend),
            Err(e) => {
                let hint = match e {
                    parse::ParseError::UnclosedQuote(q) => {
                        format!("close the {q} quote, or escape it with a backslash")
                    }
                    parse::ParseError::TrailingBackslash => {
                        "remove the final backslash, or continue the command on a next line"
                            .to_string()
                    }
                    parse::ParseError::BadVariable(_) => {
                        "variable names are letters, digits and _".to_string()
                    }
                };
                frontend.emit(Output::Error(
                    CommandError::new("ParseError", e.to_string()).hint(hint),
                ));
                return Outcome::Failed;
            }
        };
        for command in commands {
            let mut ctx = Ctx {
                state: &mut self.state,
                frontend,
            };
            let result = commands::run(&mut ctx, &command);
            // Beneath whatever the command showed, above its error (which comes last).
            for simulated in self.state.simulated.drain(..) {
                frontend.emit(Output::Simulated(simulated));
            }
            if let Err(error) = result {
                frontend.emit(Output::Error(error));
                return Outcome::Failed;
            }
        }
        Outcome::Ok
    }

    #[cfg(feature = "rust")]
    fn execute_rust(&mut self, code: &str, frontend: &mut dyn Frontend) -> Outcome {
        let interrupter = self.state.interrupter.clone();
        let mut helpers = RustHelpers {
            state: &mut self.state,
        };
        match self
            .rust
            .execute(code, &mut helpers, frontend, &interrupter)
        {
            Ok(()) => Outcome::Ok,
            Err(mut error) => {
                // A command-like line that is a near-miss of a helper name was most likely
                // meant as that helper: say so above anything Rust has to add.
                if let Some(hint) = helper_hint(code) {
                    error.hint = Some(hint);
                }
                frontend.emit(Output::Error(error));
                Outcome::Failed
            }
        }
    }

    #[cfg(not(feature = "rust"))]
    fn execute_rust(&mut self, code: &str, frontend: &mut dyn Frontend) -> Outcome {
        let mut error = CommandError::new(
            "RustUnavailable",
            "this cell is Rust, and this build of smartnb has no Rust evaluator (it was built without the `rust` cargo feature)",
        );
        error.hint = helper_hint(code).or(Some(
            "rebuild with the default features to run Rust cells; `help` lists the helper commands"
                .into(),
        ));
        frontend.emit(Output::Error(error));
        Outcome::Failed
    }

    /// Whether `cell` is Rust (not helper commands), so a queued copy of it will need the
    /// Rust evaluator.
    pub fn is_rust(cell: &str) -> bool {
        matches!(parse::classify(cell), Ok(Cell::Rust(_)))
    }

    /// Start the Rust evaluator in the background now, because a cell that needs it is
    /// coming (a queued Rust cell); nothing happens when it is running or starting, or in
    /// builds without Rust.
    pub fn prepare_rust(&mut self) {
        #[cfg(feature = "rust")]
        self.rust.prepare();
    }

    /// The Rust worker's process id and start time, while one runs.
    pub fn rust_worker(&self) -> Option<(u32, std::time::SystemTime)> {
        #[cfg(feature = "rust")]
        return self.rust.worker();
        #[cfg(not(feature = "rust"))]
        None
    }

    /// Run a cell and return its outputs.
    pub fn collect(&mut self, cell: &str) -> Vec<Output> {
        let mut sink = Collect::default();
        self.execute(cell, &mut sink);
        sink.0
    }

    /// A handle that cancels the running command from another thread.
    pub fn interrupter(&self) -> Interrupter {
        self.state.interrupter.clone()
    }

    /// The session's variables.
    pub fn vars(&self) -> &Vars {
        &self.state.vars
    }

    /// The embedded server's base URL, when it is running.
    pub fn embedded_url(&self) -> Option<&str> {
        self.state.embedded.as_ref().map(|s| s.base_url.as_str())
    }

    /// Completions for `code` at byte offset `cursor`: helper words on helper lines, evcxr's
    /// completions in Rust cells (once the evaluator is ready).
    pub fn complete(&mut self, code: &str, cursor: usize) -> complete::Completion {
        let helper = complete::complete(&self.state.vars, code, cursor);
        #[cfg(feature = "rust")]
        if matches!(parse::classify(code), Ok(Cell::Rust(_))) {
            // A cell still being typed may become a helper (`regi` → `register`): helper
            // matches for the same word come first, Rust's follow.
            if let Some(mut rust) = self.rust.complete(code, cursor) {
                if helper.matches.is_empty() || helper.start != rust.start {
                    return if helper.matches.is_empty() {
                        rust
                    } else {
                        helper
                    };
                }
                rust.matches.retain(|m| !helper.matches.contains(m));
                let mut merged = helper;
                merged.matches.extend(rust.matches);
                return merged;
            }
        }
        helper
    }

    /// Help for the command under the cursor, for inspect (Shift-Tab). Inspecting Rust
    /// text starts the Rust evaluator in the background: Rust cells are coming.
    pub fn inspect(&mut self, code: &str, cursor: usize) -> Option<String> {
        if Session::is_rust(code) {
            self.prepare_rust();
        }
        complete::inspect(code, cursor)
    }
}

/// The session as a Rust cell sees it: variables to copy, and `smart("…")` to run.
#[cfg(feature = "rust")]
struct RustHelpers<'a> {
    state: &'a mut State,
}

#[cfg(feature = "rust")]
impl crate::rust_cells::Helpers for RustHelpers<'_> {
    fn vars(&self) -> &Vars {
        &self.state.vars
    }

    fn run(&mut self, command: &str) -> Result<serde_json::Value, CommandError> {
        let commands =
            match parse::classify(command) {
                Ok(Cell::Helper(commands)) => commands,
                Ok(Cell::Empty) => return Err(CommandError::new(
                    "NotAHelper",
                    "smart(\"\") has no command",
                )
                .hint("give it one helper command, e.g. smart(\"fetch Patient/smart-1288992\")")),
                Ok(Cell::Rust(_)) => {
                    return Err(CommandError::new(
                        "NotAHelper",
                        format!("`{}` is not a helper command", command.trim()),
                    )
                    .hint(
                        helper_hint(command)
                            .unwrap_or_else(|| "`help` lists the helper commands".into()),
                    ))
                }
                Err(e) => return Err(CommandError::new("ParseError", e.to_string())),
            };
        let mut shown = Collect::default();
        for command in commands {
            let mut ctx = Ctx {
                state: &mut *self.state,
                frontend: &mut shown,
            };
            let result = commands::run(&mut ctx, &command);
            self.state.simulated.clear();
            result?;
        }
        let status = shown.0.iter().rev().find_map(|output| match output {
            Output::Status(code) => Some(*code),
            _ => None,
        });
        let json = |output: &Output| match output {
            Output::Json(value) => Some(value.clone()),
            _ => None,
        };
        let body = shown.0.iter().rev().find_map(json);
        if let Some(code) = status.filter(|code| *code >= 400) {
            // In Rust an error answer is an Err, not a value to be checked by hand.
            let detail = body
                .as_ref()
                .and_then(|b| {
                    b.pointer("/issue/0/diagnostics")
                        .or_else(|| b.get("error_description"))
                        .or_else(|| b.get("error"))
                })
                .and_then(serde_json::Value::as_str)
                .map(|d| format!(": {d}"))
                .unwrap_or_default();
            return Err(CommandError::new(
                "HttpError",
                format!("`{}` was answered with HTTP {code}{detail}", command.trim()),
            )
            .hint("$response and $status hold the answer"));
        }
        let table = shown.0.into_iter().rev().find_map(|output| match output {
            Output::Table(table) => table.json,
            _ => None,
        });
        Ok(body.or(table).unwrap_or(serde_json::Value::Null))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(server) = self.state.embedded.take() {
            let runtime = self.state.runtime.clone();
            runtime.block_on(server.shutdown());
        }
    }
}

/// "Did you mean `register`?" when a cell that went to Rust is one word a single edit from
/// a helper command's name (a line of several words never reaches Rust: parse sends it to
/// the helpers). A short or distant name (a lost `s` or `sets`) earns no hint.
fn helper_hint(code: &str) -> Option<String> {
    let line = code.lines().map(str::trim).find(|l| !l.is_empty())?;
    let near = parse::near_helper(line)?;
    Some(format!(
        "did you mean the helper command `{near}`? `help` lists them all"
    ))
}
