//! Cell text to commands: classification (helper or Rust), shell-like words with quotes,
//! escapes, `\` continuation, comments and `$variable` interpolation markers.

/// Every helper command name.
pub const HELPERS: &[&str] = &[
    "server",
    "connect",
    "register",
    "token",
    "introspect",
    "fetch",
    "launch",
    "authorize",
    "exchange",
    "refresh",
    "id-token",
    "keys",
    "backend",
    "assertion",
    "simulate",
    "http",
    "vars",
    "set",
    "unset",
    "help",
];

/// What a cell is.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Nothing but blank lines and comments.
    Empty,
    /// Helper commands, one per logical line.
    Helper(Vec<CommandLine>),
    /// Rust code for the evaluator.
    Rust(String),
}

/// One helper command as written.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandLine {
    /// The command's name (without a `%` prefix).
    pub name: String,
    /// Its arguments, still carrying variable references.
    pub args: Vec<Word>,
}

/// A word: literal text and variable references, concatenated.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Word(pub Vec<Piece>);

/// Part of a word.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    /// Literal text.
    Text(String),
    /// `$name` or `$name.path.to.field`.
    Var {
        /// The variable.
        name: String,
        /// Fields or array indexes to follow into its JSON value.
        path: Vec<String>,
    },
}

impl Word {
    /// A word of plain text.
    pub fn text(s: &str) -> Word {
        Word(vec![Piece::Text(s.to_string())])
    }

    /// The word's text when it holds no variables.
    pub fn literal(&self) -> Option<String> {
        let mut out = String::new();
        for piece in &self.0 {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Var { .. } => return None,
            }
        }
        Some(out)
    }
}

/// Why a cell could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    /// A quote that never closes.
    #[error("unclosed {0} quote")]
    UnclosedQuote(char),
    /// A `\` at the very end of the cell.
    #[error("the cell ends with a line-continuation backslash")]
    TrailingBackslash,
    /// `${` without its `}`, or `${}`.
    #[error("malformed variable reference {0:?}; write $name, ${{name}} or $response.field")]
    BadVariable(String),
}

/// Whether a cell is ready to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completeness {
    /// Run it.
    Complete,
    /// Wait for more lines.
    Incomplete,
}

/// Decide what a cell is and, for helper cells, split it into commands.
pub fn classify(cell: &str) -> Result<Cell, ParseError> {
    let first = cell
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'));
    match first {
        None => Ok(Cell::Empty),
        Some(line) if is_helper_line(line) || is_command_shaped(line) => {
            Ok(Cell::Helper(commands(cell)?))
        }
        Some(_) => Ok(Cell::Rust(cell.to_string())),
    }
}

/// A line is a helper command when it starts with `%`, or with a helper's name that is not
/// followed by one of `( = . ! : ; [` (which make it Rust: `token = 3;`, `fetch.len()`).
pub fn is_helper_line(line: &str) -> bool {
    let line = line.trim_start();
    if line.starts_with('%') {
        return true;
    }
    let name_len = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(line.len());
    if !HELPERS.contains(&&line[..name_len]) {
        return false;
    }
    let rest = line[name_len..].trim_start();
    !rest.starts_with(['(', '=', '.', '!', ':', ';', '['])
}

/// Rust's keywords (strict, reserved and contextual): a line that starts with one is Rust
/// even when a word follows (`let x`, `union U`, `macro_rules! m`).
const RUST_KEYWORDS: &[&str] = &[
    "as",
    "async",
    "auto",
    "await",
    "become",
    "box",
    "break",
    "const",
    "continue",
    "crate",
    "default",
    "do",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "final",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "macro",
    "macro_rules",
    "match",
    "mod",
    "move",
    "mut",
    "override",
    "priv",
    "pub",
    "raw",
    "ref",
    "return",
    "safe",
    "self",
    "Self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "try",
    "type",
    "typeof",
    "union",
    "unsafe",
    "unsized",
    "use",
    "virtual",
    "where",
    "while",
    "yield",
];

