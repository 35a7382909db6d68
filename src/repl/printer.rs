//! The REPL's [`Frontend`]: outputs to the terminal, questions through a one-line editor.

use std::io::{IsTerminal, Write};

use rustyline::error::ReadlineError;

use crate::render::terminal::{render, Style};
use crate::session::{interrupted, Frontend, Output};

/// Prints a cell's outputs; in piped mode its errors go to stderr, named by input line.
pub(super) struct Printer {
    style: Style,
    /// Piped input: errors go to stderr, after this (`line 3`).
    error_label: Option<String>,
    /// Ctrl-C answered a question: the command's error is really an interrupt.
    ask_interrupted: bool,
}

impl Printer {
    /// A printer in `style`; `error_label` sends errors to stderr after that label.
    pub(super) fn new(style: Style, error_label: Option<String>) -> Printer {
        Printer {
            style,
            error_label,
            ask_interrupted: false,
        }
    }
}

impl Frontend for Printer {
    fn emit(&mut self, output: Output) {
        let output = match output {
            Output::Error(_) if self.ask_interrupted => Output::Error(interrupted()),
            other => other,
        };
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
            Output::Error(_) if self.error_label.is_some() => {
                let text = render(&output, self.style);
                let label = self.error_label.as_deref().unwrap_or_default();
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "{label}: {text}");
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
        match editor.readline(prompt) {
            Ok(answer) => Some(answer),
            Err(ReadlineError::Interrupted) => {
                self.ask_interrupted = true;
                None
            }
            Err(_) => None,
        }
    }
}
