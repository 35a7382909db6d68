//! HTML forms as a browser submits them, read by a small scanner of start and end tags and
//! their attributes (quoted or not, character references decoded; comments and raw-text
//! elements skipped). A DOM, or even html5ever's tokenizer, cost the generator more CPU per
//! page than the server spent drawing it, and on a shared machine that CPU is taken from the
//! server being measured.

/// One form control a submission can carry.
#[derive(Debug, Clone, PartialEq)]
enum Control {
    /// Text, password and hidden inputs: sent with their value (or what is typed in).
    Field { name: String, value: String },
    /// A checkbox or radio button: sent when checked.
    Check {
        name: String,
        value: String,
        checked: bool,
        radio: bool,
    },
    /// A select: sends its selected option, or the first.
    Select {
        name: String,
        options: Vec<(String, bool)>,
    },
    /// A submit button: sends its name and value only when it is the one pressed.
    Button {
        name: Option<String>,
        value: String,
        label: String,
    },
}

/// One form: where it posts, and its controls in document order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Form {
    /// The action attribute as written (this server's forms use absolute paths).
    pub action: String,
    controls: Vec<Control>,
}

/// Why a form could not be submitted the way the flow wanted.
#[derive(Debug, thiserror::Error)]
pub enum FormError {
    /// No button with this label.
    #[error("the form to {action} has no button {label:?}")]
    NoButton {
        /// The form's action.
        action: String,
        /// The label looked for.
        label: String,
    },
    /// A radio button or option that is not on the form.
    #[error("the form to {action} offers no {name}={value}")]
    NoChoice {
        /// The form's action.
        action: String,
        /// The control's name.
        name: String,
        /// The value asked for.
        value: String,
    },
}

impl Form {
    /// The urlencoded body a browser sends when `button` is pressed, with `typed` filled
    /// into text fields and radio buttons chosen by value.
    pub fn submit(&self, button: &str, typed: &[(&str, &str)]) -> Result<String, FormError> {
        let mut body = form_urlencoded::Serializer::new(String::new());
        for (name, value) in typed {
            let is_radio = self
                .controls
                .iter()
                .any(|c| matches!(c, Control::Check { name: n, radio: true, .. } if n == name));
            let offered = self.controls.iter().any(|c| {
                matches!(c, Control::Check { name: n, value: v, radio: true, .. } if n == name && v == value)
            });
            if is_radio && !offered {
                return Err(FormError::NoChoice {
                    action: self.action.clone(),
                    name: name.to_string(),
                    value: value.to_string(),
                });
            }
        }
        let typed_value = |name: &str| typed.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
        let mut pressed = false;
        for control in &self.controls {
            match control {
                Control::Field { name, value } => {
                    body.append_pair(name, typed_value(name).unwrap_or(value));
                }
                Control::Check {
                    name,
                    value,
                    checked,
                    radio,
                } => {
                    let on = match (radio, typed_value(name)) {
                        (true, Some(chosen)) => chosen == value,
                        _ => *checked,
                    };
                    if on {
                        body.append_pair(name, value);
                    }
                }
                Control::Select { name, options } => {
                    let chosen = options.iter().find(|(_, s)| *s).or(options.first());
                    if let Some((value, _)) = chosen {
                        body.append_pair(name, value);
                    }
                }
                Control::Button { name, value, label } => {
                    if label == button && !pressed {
                        pressed = true;
                        if let Some(name) = name {
                            body.append_pair(name, value);
                        }
                    }
                }
            }
        }
        if !pressed {
            return Err(FormError::NoButton {
                action: self.action.clone(),
                label: button.to_string(),
            });
        }
        Ok(body.finish())
    }
}

/// Every form on a page, in document order.
pub fn forms(html: &str) -> Vec<Form> {
    let mut state = State::default();
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        if let Some((_, _, label)) = &mut state.button {
            label.push_str(&decode(&rest[..lt]));
        }
        rest = &rest[lt + 1..];
        if let Some(comment) = rest.strip_prefix("!--") {
            rest = comment.find("-->").map_or("", |end| &comment[end + 3..]);
            continue;
        }
        if rest.starts_with(['!', '?']) {
            rest = rest.find('>').map_or("", |end| &rest[end + 1..]);
            continue;
        }
        let (closing, after) = match rest.strip_prefix('/') {
            Some(after) => (true, after),
            None => (false, rest),
        };
        let name_len = after
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(after.len());
        if name_len == 0 {
            continue;
        }
        let name = after[..name_len].to_ascii_lowercase();
        let (tag, remainder) = read_tag(name, &after[name_len..]);
        rest = remainder;
        if closing {
            state.end(&tag.name);
            continue;
        }
        state.start(&tag);
        if matches!(tag.name.as_str(), "style" | "script" | "textarea" | "title") {
            rest = find_end_tag(rest, &tag.name).map_or("", |end| &rest[end..]);
        }
    }
    state.forms
}

