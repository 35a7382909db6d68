//! The Rust worker: a child process (`smartnb rust-worker`) that owns evcxr.
//!
//! evcxr keeps rust-analyzer's database of the standard library in the process that
//! evaluates, tens of megabytes. Keeping it here leaves the kernel and the REPL small and
//! instant, and a crash in the evaluator cannot take the session's helper variables with it.
//! The worker reads [`Request`]s on stdin and writes [`Event`]s on stdout; it ends when
//! stdin closes.

use std::io::{BufRead, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{select, Receiver};
use evcxr::{CommandContext, EvalContextOutputs};
use serde_json::{Map, Value};

use super::diagnostics::compile_error;
use super::protocol::{encode, Event, Request};
use super::std_source::StdSource;
use super::{cell_shape, prelude, prelude_crate};
use crate::session::complete::Completion;
use crate::session::CommandError;

/// Run the worker until its stdin closes; the process exit code.
pub fn serve() -> i32 {
    let sysroot = find_rust_std();
    // Before evcxr starts (it sets an environment variable): evcxr's start then costs a
    // second, not several.
    let std_source = StdSource::stub(sysroot.as_deref());
    let (context, outputs) = match CommandContext::new() {
        Ok(started) => started,
        Err(e) => {
            send(&Event::StartFailed {
                message: e.to_string().trim().to_string(),
            });
            return 1;
        }
    };
    let mut context = context;
    let cached = prelude::serde_json_cached();
    if cached {
        let _ = context.execute(":offline 1");
    }
    let requests = read_requests();
    let prelude_dir = prelude_crate::write();
    let mut worker = Worker {
        context: Arc::new(Mutex::new(context)),
        outputs,
        requests,
        setup: Setup::Pending,
        cached,
        analyzer_warm: false,
        std_source,
        setup_code: prelude_dir
            .as_deref()
            .map(prelude_crate::setup_lines)
            .unwrap_or_else(inline_setup_code),
        prelude_dir,
    };
    send(&Event::Ready {
        without_serde_json: None,
    });
    // A cell that needs serde_json or `smart` carries the setup (one build instead of two);
    // one that does not runs as it is, so a first `println!` costs what it costs evcxr.
    // Whatever is still to do (the setup, rust-analyzer's first look at the standard
    // library, which a cell's first `let` would otherwise pay for) runs once no request has
    // come for a moment: while the session runs helper cells, or between Rust cells.
    loop {
        let idle_work =
            worker.setup == Setup::Pending || worker.std_pending() || !worker.analyzer_warm;
        let request = if idle_work {
            match worker.requests.recv_timeout(IDLE_GRACE) {
                Ok(request) => request,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    worker.idle_work();
                    continue;
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match worker.requests.recv() {
                Ok(request) => request,
                Err(_) => break,
            }
        };
        match request {
            Request::Execute {
                code,
                prelude_lines,
            } => {
                let Some(result) = worker.execute_with_setup(&code, prelude_lines) else {
                    break;
                };
                send(&Event::Done { result });
            }
            Request::Complete { code, cursor } => {
                worker.prepare_types(false);
                send(&Event::Completions {
                    found: worker.complete(&code, cursor),
                })
            }
            Request::Interrupt => {}
        }
    }
    0
}

/// Put the toolchain's standard library on the dynamic loader's path, for evcxr's child
/// (it inherits this process's environment) to load each cell's library.
///
/// A cell's library links `libstd-*.so` dynamically and finds it through an rpath relative
/// to where cargo built it, `target/<triple>/debug/deps`; evcxr then moves it up a
/// directory to load it, one `..` short. In a build directory under `/tmp` the extra `..`
/// stops at `/` and the path still works; in a kept directory (`build_dir`) it does not, and
/// loading fails ("dlopen failed") unless the loader's path has the library. Under
/// `cargo run` or `cargo test` cargo sets that path itself, which hid this; Jupyter does
/// not. The toolchain is the one cargo uses in the build directory, asked there; its
/// sysroot is returned (`None` without rustc: evcxr's own start says so).
fn find_rust_std() -> Option<std::path::PathBuf> {
    if !cfg!(unix) {
        return None;
    }
    let variable = if cfg!(target_os = "macos") {
        "DYLD_FALLBACK_LIBRARY_PATH"
    } else {
        "LD_LIBRARY_PATH"
    };
    // evcxr creates the build directory when it starts, after this.
    let build_dir = std::env::var_os(super::build_dir::EVCXR_TMPDIR)
        .map(std::path::PathBuf::from)
        .filter(|dir| dir.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    let asked = std::process::Command::new("rustc")
        .args(["--print", "target-libdir", "--print", "sysroot"])
        .current_dir(&build_dir)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|out| out.status.success())?;
    let printed = String::from_utf8_lossy(&asked.stdout).to_string();
    let mut lines = printed.lines().map(str::trim);
    let libdir = lines.next()?;
    let mut paths = vec![std::path::PathBuf::from(libdir)];
    if let Some(old) = std::env::var_os(variable) {
        paths.extend(std::env::split_paths(&old));
    }
    if let Ok(joined) = std::env::join_paths(paths) {
        // Before any thread of this process exists.
        std::env::set_var(variable, joined);
    }
    lines.next().map(std::path::PathBuf::from)
}

/// How long the worker waits for a request before doing its idle work (setup, warming
/// rust-analyzer): a cell the session sends at once is not kept waiting behind it.
const IDLE_GRACE: Duration = Duration::from_millis(150);

/// What rust-analyzer is first asked, to load the standard library before a cell needs it.
const ANALYZER_WARMUP: &str = "let smartnb_warmup: Vec<u8> = Vec::new(); smartnb_warmup.";

/// Whether serde_json and `smart` are in the evaluator yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setup {
    /// Not yet: the next cell carries them.
    Pending,
    /// Added.
    Done,
    /// serde_json could not be had; cells run without it.
    Failed,
}

struct Worker {
    context: Arc<Mutex<CommandContext>>,
    outputs: EvalContextOutputs,
    requests: Receiver<Request>,
    setup: Setup,
    /// serde_json's source is in the local cargo cache (cargo runs `--offline` for setup).
    cached: bool,
    /// rust-analyzer has typed something (its first time loads the standard library).
    analyzer_warm: bool,
    /// The stub or real standard library rust-analyzer reads (`None`: the real one, always).
    std_source: Option<StdSource>,
    /// What sets up serde_json and the prelude: the prelude crate when it could be written
    /// (`prelude_crate`), else its items inline.
    setup_code: String,
    /// The prelude crate's directory, while `setup_code` adds it.
    prelude_dir: Option<std::path::PathBuf>,
}

impl Worker {
    /// Run a cell; while setup is pending and the cell needs it (or needs rust-analyzer to
    /// reload with the real standard library), with `:dep serde_json` and the prelude in
    /// front of it, else with `reload_line` when only the reload is needed. When a cell that
    /// carried the setup fails, the setup alone tells whether serde_json is missing; then a
    /// cell that did not need it runs again without it, and one that did says why.
    fn execute_with_setup(
        &mut self,
        code: &str,
        prelude_lines: usize,
    ) -> Option<Result<Map<String, Value>, CommandError>> {
        // A `let` whose type evcxr asks rust-analyzer for: rust-analyzer must have the real
        // standard library by then, and typing it warms rust-analyzer.
        let types = cell_shape::infers_types(code);
        self.analyzer_warm |= types;
        let reload = types && self.std_pending();
        if reload {
            self.switch_std();
        }
        // The setup comes along for the reload only when it cannot wait on the network.
        let carry = prelude::needs_setup(code) || (reload && self.cached);
        if self.setup != Setup::Pending || !carry {
            if !reload {
                return self.execute(code, prelude_lines);
            }
            let line = self.reload_line();
            let lines = line.matches('\n').count();
            let result = self.execute(&format!("{line}{code}"), prelude_lines + lines)?;
            if result.is_ok() {
                self.std_reloaded();
            }
            return Some(result);
        }
        let setup = self.setup_code.clone();
        let lines = setup.matches('\n').count();
        let result = self.execute(&format!("{setup}{code}"), prelude_lines + lines)?;
        match &result {
            Ok(_) => self.setup_done(),
            Err(e) if e.kind != "Interrupted" => {
                // cargo's failure to get serde_json is a compile error too: the setup alone
                // tells which it was (when it works, the error is the cell's own).
                if let Err(why) = self.setup_alone() {
                    send(&Event::Untyped { why: why.clone() });
                    if !prelude::needs_setup(code) {
                        // It came along only for rust-analyzer's reload: run the cell without it.
                        return self.execute_with_setup(code, prelude_lines);
                    }
                    return Some(Err(CommandError::new(
                        "SerdeJsonUnavailable",
                        format!("serde_json could not be added to Rust cells: {why}"),
                    )
                    .hint("run the cell again: Rust cells now run without serde_json (helper variables are Strings, smart(…) is not defined); with a network, or serde_json in the local cargo cache (`cargo fetch` in a project that uses it), restart the kernel to have them")));
                }
            }
            Err(_) => {}
        }
        Some(result)
    }

    /// What is left to do while no request waits: the setup and rust-analyzer's switch to
    /// the real standard library (`prepare_types`), then its first look at it (about a
    /// second and a half, once per evaluator).
    fn idle_work(&mut self) {
        if self.setup == Setup::Pending || self.std_pending() {
            self.prepare_types(true);
        } else if !self.analyzer_warm {
            self.analyzer_warm = true;
            if let Ok(mut context) = self.context.lock() {
                let _ = context.completions(ANALYZER_WARMUP, ANALYZER_WARMUP.len());
            }
        }
    }

    /// Have rust-analyzer read the real standard library, as typing a `let` or completing
    /// needs: with the setup (its Cargo.toml change reloads rust-analyzer) when it is still
    /// to do and `setup_too` or it builds offline, else with `reload_line` alone.
    fn prepare_types(&mut self, setup_too: bool) {
        let reload = self.std_pending();
        if reload {
            self.switch_std();
        }
        if self.setup == Setup::Pending && (setup_too || (reload && self.cached)) {
            match self.setup_alone() {
                Ok(()) => return,
                Err(why) => send(&Event::Untyped { why }),
            }
        }
        if !reload {
            return;
        }
        let line = self.reload_line();
        let reloaded = match self.context.lock() {
            Ok(mut context) => context.execute(&line).is_ok(),
            Err(_) => false,
        };
        self.discard_output();
        if !reloaded {
            tracing::warn!("rust worker: rust-analyzer did not reload with the real standard library; kept `let`s may need a written-out type");
        }
        // Once: if that failed, trying again before every cell would not help.
        self.std_reloaded();
    }

    /// Whether rust-analyzer has yet to reload with the real standard library.
    fn std_pending(&self) -> bool {
        self.std_source.as_ref().is_some_and(StdSource::pending)
    }

    /// Point rust-analyzer at the real standard library for its next reload, which the
    /// caller then brings about with a Cargo.toml change.
    fn switch_std(&mut self) {
        if let Some(source) = self.std_source.as_mut() {
            source.switch();
        }
    }

    /// rust-analyzer has reloaded (if the link was switched, with the real library).
    fn std_reloaded(&mut self) {
        if let Some(source) = self.std_source.as_mut() {
            source.reloaded();
        }
    }

    /// A `:dep` line that changes the cell crate's Cargo.toml and nothing else, so that
    /// rust-analyzer reloads: a dependency the setup added, spelled another way that means
    /// the same to cargo, or (without the setup) an empty crate. Ends with a newline.
    fn reload_line(&self) -> String {
        if self.setup == Setup::Done {
            return match &self.prelude_dir {
                Some(dir) => prelude_crate::respelled_dep(dir),
                None => ":dep serde_json = { version = \"1\" }\n".to_string(),
            };
        }
        match self.std_source.as_ref().and_then(StdSource::reload_crate) {
            Some(dir) => format!(
                ":dep smartnb_reload = {{ path = {:?} }}\n",
                dir.display().to_string()
            ),
            None => String::new(),
        }
    }

    /// Add serde_json and the prelude's items by themselves (offline first when cached,
    /// then from crates.io); `Err` says why serde_json could not be had.
    fn setup_alone(&mut self) -> Result<(), String> {
        let setup = self.setup_code.clone();
        let mut context = self.context.lock().map_err(|_| lost().message)?;
        let mut outcome = context.execute(&setup).map(|_| ());
        if outcome.is_err() && self.cached {
            let _ = context.execute(":offline 0");
            outcome = context.execute(&setup).map(|_| ());
        }
        let inline = inline_setup_code();
        if outcome.is_err() && setup != inline {
            // The prelude crate would not build here: its items inline, as before it existed.
            outcome = context.execute(&inline).map(|_| ());
            if outcome.is_ok() {
                self.setup_code = inline;
                self.prelude_dir = None;
            }
        }
        drop(context);
        self.discard_output();
        match outcome {
            Ok(()) => {
                self.setup_done();
                Ok(())
            }
            Err(e) => {
                self.setup = Setup::Failed;
                let why = e.to_string();
                let place = if self.cached {
                    "its source in the local cargo registry cache did not build offline"
                } else {
                    "it is not in the local cargo registry cache"
                };
                Err(format!(
                    "{place}, and cargo could not fetch it from crates.io: {}",
                    why.trim()
                ))
            }
        }
    }

    /// What evcxr printed outside any cell (cargo's progress during the setup or a reload)
    /// is not any cell's output.
    fn discard_output(&self) {
        while self.outputs.stdout.try_recv().is_ok() {}
        while self.outputs.stderr.try_recv().is_ok() {}
    }

    /// The setup worked: its Cargo.toml change also reloaded rust-analyzer, with the real
    /// standard library if the link was switched by then.
    fn setup_done(&mut self) {
        self.setup = Setup::Done;
        self.std_reloaded();
        if self.cached {
            // A cell's own `:dep` may need crates.io; `:offline 1` in a cell asks otherwise.
            if let Ok(mut context) = self.context.lock() {
                let _ = context.execute(":offline 0");
            }
        }
    }

    /// Run one cell, streaming its output; `None` when the session went away meanwhile.
    fn execute(
        &mut self,
        code: &str,
        prelude_lines: usize,
    ) -> Option<Result<Map<String, Value>, CommandError>> {
        let child = match self.context.lock() {
            Ok(context) => context.process_handle(),
            Err(_) => return Some(Err(lost())),
        };
        let context = self.context.clone();
        let source = code.to_string();
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        let spawned = std::thread::Builder::new()
            .name("smartnb-evcxr-cell".into())
            .spawn(move || {
                let result = match context.lock() {
                    Ok(mut context) => context.execute(&source),
                    Err(_) => Err(evcxr::Error::Message(
                        "the evaluator was lost after a crash".into(),
                    )),
                };
                let _ = done_tx.send(result);
            });
        if let Err(e) = spawned {
            return Some(Err(CommandError::new("RustError", e.to_string())));
        }
        let mut interrupted = false;
        let result = loop {
            select! {
                recv(self.outputs.stdout) -> line => if let Ok(line) = line { send(&Event::Stdout { line }) },
                recv(self.outputs.stderr) -> line => if let Ok(line) = line { send(&Event::Stderr { line }) },
                recv(done_rx) -> result => match result {
                    Ok(result) => break result,
                    Err(_) => return Some(Err(lost())),
                },
                recv(self.requests) -> request => match request {
                    Ok(Request::Interrupt) => {
                        interrupted = true;
                        if let Ok(mut process) = child.lock() {
                            let _ = process.kill();
                        }
                    }
                    Ok(Request::Complete { .. }) => send(&Event::Completions { found: None }),
                    Ok(Request::Execute { .. }) => send(&Event::Stderr {
                        line: "smartnb: a Rust cell is still running; the new one was dropped".into(),
                    }),
                    Err(_) => {
                        if let Ok(mut process) = child.lock() {
                            let _ = process.kill();
                        }
                        return None;
                    }
                },
            }
        };
        self.drain_late_output();
        Some(match result {
            Ok(outputs) => Ok(outputs
                .content_by_mime_type
                .into_iter()
                .map(|(mime, data)| (mime, Value::String(data)))
                .collect()),
            Err(_) if interrupted => Err(CommandError::new(
                "Interrupted",
                "the Rust cell stopped before it finished, and with it evcxr's process, so the Rust variables of earlier cells are gone (your helper variables are all kept)",
            )
            .hint("re-run the cells that define the Rust variables you need")),
            Err(evcxr::Error::CompilationErrors(errors)) => {
                Err(compile_error(code, prelude_lines, &errors))
            }
            Err(evcxr::Error::SubprocessTerminated(message)) => Err(CommandError::new(
                "EvaluatorRestarted",
                format!("the Rust cell's process ended ({}); evcxr restarts it, and the Rust variables of earlier cells are gone", message.trim()),
            )),
            Err(e) => Err(CommandError::new("RustError", e.to_string().trim().to_string())),
        })
    }

    /// evcxr reads the child's stderr on its own thread: give late lines a moment.
    fn drain_late_output(&self) {
        while let Ok(line) = self.outputs.stdout.try_recv() {
            send(&Event::Stdout { line });
        }
        while let Ok(line) = self.outputs.stderr.recv_timeout(Duration::from_millis(20)) {
            send(&Event::Stderr { line });
        }
    }

    fn complete(&self, code: &str, cursor: usize) -> Option<Completion> {
        let mut context = self.context.try_lock().ok()?;
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

/// Requests from stdin on a channel that closes when stdin does.
fn read_requests() -> Receiver<Request> {
    let (tx, rx) = crossbeam_channel::unbounded();
    let reader = std::thread::Builder::new()
        .name("smartnb-worker-stdin".into())
        .spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                match serde_json::from_str::<Request>(&line) {
                    Ok(request) => {
                        if tx.send(request).is_err() {
                            break;
                        }
                    }
                    Err(e) => tracing::warn!("rust worker: unreadable request: {e}"),
                }
            }
        });
    if let Err(e) = reader {
        tracing::error!("rust worker: cannot read requests: {e}");
    }
    rx
}

/// `:dep serde_json` and the prelude's items, ending with a newline.
fn inline_setup_code() -> String {
    let mut code = format!("{}\n{}", prelude::SERDE_JSON_DEP, prelude::items());
    if !code.ends_with('\n') {
        code.push('\n');
    }
    code
}

fn send(event: &Event) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(encode(event).as_bytes());
    let _ = stdout.flush();
}

fn lost() -> CommandError {
    CommandError::new("RustError", "the Rust evaluator stopped answering")
}
