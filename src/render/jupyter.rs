//! Outputs as Jupyter messages' content: streams, display_data MIME bundles, and errors.

use askama::Template;
use serde_json::{json, Map, Value};

use super::terminal::{pretty, render, Style};
use crate::session::{Output, Table};

/// How one output travels to a Jupyter front end.
#[derive(Debug, Clone, PartialEq)]
pub enum JupyterOutput {
    /// A `stream` message on stdout.
    Stream(String),
    /// A `stream` message on stderr.
    StreamErr(String),
    /// An `execute_result` with this MIME bundle.
    Result(Map<String, Value>),
    /// A `display_data` message with this MIME bundle.
    Display(Map<String, Value>),
    /// An `error` message.
    Error {
        /// Exception name.
        ename: String,
        /// Exception value.
        evalue: String,
        /// Lines of the traceback.
        traceback: Vec<String>,
    },
}

#[derive(Template)]
#[template(
    source = "<table><thead><tr>{% for c in columns %}<th style=\"text-align:left\">{{ c }}</th>{% endfor %}</tr></thead><tbody>{% for row in rows %}<tr>{% for cell in row %}<td style=\"text-align:left\">{{ cell }}</td>{% endfor %}</tr>{% endfor %}</tbody></table>",
    ext = "html"
)]
struct HtmlTable<'a> {
    columns: &'a [String],
    rows: &'a [Vec<String>],
}

#[derive(Template)]
#[template(
    source = "<p style=\"color:#8a5a00\"><b>simulated:</b> <code>{{ fault }}</code>{% if let Some(left) = left %} ({{ left }}){% endif %}</p>",
    ext = "html"
)]
struct HtmlSimulated<'a> {
    fault: &'a str,
    left: Option<String>,
}

#[derive(Template)]
#[template(
    source = "<p>{{ label }}<br><a href=\"{{ url }}\" target=\"_blank\" rel=\"noopener\">{{ url }}</a></p>",
    ext = "html"
)]
struct HtmlLink<'a> {
    label: &'a str,
    url: &'a str,
}

fn bundle(plain: String, json: Option<Value>, html: Option<String>) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("text/plain".into(), Value::String(plain));
    if let Some(json) = json {
        map.insert("application/json".into(), json);
    }
    if let Some(html) = html {
        map.insert("text/html".into(), Value::String(html));
    }
    map
}

fn table_html(table: &Table) -> Option<String> {
    HtmlTable {
        columns: &table.columns,
        rows: &table.rows,
    }
    .render()
    .ok()
}

/// The Jupyter form of an output, as one message or more; each text/plain is the
/// terminal's text, uncoloured.
///
/// A table made from JSON is two display_data: the table (text/html and text/plain) and
/// the JSON (application/json and its text). In one bundle, JupyterLab and Notebook 7 would
/// pick the JSON, whose renderer ranks above HTML, and the table would never show.
pub fn to_jupyter(output: &Output) -> Vec<JupyterOutput> {
    let mut all = vec![one(output)];
    if let Output::Table(Table {
        json: Some(json), ..
    }) = output
    {
        all.push(JupyterOutput::Display(bundle(
            pretty(json),
            Some(json.clone()),
            None,
        )));
    }
    all
}

fn one(output: &Output) -> JupyterOutput {
    let plain = render(output, Style::Plain);
    match output {
        Output::Text(_) | Output::Note(_) => JupyterOutput::Stream(format!("{plain}\n")),
        Output::Stdout(text) => JupyterOutput::Stream(text.clone()),
        Output::Stderr(text) => JupyterOutput::StreamErr(text.clone()),
        Output::Value(bundle) => JupyterOutput::Result(bundle.clone()),
        Output::Rich(bundle) => JupyterOutput::Display(bundle.clone()),
        Output::Status(_) => JupyterOutput::Display(bundle(plain, None, None)),
        Output::Json(value) => JupyterOutput::Display(bundle(plain, Some(value.clone()), None)),
        Output::Table(table) => JupyterOutput::Display(bundle(plain, None, table_html(table))),
        Output::Simulated(simulated) => {
            let html = HtmlSimulated {
                fault: &simulated.fault,
                left: simulated.left(),
            };
            JupyterOutput::Display(bundle(plain, None, html.render().ok()))
        }
        Output::Link { label, url } => {
            JupyterOutput::Display(bundle(plain, None, HtmlLink { label, url }.render().ok()))
        }
        Output::Error(error) => {
            let mut traceback = vec![format!("\x1b[31m{}\x1b[0m: {}", error.kind, error.message)];
            if let Some(detail) = &error.detail {
                traceback.extend(detail.lines().map(str::to_string));
            }
            if let Some(hint) = &error.hint {
                traceback.push(format!("hint: {hint}"));
            }
            JupyterOutput::Error {
                ename: error.kind.clone(),
                evalue: error.message.clone(),
                traceback,
            }
        }
    }
}