/// A line shaped like a command though it names no helper: a word that is not a Rust
/// keyword, a space, then an argument (`fecth Patient/x`, `frobnicate Patient`). Rust never
/// puts two such words side by side, so the line is a mistyped command, not Rust.
pub fn is_command_shaped(line: &str) -> bool {
    let line = line.trim_start();
    if !line.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return false;
    }
    let name_len = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(line.len());
    let (name, rest) = line.split_at(name_len);
    let argument = rest.trim_start();
    if RUST_KEYWORDS.contains(&name) || argument.len() == rest.len() || argument.is_empty() {
        return false;
    }
    // `x as u8` is a cast; `x - 1`, `x / 2` and the like are arithmetic.
    let second = argument
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .next()
        .unwrap_or_default();
    if second == "as" {
        return false;
    }
    let mut chars = argument.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphanumeric() => true,
        Some('_' | '$' | '"' | '\'' | '%') => true,
        Some('-') => {
            chars.next() == Some('-') && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        }
        _ => false,
    }
}

/// The helper a single mistyped word most likely meant: one edit from a helper name of five
/// letters or more. Kept this tight so a Rust value's name (`s`, `sets`, `val`) never looks
/// like a misspelt `set`.
pub fn near_helper(word: &str) -> Option<&'static str> {
    if word.len() < 5 {
        return None;
    }
    HELPERS
        .iter()
        .copied()
        .filter(|name| name.len() >= 5 && *name != word)
        .find(|name| strsim::damerau_levenshtein(word, name) == 1)
}

/// Whether a cell is complete: helper cells need closed quotes and no trailing `\`; Rust
/// needs balanced brackets.
pub fn is_complete(cell: &str) -> Completeness {
    match classify(cell) {
        Err(ParseError::UnclosedQuote(_)) | Err(ParseError::TrailingBackslash) => {
            Completeness::Incomplete
        }
        Ok(Cell::Rust(code)) if !rust_brackets_balanced(&code) => Completeness::Incomplete,
        _ => Completeness::Complete,
    }
}

