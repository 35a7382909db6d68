//! Outputs as terminal text: the status line, pretty JSON (coloured on a terminal),
//! prettytable tables.

use std::sync::LazyLock;

use prettytable::format::{FormatBuilder, LinePosition, LineSeparator, TableFormat};
use prettytable::{Cell, Row};

use super::fhir_order::FhirOrder;
use crate::session::{Output, Table};

/// Box characters around the table and under its header, with no rule between rows.
static FORMAT: LazyLock<TableFormat> = LazyLock::new(|| {
    FormatBuilder::new()
        .column_separator('│')
        .borders('│')
        .separators(&[LinePosition::Top], LineSeparator::new('─', '┬', '┌', '┐'))
        .separators(
            &[LinePosition::Title],
            LineSeparator::new('─', '┼', '├', '┤'),
        )
        .separators(
            &[LinePosition::Bottom],
            LineSeparator::new('─', '┴', '└', '┘'),
        )
        .padding(1, 1)
        .build()
});

/// ANSI styles, or nothing when output is not a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Plain text.
    Plain,
    /// Colours for a terminal.
    Color,
}

/// The text of one output, ending without a newline.
pub fn render(output: &Output, style: Style) -> String {
    let color = style == Style::Color;
    match output {
        Output::Status(code) => format!("Response status code: {code}"),
        Output::Json(value) => {
            if color {
                colored_json::to_colored_json(&FhirOrder(value), colored_json::ColorMode::On)
                    .unwrap_or_else(|_| pretty(value))
            } else {
                pretty(value)
            }
        }
        Output::Table(table) => table_text(table),
        Output::Link { label, url } => format!("{label}\n{url}"),
        Output::Text(text) => text.trim_end().to_string(),
        Output::Note(note) => paint(note, "2", color),
        Output::Simulated(simulated) => paint(&simulated.to_string(), "33", color),
        Output::Stdout(text) | Output::Stderr(text) => {
            text.strip_suffix('\n').unwrap_or(text).to_string()
        }
        Output::Value(bundle) | Output::Rich(bundle) => bundle
            .get("text/plain")
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| {
                format!(
                    "[{}]",
                    bundle.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            }),
        Output::Error(error) => {
            let mut text = paint(&format!("{}: {}", error.kind, error.message), "31", color);
            if let Some(detail) = &error.detail {
                text.push_str(&format!("\n{detail}"));
            }
            if let Some(hint) = &error.hint {
                text.push_str(&format!("\n  hint: {hint}"));
            }
            text
        }
    }
}

/// Pretty JSON with two-space indentation, `resourceType` first in each object.
pub fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(&FhirOrder(value)).unwrap_or_else(|_| value.to_string())
}

fn paint(text: &str, code: &str, color: bool) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// A table drawn with box characters.
pub fn table_text(table: &Table) -> String {
    let mut t = prettytable::Table::new();
    t.set_format(*FORMAT);
    if !table.columns.is_empty() {
        t.set_titles(Row::new(
            table.columns.iter().map(|c| Cell::new(c)).collect(),
        ));
    }
    for row in &table.rows {
        t.add_row(Row::new(row.iter().map(|c| Cell::new(c)).collect()));
    }
    if table.rows.is_empty() {
        return format!(
            "{}(no rows)",
            t.to_string().trim_end_matches('\n').to_string() + "\n"
        );
    }
    t.to_string().trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{CommandError, Simulated};
    use serde_json::json;

    #[test]
    fn status_and_json_read_like_the_walkthrough() {
        assert_eq!(
            render(&Output::Status(201), Style::Plain),
            "Response status code: 201"
        );
        assert_eq!(
            render(&Output::Json(json!({"a": 1})), Style::Plain),
            "{\n  \"a\": 1\n}"
        );
        assert!(render(&Output::Json(json!({"a": 1})), Style::Color).contains("\x1b["));
    }

    #[test]
    fn a_table_has_a_rule_under_its_header_and_none_between_rows() {
        let t = Table {
            columns: vec!["name".into(), "value".into()],
            rows: vec![
                vec!["active".into(), "true".into()],
                vec!["scope".into(), "openid".into()],
            ],
            json: None,
        };
        let text = render(&Output::Table(t), Style::Plain);
        assert_eq!(
            text,
            "┌────────┬────────┐\n\
             │ name   │ value  │\n\
             ├────────┼────────┤\n\
             │ active │ true   │\n\
             │ scope  │ openid │\n\
             └────────┴────────┘"
        );
    }

    #[test]
    fn json_shows_resource_type_first_in_colour_and_plain() {
        let patient = json!({"id": "x", "name": [], "resourceType": "Patient"});
        let plain = render(&Output::Json(patient.clone()), Style::Plain);
        assert!(
            plain.starts_with("{\n  \"resourceType\": \"Patient\",\n  \"id\""),
            "{plain}"
        );
        let colored = render(&Output::Json(patient), Style::Color);
        let (kind, id) = (
            colored.find("resourceType"),
            colored.find("m\x1b[1;34mid\x1b"),
        );
        assert!(kind.is_some() && kind < id, "{colored}");
    }

    #[test]
    fn tables_and_errors() {
        let t = Table {
            columns: vec!["name".into(), "value".into()],
            rows: vec![vec!["client_id".into(), "abc".into()]],
            json: None,
        };
        let text = render(&Output::Table(t), Style::Plain);
        assert!(text.contains("client_id") && text.contains("abc") && text.contains('│'));
        let simulated = Output::Simulated(Simulated::parse("fhir_throttled; remaining=0"));
        assert_eq!(
            render(&simulated, Style::Plain),
            "simulated: fhir_throttled (last one)"
        );
        assert_eq!(
            render(&simulated, Style::Color),
            "\x1b[33msimulated: fhir_throttled (last one)\x1b[0m"
        );
        let e = CommandError::new("UnknownCommand", "no such").hint("try help");
        assert_eq!(
            render(&Output::Error(e), Style::Plain),
            "UnknownCommand: no such\n  hint: try help"
        );
    }
}