/// The nbformat 4 output objects for one output (the notebook runner stores these).
pub fn to_nbformat(output: &Output) -> Vec<Value> {
    to_jupyter(output).into_iter().map(nbformat).collect()
}

fn nbformat(output: JupyterOutput) -> Value {
    match output {
        JupyterOutput::Stream(text) => {
            json!({"output_type": "stream", "name": "stdout", "text": text})
        }
        JupyterOutput::StreamErr(text) => {
            json!({"output_type": "stream", "name": "stderr", "text": text})
        }
        JupyterOutput::Result(data) => {
            json!({"output_type": "execute_result", "data": data, "metadata": {}, "execution_count": null})
        }
        JupyterOutput::Display(data) => {
            json!({"output_type": "display_data", "data": data, "metadata": {}})
        }
        JupyterOutput::Error {
            ename,
            evalue,
            traceback,
        } => {
            json!({"output_type": "error", "ename": ename, "evalue": evalue, "traceback": traceback})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_carries_the_tree_and_the_same_text() {
        let out = to_jupyter(&Output::Json(json!({"id": "x"})));
        let [JupyterOutput::Display(b)] = &out[..] else {
            panic!("{out:?}")
        };
        assert_eq!(b["application/json"], json!({"id": "x"}));
        assert_eq!(b["text/plain"], "{\n  \"id\": \"x\"\n}");
    }

    #[test]
    fn a_simulated_fault_says_so_in_text_and_html() {
        let out = to_jupyter(&Output::Simulated(crate::session::Simulated::parse(
            "fhir_expired_token; remaining=2",
        )));
        let [JupyterOutput::Display(b)] = &out[..] else {
            panic!("{out:?}")
        };
        assert_eq!(b["text/plain"], "simulated: fhir_expired_token (2 more)");
        let html = b["text/html"].as_str().unwrap();
        assert!(
            html.contains("<code>fhir_expired_token</code> (2 more)"),
            "{html}"
        );
        let out = to_jupyter(&Output::Simulated(crate::session::Simulated::parse("<b>")));
        let [JupyterOutput::Display(b)] = &out[..] else {
            panic!("{out:?}")
        };
        let html = b["text/html"].as_str().unwrap();
        assert!(!html.contains("<b><") && !html.contains("()"), "{html}");
    }

    #[test]
    fn html_is_escaped() {
        let t = Table {
            columns: vec!["<b>".into()],
            rows: vec![vec!["a&b".into()]],
            json: None,
        };
        let out = to_jupyter(&Output::Table(t));
        let [JupyterOutput::Display(b)] = &out[..] else {
            panic!("{out:?}")
        };
        let html = b["text/html"].as_str().unwrap();
        assert!(
            html.contains("&#60;b&#62;") || html.contains("&lt;b&gt;"),
            "{html}"
        );
        assert!(
            html.contains("a&#38;b") || html.contains("a&amp;b"),
            "{html}"
        );
    }

    #[test]
    fn a_table_from_json_is_shown_apart_from_its_json() {
        let t = Table {
            columns: vec!["field".into(), "value".into()],
            rows: vec![vec!["active".into(), "true".into()]],
            json: Some(json!({"active": true})),
        };
        let out = to_jupyter(&Output::Table(t.clone()));
        let [JupyterOutput::Display(table), JupyterOutput::Display(tree)] = &out[..] else {
            panic!("{out:?}")
        };
        let mut keys: Vec<&String> = table.keys().collect();
        keys.sort();
        assert_eq!(keys, ["text/html", "text/plain"]);
        assert!(table["text/html"].as_str().unwrap().contains("<td"));
        assert_eq!(
            table["text/plain"],
            render(&Output::Table(t.clone()), Style::Plain)
        );
        assert_eq!(tree["application/json"], json!({"active": true}));
        assert_eq!(tree["text/plain"], "{\n  \"active\": true\n}");
        assert!(tree.get("text/html").is_none());
        assert_eq!(to_nbformat(&Output::Table(t)).len(), 2);
    }
}
