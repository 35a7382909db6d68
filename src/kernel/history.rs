//! Input history for history_request: kept in memory for this process, which is session
//! number 1, with the three queries Jupyter defines (tail, range, search).
//!
//! Requests are read by hand from their JSON: jupyter_client sends searches without
//! `unique`/`n` and ranges with a null `stop`, which the typed parser rejects.

use jupyter_protocol::HistoryEntry;
use serde_json::Value;

/// The session number of this process's history (there is no earlier session on disk).
pub const SESSION: usize = 1;

/// The number of entries a tail request without `n` returns.
const DEFAULT_TAIL: usize = 10;

/// One stored cell.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    line: usize,
    input: String,
    output: String,
}

/// The cells run with store_history=true, in order.
#[derive(Debug, Default)]
pub struct History {
    entries: Vec<Entry>,
}

/// Which entries a request asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    /// The last `n` entries.
    Tail {
        /// How many.
        n: usize,
    },
    /// Lines `start <= line < stop` of a session (0 is the current one, negative counts back).
    Range {
        /// Session number.
        session: i64,
        /// First line.
        start: usize,
        /// One past the last line; `None` runs to the end.
        stop: Option<usize>,
    },
    /// Inputs matching a glob (`*`, `?`, `[...]`), oldest first.
    Search {
        /// The glob, matched against the whole input.
        pattern: String,
        /// Keep only the latest of identical inputs.
        unique: bool,
        /// Only the last `n` matches.
        n: Option<usize>,
    },
}

/// A parsed history_request.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryQuery {
    /// What to return.
    pub query: Query,
    /// Return (input, output) pairs instead of inputs.
    pub output: bool,
}

/// Why a history request cannot be answered.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum HistoryError {
    /// hist_access_type missing or unknown.
    #[error("unknown hist_access_type {0:?}: use \"tail\", \"range\" or \"search\"")]
    AccessType(String),
}

/// Read a history_request's content, filling in what a client left out.
pub fn parse(content: &Value) -> Result<HistoryQuery, HistoryError> {
    let int = |name: &str| content.get(name).and_then(Value::as_i64);
    let count = |name: &str| int(name).map(|v| v.max(0) as usize);
    let output = content
        .get("output")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let access = content
        .get("hist_access_type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let query = match access {
        "tail" => Query::Tail {
            n: count("n").unwrap_or(DEFAULT_TAIL),
        },
        "range" => Query::Range {
            session: int("session").unwrap_or(0),
            start: count("start").unwrap_or(0),
            stop: count("stop"),
        },
        "search" => Query::Search {
            pattern: content
                .get("pattern")
                .and_then(Value::as_str)
                .unwrap_or("*")
                .to_string(),
            unique: content
                .get("unique")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            n: count("n"),
        },
        other => return Err(HistoryError::AccessType(other.to_string())),
    };
    Ok(HistoryQuery { query, output })
}

impl History {
    /// Store a cell as line `line`.
    pub fn record(&mut self, line: usize, input: &str, output: &str) {
        self.entries.push(Entry {
            line,
            input: input.to_string(),
            output: output.to_string(),
        });
    }

    /// Answer a query.
    pub fn query(&self, request: &HistoryQuery) -> Vec<HistoryEntry> {
        let found: Vec<&Entry> = match &request.query {
            Query::Tail { n } => last(self.entries.iter().collect(), Some(*n)),
            Query::Range {
                session,
                start,
                stop,
            } => {
                let wanted = if *session <= 0 {
                    SESSION as i64 + session
                } else {
                    *session
                };
                if wanted != SESSION as i64 {
                    Vec::new()
                } else {
                    self.entries
                        .iter()
                        .filter(|e| e.line >= *start && stop.is_none_or(|stop| e.line < stop))
                        .collect()
                }
            }
            Query::Search { pattern, unique, n } => {
                let pattern: Vec<char> = pattern.chars().collect();
                let mut found: Vec<&Entry> = self
                    .entries
                    .iter()
                    .filter(|e| glob(&pattern, &e.input.chars().collect::<Vec<_>>()))
                    .collect();
                if *unique {
                    let mut kept: Vec<&Entry> = Vec::new();
                    for entry in found.into_iter().rev() {
                        if !kept.iter().any(|k| k.input == entry.input) {
                            kept.push(entry);
                        }
                    }
                    kept.reverse();
                    found = kept;
                }
                last(found, *n)
            }
        };
        found
            .into_iter()
            .map(|e| {
                if request.output {
                    HistoryEntry::InputOutput(SESSION, e.line, (e.input.clone(), e.output.clone()))
                } else {
                    HistoryEntry::Input(SESSION, e.line, e.input.clone())
                }
            })
            .collect()
    }
}

fn last(mut entries: Vec<&Entry>, n: Option<usize>) -> Vec<&Entry> {
    if let Some(n) = n {
        let skip = entries.len().saturating_sub(n);
        entries.drain(..skip);
    }
    entries
}