/// The only form posting to `action`, if there is exactly one.
pub fn form_to<'a>(forms: &'a [Form], action: &str) -> Option<&'a Form> {
    let mut found = forms.iter().filter(|f| f.action == action);
    match (found.next(), found.next()) {
        (Some(form), None) => Some(form),
        _ => None,
    }
}

/// A start or end tag's name and attributes.
struct Tag {
    name: String,
    attrs: Vec<(String, String)>,
}

impl Tag {
    fn attr(&self, name: &str) -> Option<String> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    fn has(&self, name: &str) -> bool {
        self.attrs.iter().any(|(n, _)| n == name)
    }
}

/// Read attributes up to the tag's `>`; the tag and what follows it.
fn read_tag(name: String, mut rest: &str) -> (Tag, &str) {
    let mut attrs = Vec::new();
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '/');
        if rest.is_empty() {
            break;
        }
        if let Some(after) = rest.strip_prefix('>') {
            rest = after;
            break;
        }
        let len = rest
            .find(|c: char| c.is_ascii_whitespace() || matches!(c, '=' | '>' | '/'))
            .unwrap_or(rest.len())
            .max(1);
        let attr = rest[..len].to_ascii_lowercase();
        rest = rest[len..].trim_start_matches(|c: char| c.is_ascii_whitespace());
        let mut value = String::new();
        if let Some(after) = rest.strip_prefix('=') {
            let after = after.trim_start_matches(|c: char| c.is_ascii_whitespace());
            let (raw, remainder) = match after.chars().next() {
                Some(quote @ ('"' | '\'')) => {
                    let body = &after[1..];
                    match body.find(quote) {
                        Some(end) => (&body[..end], &body[end + 1..]),
                        None => (body, ""),
                    }
                }
                _ => {
                    let end = after
                        .find(|c: char| c.is_ascii_whitespace() || c == '>')
                        .unwrap_or(after.len());
                    (&after[..end], &after[end..])
                }
            };
            value = decode(raw);
            rest = remainder;
        }
        attrs.push((attr, value));
    }
    (Tag { name, attrs }, rest)
}

/// Where `</name` starts, any case (`name` is lower case).
fn find_end_tag(haystack: &str, name: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = haystack[from..].find("</") {
        let start = from + at;
        let candidate = haystack.as_bytes().get(start + 2..start + 2 + name.len())?;
        if candidate.eq_ignore_ascii_case(name.as_bytes()) {
            return Some(start);
        }
        from = start + 2;
    }
    None
}

/// Decode the character references an HTML template escaper writes.
fn decode(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let Some(semi) = rest.find(';').filter(|&s| s <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|dec| dec.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[derive(Default)]
struct State {
    forms: Vec<Form>,
    in_form: bool,
    select: Option<(String, Vec<(String, bool)>)>,
    button: Option<(Option<String>, String, String)>,
}

impl State {
    fn push(&mut self, control: Control) {
        if let (true, Some(form)) = (self.in_form, self.forms.last_mut()) {
            form.controls.push(control);
        }
    }

    fn start(&mut self, tag: &Tag) {
        match tag.name.as_str() {
            "form" => {
                self.in_form = true;
                self.forms.push(Form {
                    action: tag.attr("action").unwrap_or_default(),
                    controls: Vec::new(),
                });
            }
            "input" => {
                let Some(name) = tag.attr("name") else {
                    return;
                };
                let value = tag.attr("value").unwrap_or_default();
                let kind = tag
                    .attr("type")
                    .unwrap_or_else(|| "text".into())
                    .to_ascii_lowercase();
                match kind.as_str() {
                    "checkbox" | "radio" => self.push(Control::Check {
                        name,
                        value,
                        checked: tag.has("checked"),
                        radio: kind == "radio",
                    }),
                    "submit" => self.push(Control::Button {
                        name: Some(name),
                        label: value.clone(),
                        value,
                    }),
                    _ => self.push(Control::Field { name, value }),
                }
            }
            "select" => self.select = tag.attr("name").map(|n| (n, Vec::new())),
            "option" => {
                if let (Some((_, options)), Some(value)) = (&mut self.select, tag.attr("value")) {
                    options.push((value, tag.has("selected")));
                }
            }
            "button" => {
                self.button = Some((
                    tag.attr("name"),
                    tag.attr("value").unwrap_or_default(),
                    String::new(),
                ))
            }
            _ => {}
        }
    }

    fn end(&mut self, name: &str) {
        match name {
            "form" => self.in_form = false,
            "select" => {
                if let Some((name, options)) = self.select.take() {
                    self.push(Control::Select { name, options });
                }
            }
            "button" => {
                if let Some((name, value, label)) = self.button.take() {
                    let label = label.split_whitespace().collect::<Vec<_>>().join(" ");
                    self.push(Control::Button { name, value, label });
                }
            }
            _ => {}
        }
    }
}
