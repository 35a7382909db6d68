//! `smartnb run NOTEBOOK... [--check | --write] [--verbose] [--port N] [--timeout S]`:
//! execute notebooks through a Session, print as the REPL would (with `--check`, only what
//! differs and a summary, unless `--verbose`), and check or store the outputs.

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

/// How `smartnb run` runs and reports.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// Run, check or write.
    pub mode: Mode,
    /// A cell running longer than this is interrupted.
    pub timeout: Duration,
    /// Print every cell and output even with `--check`.
    pub verbose: bool,
}

/// Run notebooks one after the other, each in a fresh session; the process exit code.
pub fn run_files(paths: &[PathBuf], run: &RunOptions, options: &SessionOptions) -> i32 {
    let style = if std::io::stdout().is_terminal() {
        Style::Color
    } else {
        Style::Plain
    };
    let mut failures = 0;
    for path in paths {
        match run_one(path, run, options, style) {
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
    run_options: &RunOptions,
    options: &SessionOptions,
    style: Style,
) -> Result<bool, String> {
    let mode = run_options.mode;
    let quiet = mode == Mode::Check && !run_options.verbose;
    let started = Instant::now();
    let mut notebook = Notebook::load(path).map_err(|e| e.to_string())?;
    let mut session = Session::new(options.clone()).map_err(|e| e.to_string())?;
    if !quiet {
        println!("== {}", notebook.path);
    }
    let watchdog = Watchdog::start(session.interrupter(), run_options.timeout);
    let mut printer = Printer {
        watchdog: &watchdog,
        style,
        held: quiet.then(String::new),
    };
    let runs = notebook.run(&mut session, &mut printer);
    watchdog.stop();
    let mut ok = true;
    for run in &runs {
        if run.outcome == Outcome::Failed && !run.may_fail {
            // Quiet, the failed cell (the last one run) is shown now: it is what went wrong.
            if let Some(held) = printer.held.as_deref().filter(|h| !h.is_empty()) {
                eprint!("{held}");
            }
            eprintln!("{}: cell {} failed", notebook.path, run.index);
            ok = false;
        }
    }
    let code_cells = notebook.code_cells().len();
    let not_run = code_cells - runs.len();
    if not_run > 0 {
        eprintln!(
            "{}: stopped after cell {}; {} cells did not run",
            notebook.path,
            runs.last().map(|r| r.index).unwrap_or(0),
            not_run
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
            let mut differ = 0;
            for run in &runs {
                if let Some(text) = diff(&notebook.stored_outputs(run.index), &run.outputs) {
                    let first = run.source.lines().next().unwrap_or_default();
                    eprintln!(
                        "{}: cell {} (`{first}`) differs from its stored outputs:\n{text}",
                        notebook.path, run.index
                    );
                    differ += 1;
                }
            }
            ok &= differ == 0;
            println!(
                "{}",
                summary(
                    &notebook.path,
                    code_cells,
                    differ,
                    not_run,
                    ok,
                    started.elapsed()
                )
            );
        }
    }
    Ok(ok)
}

/// One line per checked notebook: whether it matches, and if not, how many cells do not.
fn summary(
    path: &str,
    cells: usize,
    differ: usize,
    not_run: usize,
    ok: bool,
    took: Duration,
) -> String {
    let seconds = format!("{:.1} s", took.as_secs_f64());
    let plural = |n: usize| if n == 1 { "cell" } else { "cells" };
    if ok {
        return format!(
            "{path}: ok, {cells} {} match their stored outputs ({seconds})",
            plural(cells)
        );
    }
    let mut parts = Vec::new();
    if differ > 0 {
        parts.push(format!("{differ} of {cells} {} differ", plural(cells)));
    }
    if not_run > 0 {
        parts.push(format!("{not_run} did not run"));
    }
    if parts.is_empty() {
        parts.push("a cell failed".to_string());
    }
    format!("{path}: FAILED, {} ({seconds})", parts.join(", "))
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

/// Prints each cell as it runs, or (quiet) holds the running cell's text back, to be shown
/// only if the cell fails.
struct Printer<'a> {
    watchdog: &'a Watchdog,
    style: Style,
    held: Option<String>,
}

impl CellObserver for Printer<'_> {
    fn started(&mut self, index: usize) {
        self.watchdog.cell_started();
        let line = format!("-- cell {index}\n");
        match &mut self.held {
            Some(held) => *held = line,
            None => print!("{line}"),
        }
    }

    fn output(&mut self, _index: usize, output: &Output) {
        let text = match output {
            Output::Stdout(text) | Output::Stderr(text) => text.clone(),
            other => format!("{}\n", render(other, self.style)),
        };
        match &mut self.held {
            Some(held) => held.push_str(&text),
            None => {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(text.as_bytes());
                let _ = out.flush();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_says_whether_a_notebook_matches_in_one_line() {
        let took = Duration::from_millis(1234);
        assert_eq!(
            summary("a.ipynb", 12, 0, 0, true, took),
            "a.ipynb: ok, 12 cells match their stored outputs (1.2 s)"
        );
        assert_eq!(
            summary("a.ipynb", 12, 2, 0, false, took),
            "a.ipynb: FAILED, 2 of 12 cells differ (1.2 s)"
        );
        assert_eq!(
            summary("a.ipynb", 12, 1, 3, false, took),
            "a.ipynb: FAILED, 1 of 12 cells differ, 3 did not run (1.2 s)"
        );
        assert_eq!(
            summary("a.ipynb", 1, 0, 0, false, took),
            "a.ipynb: FAILED, a cell failed (1.2 s)"
        );
    }
}
