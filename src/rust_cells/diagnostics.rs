//! Compile errors as rustc prints them: a headline, then each span drawn under its line.

use evcxr::CompilationError;

use crate::session::CommandError;

/// rustc-style text for compile errors, with spans into the cell (whose first
/// `prelude_lines` lines are the session's copies of helper variables).
pub fn compile_error(
    code: &str,
    prelude_lines: usize,
    errors: &[CompilationError],
) -> CommandError {
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
            let Some(number) = span.start_line.checked_sub(prelude_lines) else {
                continue;
            };
            if number == 0 {
                text.push_str(&format!("  --> a helper variable: {}\n", spanned.label));
                continue;
            }
            let end_column = (span.end_line == span.start_line).then_some(span.end_column);
            text.push_str(&draw_span(
                number,
                lines
                    .get(span.start_line.wrapping_sub(1))
                    .copied()
                    .unwrap_or_default(),
                span.start_column,
                end_column,
                &spanned.label,
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

/// One span: where it is, the line, and carets under the columns (1-based; an open end
/// runs to the end of the line).
fn draw_span(
    number: usize,
    source: &str,
    start_column: usize,
    end_column: Option<usize>,
    label: &str,
) -> String {
    let width = number.to_string().len();
    let start = start_column.max(1);
    let end = end_column
        .unwrap_or(source.chars().count() + 1)
        .max(start + 1);
    format!(
        "{:width$}--> cell:{number}:{start}\n{:width$} |\n{number} | {source}\n{:width$} | {}{} {label}\n",
        "",
        "",
        "",
        " ".repeat(start - 1),
        "^".repeat(end - start),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_is_drawn_under_its_columns() {
        let drawn = draw_span(3, "let x: u8 = 300;", 13, Some(16), "literal out of range");
        assert_eq!(
            drawn,
            " --> cell:3:13\n  |\n3 | let x: u8 = 300;\n  |             ^^^ literal out of range\n"
        );
    }

    #[test]
    fn an_open_span_runs_to_the_end_of_the_line() {
        let drawn = draw_span(1, "abc", 2, None, "here");
        assert!(drawn.ends_with("|  ^^ here\n"), "{drawn}");
    }
}
