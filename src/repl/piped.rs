//! Piped input (`smartnb repl < cells.txt`): cells gathered line by line, each failure
//! named by its input line on stderr, and an exit status a script can test.

use std::io::BufRead;
use std::sync::atomic::AtomicBool;

use super::printer::Printer;
use super::{execute, ReplOptions};
use crate::render::terminal::Style;
use crate::session::{is_complete, Completeness, Outcome, Session};

/// Which input lines a cell came from, to name it in an error.
fn lines_label(first: usize, last: usize) -> String {
    if first == last {
        format!("line {first}")
    } else {
        format!("lines {first}-{last}")
    }
}

/// Run every cell of stdin; the process exit code.
pub(super) fn piped_loop(
    session: &mut Session,
    running: &AtomicBool,
    options: &ReplOptions,
) -> i32 {
    let stdin = std::io::stdin();
    let mut cell = String::new();
    let mut first = 0;
    let mut number = 0;
    let mut failed: Vec<String> = Vec::new();
    let mut run = |cell: &str, first: usize, last: usize| {
        let label = lines_label(first, last);
        let printer = Printer::new(Style::Plain, Some(label.clone()));
        let outcome = execute(session, running, cell, printer);
        if outcome == Outcome::Failed {
            failed.push(label);
        }
        outcome
    };
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        number += 1;
        if cell.is_empty() {
            first = number;
        }
        cell.push_str(&line);
        cell.push('\n');
        if is_complete(&cell) == Completeness::Incomplete {
            continue;
        }
        let outcome = run(&cell, first, number);
        cell.clear();
        if outcome == Outcome::Failed && !options.keep_going {
            eprintln!(
                "smartnb: stopped at {} (--keep-going runs every line)",
                lines_label(first, number)
            );
            return 1;
        }
    }
    if !cell.trim().is_empty() {
        // The input ended inside a quote or after a backslash: run it so the error shows.
        run(&cell, first, number);
    }
    if failed.is_empty() {
        return 0;
    }
    if options.keep_going {
        let cells = match failed.len() {
            1 => "1 cell".to_string(),
            n => format!("{n} cells"),
        };
        eprintln!(
            "smartnb: {cells} failed: {} (exit status 0, as --keep-going asks)",
            failed.join(", ")
        );
        0
    } else {
        1
    }
}