/// Whole-string glob match as SQLite's GLOB does it: `*`, `?`, `[abc]`, `[a-z]`, `[^x]`.
/// Backtracks only to the last `*`, so it takes O(pattern x text) steps at worst.
fn glob(pattern: &[char], text: &[char]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where to resume after the last `*`: its pattern end and the text it has swallowed.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if pattern.get(p) == Some(&'*') {
            p += 1;
            star = Some((p, t));
        } else if let Some(used) = single(&pattern[p..], text[t]) {
            p += used;
            t += 1;
        } else if let Some((after, swallowed)) = star {
            p = after;
            t = swallowed + 1;
            star = Some((after, t));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// How many pattern chars the element at the start of `pattern` spans, if it matches `c`.
fn single(pattern: &[char], c: char) -> Option<usize> {
    match pattern.first()? {
        '*' => None,
        '?' => Some(1),
        '[' => match class(&pattern[1..]) {
            Some((matches, used)) => matches(c).then_some(1 + used),
            // An unclosed bracket is a literal.
            None => (c == '[').then_some(1),
        },
        literal => (*literal == c).then_some(1),
    }
}

/// A bracket class after its `[`: a matcher and how many pattern chars it used (with `]`).
fn class(pattern: &[char]) -> Option<(impl Fn(char) -> bool, usize)> {
    let negate = matches!(pattern.first(), Some('^' | '!'));
    let start = usize::from(negate);
    // A `]` first in the class is a member, as in SQLite: the closing one comes after it.
    let close = start + 1 + pattern.get(start + 1..)?.iter().position(|c| *c == ']')?;
    let body: Vec<char> = pattern[start..close].to_vec();
    let matcher = move |c: char| {
        let mut hit = false;
        let mut i = 0;
        while i < body.len() {
            if i + 2 < body.len() && body[i + 1] == '-' {
                hit |= body[i] <= c && c <= body[i + 2];
                i += 3;
            } else {
                hit |= body[i] == c;
                i += 1;
            }
        }
        hit != negate
    };
    Some((matcher, close + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn history() -> History {
        let mut h = History::default();
        for (line, input) in ["register", "vars", "register", "refresh", "set a 1"]
            .iter()
            .enumerate()
        {
            h.record(line + 1, input, &format!("out {}", line + 1));
        }
        h
    }

    fn lines(h: &History, content: Value) -> Vec<usize> {
        h.query(&parse(&content).unwrap())
            .into_iter()
            .map(|e| match e {
                HistoryEntry::Input(_, line, _) | HistoryEntry::InputOutput(_, line, _) => line,
            })
            .collect()
    }

    #[test]
    fn tail_and_range() {
        let h = history();
        let tail = json!({"hist_access_type": "tail", "n": 2, "output": false, "raw": true});
        assert_eq!(lines(&h, tail), vec![4, 5]);
        let range = json!({"hist_access_type": "range", "session": 1, "start": 2, "stop": 4});
        assert_eq!(lines(&h, range), vec![2, 3]);
        let open = json!({"hist_access_type": "range", "session": 0, "start": 4, "stop": null});
        assert_eq!(lines(&h, open), vec![4, 5]);
        let earlier = json!({"hist_access_type": "range", "session": -1, "start": 0});
        assert!(lines(&h, earlier).is_empty());
    }

    #[test]
    fn search_as_jupyter_client_sends_it() {
        let h = history();
        let plain =
            json!({"hist_access_type": "search", "pattern": "re*", "output": false, "raw": true});
        assert_eq!(lines(&h, plain), vec![1, 3, 4]);
        let unique = json!({"hist_access_type": "search", "pattern": "re*", "unique": true});
        assert_eq!(lines(&h, unique), vec![3, 4]);
        let n = json!({"hist_access_type": "search", "pattern": "*", "n": 2});
        assert_eq!(lines(&h, n), vec![4, 5]);
    }

    #[test]
    fn output_pairs_carry_the_text() {
        let h = history();
        let q = parse(&json!({"hist_access_type": "tail", "n": 1, "output": true})).unwrap();
        let [HistoryEntry::InputOutput(1, 5, (input, output))] = &h.query(&q)[..] else {
            panic!("{:?}", h.query(&q))
        };
        assert_eq!((input.as_str(), output.as_str()), ("set a 1", "out 5"));
    }

    #[test]
    fn globs_like_sqlite() {
        let m = |p: &str, t: &str| {
            glob(
                &p.chars().collect::<Vec<_>>(),
                &t.chars().collect::<Vec<_>>(),
            )
        };
        assert!(m("re*", "register"));
        assert!(!m("re*", "vars re"));
        assert!(m("*re*", "vars re"));
        assert!(m("se? a 1", "set a 1"));
        assert!(m("[rv]*", "vars"));
        assert!(!m("[^rv]*", "vars"));
        assert!(m("[a-c]x", "bx"));
        assert!(m("[]]", "]"));
        assert!(m("[x", "[x"));
        assert!(m("é*", "été"));
        assert!(m("*a*b", "xaxxab"));
        assert!(!m("*a*b", "xaxxa"));
        assert!(m("**", ""));
        let long = "a".repeat(5000);
        assert!(!m("*a*a*a*a*a*a*a*b", &long));
    }

    #[test]
    fn refuses_unknown_access_types() {
        assert_eq!(
            parse(&json!({"hist_access_type": "all"})),
            Err(HistoryError::AccessType("all".into()))
        );
    }
}