/// Split a helper cell into commands.
pub fn commands(cell: &str) -> Result<Vec<CommandLine>, ParseError> {
    let mut out = Vec::new();
    for words in Lexer::new(cell).run()? {
        let mut words = words.into_iter();
        let Some(first) = words.next() else { continue };
        let name = first.literal().unwrap_or_default();
        let name = name.strip_prefix('%').unwrap_or(&name).to_string();
        out.push(CommandLine {
            name,
            args: words.collect(),
        });
    }
    Ok(out)
}

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    lines: Vec<Vec<Word>>,
    words: Vec<Word>,
    word: Word,
    started: bool,
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str) -> Self {
        Lexer {
            chars: text.chars().peekable(),
            lines: Vec::new(),
            words: Vec::new(),
            word: Word::default(),
            started: false,
        }
    }

    fn push_char(&mut self, c: char) {
        self.started = true;
        match self.word.0.last_mut() {
            Some(Piece::Text(t)) => t.push(c),
            _ => self.word.0.push(Piece::Text(c.to_string())),
        }
    }

    fn end_word(&mut self) {
        if self.started {
            self.words.push(std::mem::take(&mut self.word));
        }
        self.started = false;
    }

    fn end_line(&mut self) {
        self.end_word();
        if !self.words.is_empty() {
            self.lines.push(std::mem::take(&mut self.words));
        }
    }

    fn run(mut self) -> Result<Vec<Vec<Word>>, ParseError> {
        while let Some(c) = self.chars.next() {
            match c {
                '\n' => self.end_line(),
                c if c.is_whitespace() => self.end_word(),
                '#' if !self.started => {
                    while self.chars.peek().is_some_and(|&c| c != '\n') {
                        self.chars.next();
                    }
                }
                '\\' => match self.chars.next() {
                    Some('\n') => self.continuation()?,
                    Some('\r') if self.chars.peek() == Some(&'\n') => {
                        self.chars.next();
                        self.continuation()?;
                    }
                    Some(next) => self.push_char(next),
                    None => return Err(ParseError::TrailingBackslash),
                },
                '\'' => {
                    self.started = true;
                    loop {
                        match self.chars.next() {
                            Some('\'') => break,
                            Some(c) => self.push_char(c),
                            None => return Err(ParseError::UnclosedQuote('\'')),
                        }
                    }
                }
                '"' => {
                    self.started = true;
                    loop {
                        match self.chars.next() {
                            Some('"') => break,
                            Some('\\') => match self.chars.next() {
                                Some(e @ ('"' | '\\' | '$')) => self.push_char(e),
                                Some('\n') => {}
                                Some(other) => {
                                    self.push_char('\\');
                                    self.push_char(other);
                                }
                                None => return Err(ParseError::UnclosedQuote('"')),
                            },
                            Some('$') => self.variable()?,
                            Some(c) => self.push_char(c),
                            None => return Err(ParseError::UnclosedQuote('"')),
                        }
                    }
                }
                '$' => self.variable()?,
                c => self.push_char(c),
            }
        }
        self.end_line();
        Ok(self.lines)
    }

    /// After a `\` and its line break: the command goes on, so there must be a next line
    /// (a line piped in arrives with its newline, and still waits for the next one).
    fn continuation(&mut self) -> Result<(), ParseError> {
        match self.chars.peek() {
            Some(_) => Ok(()),
            None => Err(ParseError::TrailingBackslash),
        }
    }

    /// After a `$`: `${name.path}`, `$name.path`, or a literal `$`.
    fn variable(&mut self) -> Result<(), ParseError> {
        let braced = self.chars.peek() == Some(&'{');
        if braced {
            self.chars.next();
            let mut inner = String::new();
            loop {
                match self.chars.next() {
                    Some('}') => break,
                    Some(c) if c != '\n' => inner.push(c),
                    _ => return Err(ParseError::BadVariable(format!("${{{inner}"))),
                }
            }
            let mut parts = inner.split('.').map(str::to_string);
            let name = parts.next().unwrap_or_default();
            let path: Vec<String> = parts.collect();
            if !is_name(&name) || path.iter().any(|p| p.is_empty()) {
                return Err(ParseError::BadVariable(format!("${{{inner}}}")));
            }
            self.push_var(name, path);
            return Ok(());
        }
        let mut name = String::new();
        while let Some(&c) = self.chars.peek() {
            let ok = if name.is_empty() {
                c.is_ascii_alphabetic() || c == '_'
            } else {
                c.is_ascii_alphanumeric() || c == '_'
            };
            if !ok {
                break;
            }
            name.push(c);
            self.chars.next();
        }
        if name.is_empty() {
            self.push_char('$');
            return Ok(());
        }
        let mut path = Vec::new();
        loop {
            let mut lookahead = self.chars.clone();
            if lookahead.next() != Some('.') {
                break;
            }
            let segment: String = lookahead
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                .collect();
            if segment.is_empty() {
                break;
            }
            self.chars.next();
            for _ in 0..segment.chars().count() {
                self.chars.next();
            }
            path.push(segment);
        }
        self.push_var(name, path);
        Ok(())
    }

    fn push_var(&mut self, name: String, path: Vec<String>) {
        self.started = true;
        self.word.0.push(Piece::Var { name, path });
    }
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Brackets balance outside strings, chars and comments (a rough Rust lexer, enough to
/// tell a finished cell from one still being typed).
fn rust_brackets_balanced(code: &str) -> bool {
    let mut depth: i64 = 0;
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            '"' => {
                let mut closed = false;
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => {
                            closed = true;
                            break;
                        }
                        _ => {}
                    }
                }
                if !closed {
                    return false;
                }
            }
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    if c == '*' && chars.peek() == Some(&'/') {
                        chars.next();
                        closed = true;
                        break;
                    }
                }
                if !closed {
                    return false;
                }
            }
            '\'' => {
                // A char literal ('x', '\n') or a lifetime ('a): skip a short literal only.
                let mut look = chars.clone();
                let literal_len = match (look.next(), look.next(), look.next()) {
                    (Some('\\'), Some(_), Some('\'')) => Some(3),
                    (Some(c), Some('\''), _) if c != '\\' => Some(2),
                    _ => None,
                };
                if let Some(n) = literal_len {
                    for _ in 0..n {
                        chars.next();
                    }
                }
            }
            _ => {}
        }
    }
    depth <= 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(cell: &str) -> Vec<Vec<Word>> {
        commands(cell)
            .unwrap()
            .into_iter()
            .map(|c| {
                let mut all = vec![Word::text(&c.name)];
                all.extend(c.args);
                all
            })
            .collect()
    }

    fn lit(cell: &str) -> Vec<Vec<String>> {
        words(cell)
            .into_iter()
            .map(|ws| ws.iter().map(|w| w.literal().unwrap()).collect())
            .collect()
    }

    #[test]
    fn helper_names_start_helper_cells() {
        for line in [
            "register",
            "fetch Patient/smart-1288992",
            "token --user daniel-adams",
            "  help",
            "%fetch x",
            "%nonsense",
            "id-token",
            "id-token $id_token",
        ] {
            assert!(matches!(classify(line), Ok(Cell::Helper(_))), "{line}");
        }
    }

    #[test]
    fn rust_that_starts_with_a_helper_name_stays_rust() {
        for line in [
            "register(1)",
            "token = 3;",
            "fetch.len()",
            "help!()",
            "vars: u8",
            "set;",
            "fetch [0]",
            "let x = 1;",
            "fetchy",
            "token-1",
            "id - token",
            "println!(\"hi\")",
        ] {
            assert!(matches!(classify(line), Ok(Cell::Rust(_))), "{line}");
        }
    }

    #[test]
    fn command_shaped_lines_are_helpers_even_when_mistyped() {
        for line in [
            "fecth Patient/x",
            "frobnicate Patient",
            "fecth Patient?family=Adams",
            "regster --name x",
            "tokn --user joseph-ross",
            "id-tokn $id_token",
            "frob 'a b'",
        ] {
            match classify(line) {
                Ok(Cell::Helper(c)) => assert_eq!(c.len(), 1, "{line}"),
                other => panic!("{line}: {other:?}"),
            }
        }
        for line in [
            "x as u8",
            "x - 1",
            "x / 2",
            "x -1",
            "let x = 1;",
            "union U { a: u8 }",
            "macro_rules! m { () => {} }",
            "pub fn f() {}",
            "async move {}",
            "x",
            "regster",
            "foo(1)",
            "foo::bar baz",
            "v .len()",
        ] {
            assert!(matches!(classify(line), Ok(Cell::Rust(_))), "{line}");
        }
    }

    #[test]
    fn a_near_helper_is_one_edit_from_a_long_name() {
        assert_eq!(near_helper("fecth"), Some("fetch"));
        assert_eq!(near_helper("regster"), Some("register"));
        assert_eq!(near_helper("fetch"), None);
        for lost in ["s", "st", "sets", "val", "x", "res", "vals", "help_me"] {
            assert_eq!(near_helper(lost), None, "{lost}");
        }
    }

    #[test]
    fn comments_and_blank_lines_are_skipped_when_classifying() {
        assert!(
            matches!(classify("\n# set up\n\nregister\n"), Ok(Cell::Helper(c)) if c.len() == 1)
        );
        assert_eq!(classify("  \n# nothing\n"), Ok(Cell::Empty));
        assert!(matches!(
            classify("#[derive(Debug)]\nstruct A;"),
            Ok(Cell::Rust(_))
        ));
    }

    #[test]
    fn quotes_escapes_and_continuations() {
        assert_eq!(
            lit("set a 'one two' \"three four\" five\\ six"),
            vec![vec!["set", "a", "one two", "three four", "five six"]]
        );
        assert_eq!(lit("set a ''"), vec![vec!["set", "a", ""]]);
        assert_eq!(
            lit("set a \"q\\\"uote\\\\\" 'it''s'"),
            vec![vec!["set", "a", "q\"uote\\", "its"]]
        );
        assert_eq!(
            lit("register --name A \\\n  --scope S\nvars"),
            vec![
                vec!["register", "--name", "A", "--scope", "S"],
                vec!["vars"]
            ]
        );
        assert_eq!(
            lit("fetch Patient # the seed's patient"),
            vec![vec!["fetch", "Patient"]]
        );
        assert_eq!(lit("set a b#c"), vec![vec!["set", "a", "b#c"]]);
        assert_eq!(
            lit("set price '$5' \"\\$6\" $"),
            vec![vec!["set", "price", "$5", "$6", "$"]]
        );
    }

    #[test]
    fn variables_in_every_spelling() {
        let w = &words(
            "fetch Patient/$patient ${access_token}x \"$response.entry.0.resource.id\" '$no'",
        )[0];
        assert_eq!(
            w[1].0,
            vec![
                Piece::Text("Patient/".into()),
                Piece::Var {
                    name: "patient".into(),
                    path: vec![]
                }
            ]
        );
        assert_eq!(
            w[2].0,
            vec![
                Piece::Var {
                    name: "access_token".into(),
                    path: vec![]
                },
                Piece::Text("x".into())
            ]
        );
        assert_eq!(
            w[3].0,
            vec![Piece::Var {
                name: "response".into(),
                path: vec!["entry".into(), "0".into(), "resource".into(), "id".into()]
            }]
        );
        assert_eq!(w[4].literal().unwrap(), "$no");
        let w = &words("set x $client_id.")[0];
        assert_eq!(
            w[2].0,
            vec![
                Piece::Var {
                    name: "client_id".into(),
                    path: vec![]
                },
                Piece::Text(".".into())
            ]
        );
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        assert_eq!(
            classify("set a 'open"),
            Err(ParseError::UnclosedQuote('\''))
        );
        assert_eq!(
            classify("set a \"open"),
            Err(ParseError::UnclosedQuote('"'))
        );
        assert_eq!(classify("set a \\"), Err(ParseError::TrailingBackslash));
        assert!(matches!(
            classify("set a ${open"),
            Err(ParseError::BadVariable(_))
        ));
        assert!(matches!(
            classify("set a ${}"),
            Err(ParseError::BadVariable(_))
        ));
        assert!(matches!(
            classify("set a ${1x}"),
            Err(ParseError::BadVariable(_))
        ));
    }

    #[test]
    fn completeness_follows_quotes_backslashes_and_brackets() {
        assert_eq!(is_complete("register --name 'My"), Completeness::Incomplete);
        assert_eq!(is_complete("register \\"), Completeness::Incomplete);
        assert_eq!(is_complete("register \\\n"), Completeness::Incomplete);
        assert_eq!(is_complete("register \\\r\n"), Completeness::Incomplete);
        assert_eq!(
            is_complete("register \\\n--public\n"),
            Completeness::Complete
        );
        assert_eq!(
            is_complete("register --name 'My App'"),
            Completeness::Complete
        );
        assert_eq!(is_complete("fn main() {"), Completeness::Incomplete);
        assert_eq!(is_complete("let s = \"{\";"), Completeness::Complete);
        assert_eq!(is_complete("let c = '{'; // {"), Completeness::Complete);
        assert_eq!(
            is_complete("fn f<'a>(x: &'a str) {}"),
            Completeness::Complete
        );
        assert_eq!(is_complete("/* open"), Completeness::Incomplete);
        assert_eq!(is_complete("vec![1, 2"), Completeness::Incomplete);
    }
}
