//! `smartnb run NOTEBOOK... [--check | --write] [--timeout S]`: execute notebooks through a
//! Session, print as the REPL would, and check or store the outputs.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{diff, CellObserver, Notebook};
use crate::render::terminal::{render, Style};
use crate::session::{Interrupter, Outcome, Output, Session, SessionOptions};

/// What to do with fresh outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Only run and print.
    Run,
    /// Compare with the stored outputs after normalising; a difference fails.
    Check,
    /// Store the fresh outputs in the file.
    Write,
}

/// Run notebooks one after the other, each in a fresh session; the process exit code.
pub fn run_files(
    paths: &[PathBuf],
    mode: Mode,
    timeout: Duration,
    options: &SessionOptions,
) -> i32 {
    let style = if std::io::stdout().is_terminal() {
        Style::Color
    } else {
        Style::Plain
    };
    let mut failures = 0;
    for path in paths {
        match run_one(path, mode, timeout, options, style) {
            Ok(true) => {}
            Ok(false) => failures += 1,
            Err(message) => {
                eprintln!("smartnb run: {message}");
                failures += 1;
            }
        }
    }
    if paths.len() > 1 {
        println!("{} passed, {failures} failed", paths.len() - failures);
    }
    i32::from(failures > 0)
}

fn run_one(
    path: &Path,
    mode: Mode,
    timeout: Duration,
    options: &SessionOptions,
    style: Style,
) -> Result<bool, String> {
    let mut notebook = Notebook::load(path).map_err(|e| e.to_string())?;
    let mut session = Session::new(options.clone()).map_err(|e| e.to_string())?;
    println!("== {}", notebook.path);
    let watchdog = Watchdog::start(session.interrupter(), timeout);
    let runs = notebook.run(
        &mut session,
        &mut Printer {
            watchdog: &watchdog,
            style,
        },
    );
    watchdog.stop();
    let mut ok = true;
    for run in &runs {
        if run.outcome == Outcome::Failed && !run.may_fail {
            eprintln!("{}: cell {} failed", notebook.path, run.index);
            ok = false;
        }
    }
    let code_cells = notebook.code_cells().len();
    if runs.len() < code_cells {
        eprintln!(
            "{}: stopped after cell {}; {} cells did not run",
            notebook.path,
            runs.last().map(|r| r.index).unwrap_or(0),
            code_cells - runs.len()
        );
        ok = false;
    }
    match mode {
        Mode::Run => {}
        Mode::Write => {
            notebook.store(&runs);
            notebook.save().map_err(|e| e.to_string())?;
            println!("wrote {} cells' outputs to {}", runs.len(), notebook.path);
        }
        Mode::Check => {
            for run in &runs {
                if let Some(text) = diff(&notebook.stored_outputs(run.index), &run.outputs) {
                    eprintln!(
                        "{}: cell {} differs from its stored outputs:\n{text}",
                        notebook.path, run.index
                    );
                    ok = false;
                }
            }
        }
    }
    Ok(ok)
}

/// Interrupts a cell that runs longer than the timeout.
struct Watchdog {
    origin: Instant,
    timeout: Duration,
    /// Milliseconds since `origin` at which the running cell is interrupted; 0 for none.
    deadline_ms: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Watchdog {
    fn start(interrupter: Interrupter, timeout: Duration) -> Watchdog {
        let origin = Instant::now();
        let deadline_ms = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (deadline, stopping) = (deadline_ms.clone(), stop.clone());
        let _ = std::thread::Builder::new()
            .name("smartnb-run-watchdog".into())
            .spawn(move || {
                while !stopping.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(50));
                    let due = deadline.load(Ordering::SeqCst);
                    if due != 0 && origin.elapsed().as_millis() as u64 > due {
                        deadline.store(0, Ordering::SeqCst);
                        interrupter.interrupt();
                    }
                }
            });
        Watchdog {
            origin,
            timeout,
            deadline_ms,
            stop,
        }
    }

    fn cell_started(&self) {
        let due = (self.origin.elapsed() + self.timeout).as_millis() as u64;
        self.deadline_ms.store(due.max(1), Ordering::SeqCst);
    }

    fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

struct Printer<'a> {
    watchdog: &'a Watchdog,
    style: Style,
}

impl CellObserver for Printer<'_> {
    fn started(&mut self, index: usize) {
        self.watchdog.cell_started();
        println!("-- cell {index}");
    }

    fn output(&mut self, _index: usize, output: &Output) {
        let mut out = std::io::stdout().lock();
        match output {
            Output::Stdout(text) | Output::Stderr(text) => {
                let _ = out.write_all(text.as_bytes());
            }
            other => {
                let _ = writeln!(out, "{}", render(other, self.style));
            }
        }
    }
}
