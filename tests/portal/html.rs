//! Pages as a browser sees them: their text, and their forms with every control a person
//! can see or press, serialized the way HTML says a browser submits them.

use reqwest::header::{HeaderMap, CONTENT_TYPE};
use reqwest::StatusCode;
use scraper::{ElementRef, Html, Selector};
use url::Url;

/// A page the browser stopped on (any status that is not a redirect).
#[derive(Debug, Clone)]
pub struct Page {
    /// Its status.
    pub status: StatusCode,
    /// Where it was loaded from.
    pub url: Url,
    /// Its response headers.
    pub headers: HeaderMap,
    /// Its HTML.
    pub body: String,
}

fn selector(css: &str) -> Selector {
    Selector::parse(css).expect("a valid CSS selector")
}

fn squeeze(text: impl Iterator<Item = impl AsRef<str>>) -> String {
    let joined: Vec<String> = text.map(|t| t.as_ref().to_string()).collect();
    joined
        .join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

impl Page {
    /// The body's visible text, whitespace squeezed.
    pub fn text(&self) -> String {
        let doc = Html::parse_document(&self.body);
        let body = doc.select(&selector("body")).next();
        body.map(|b| squeeze(b.text())).unwrap_or_default()
    }

    /// The `Content-Type` header.
    pub fn content_type(&self) -> &str {
        self.headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Every form on the page, in document order.
    pub fn forms(&self) -> Vec<Form> {
        let doc = Html::parse_document(&self.body);
        doc.select(&selector("form"))
            .map(|f| Form::read(&self.url, f))
            .collect()
    }

    /// Whether a form posts to this path.
    pub fn has_form(&self, path: &str) -> bool {
        self.forms().iter().any(|f| f.action.path() == path)
    }

    /// The only form that posts to this path (a test failure shows the page otherwise).
    pub fn form(&self, path: &str) -> Form {
        let mut found: Vec<Form> = self
            .forms()
            .into_iter()
            .filter(|f| f.action.path() == path)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "expected one form to {path} on {} ({}), page says: {}",
            self.url,
            self.status,
            self.text()
        );
        found.remove(0)
    }
}

/// What kind of control a form element is.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// Text, password, hidden inputs and textareas: a name and a value.
    Field(String),
    /// A radio button.
    Radio,
    /// A checkbox.
    Checkbox,
    /// A select, with its option values.
    Select(Vec<String>),
    /// A submit button, with its label.
    Button(String),
}

#[derive(Debug, Clone)]
struct Control {
    kind: Kind,
    name: String,
    value: String,
    checked: bool,
}

/// One HTML form and the state of its controls.
#[derive(Debug, Clone)]
pub struct Form {
    /// Where it submits to, resolved against the page.
    pub action: Url,
    /// `get` or `post`.
    pub method: String,
    controls: Vec<Control>,
}

impl Form {
    fn read(page: &Url, form: ElementRef<'_>) -> Form {
        let attr = |e: &ElementRef<'_>, name: &str| e.value().attr(name).map(str::to_string);
        let action = page
            .join(form.value().attr("action").unwrap_or(""))
            .expect("a resolvable form action");
        let method = attr(&form, "method")
            .unwrap_or_else(|| "get".into())
            .to_ascii_lowercase();
        let mut controls = Vec::new();
        for e in form.select(&selector("input, select, textarea, button")) {
            if e.value().attr("disabled").is_some() {
                continue;
            }
            let name = attr(&e, "name").unwrap_or_default();
            let checked = e.value().attr("checked").is_some();
            let (kind, value) = match e.value().name() {
                "select" => {
                    let options: Vec<(String, bool)> = e
                        .select(&selector("option"))
                        .map(|o| {
                            let value = attr(&o, "value").unwrap_or_else(|| squeeze(o.text()));
                            (value, o.value().attr("selected").is_some())
                        })
                        .collect();
                    let chosen = options
                        .iter()
                        .find(|(_, selected)| *selected)
                        .or(options.first())
                        .map(|(v, _)| v.clone())
                        .unwrap_or_default();
                    let values = options.into_iter().map(|(v, _)| v).collect();
                    (Kind::Select(values), chosen)
                }
                "textarea" => (Kind::Field("textarea".into()), squeeze(e.text())),
                "button" => {
                    let kind = attr(&e, "type").unwrap_or_else(|| "submit".into());
                    if kind != "submit" {
                        continue;
                    }
                    (
                        Kind::Button(squeeze(e.text())),
                        attr(&e, "value").unwrap_or_default(),
                    )
                }
                _ => {
                    let kind = attr(&e, "type")
                        .unwrap_or_else(|| "text".into())
                        .to_ascii_lowercase();
                    let value = attr(&e, "value");
                    match kind.as_str() {
                        "radio" => (Kind::Radio, value.unwrap_or_else(|| "on".into())),
                        "checkbox" => (Kind::Checkbox, value.unwrap_or_else(|| "on".into())),
                        "submit" => {
                            let label = value.clone().unwrap_or_else(|| "Submit".into());
                            (Kind::Button(label), value.unwrap_or_default())
                        }
                        "button" | "reset" | "image" | "file" => continue,
                        _ => (Kind::Field(kind), value.unwrap_or_default()),
                    }
                }
            };
            controls.push(Control {
                kind,
                name,
                value,
                checked,
            });
        }
        Form {
            action,
            method,
            controls,
        }
    }

    /// A form no page showed: a forged request, made on purpose by a test.
    pub fn forge(action: Url, fields: &[(&str, &str)]) -> Form {
        let controls = fields
            .iter()
            .map(|(name, value)| Control {
                kind: Kind::Field("hidden".into()),
                name: name.to_string(),
                value: value.to_string(),
                checked: false,
            })
            .collect();
        Form {
            action,
            method: "post".into(),
            controls,
        }
    }

    fn find_mut(&mut self, name: &str, want: impl Fn(&Kind) -> bool) -> &mut Control {
        let names: Vec<String> = self.controls.iter().map(|c| c.name.clone()).collect();
        self.controls
            .iter_mut()
            .find(|c| c.name == name && want(&c.kind))
            .unwrap_or_else(|| panic!("no such control {name:?} in the form; it has {names:?}"))
    }

    /// The value a field (hidden, text, select) holds now.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.controls
            .iter()
            .find(|c| c.name == name && matches!(c.kind, Kind::Field(_) | Kind::Select(_)))
            .map(|c| c.value.as_str())
    }

    /// Type into a text or password input, as a person can.
    pub fn fill(&mut self, name: &str, value: &str) {
        let control = self.find_mut(
            name,
            |k| matches!(k, Kind::Field(t) if t == "text" || t == "password" || t == "textarea"),
        );
        control.value = value.to_string();
    }

    /// Pick an option of a select; the option must be on offer.
    pub fn select(&mut self, name: &str, value: &str) {
        let control = self.find_mut(name, |k| matches!(k, Kind::Select(_)));
        let Kind::Select(options) = &control.kind else {
            unreachable!()
        };
        assert!(
            options.iter().any(|o| o == value),
            "{name} offers {options:?}, not {value:?}"
        );
        control.value = value.to_string();
    }

    /// The options a select offers.
    pub fn options(&self, name: &str) -> Vec<String> {
        self.controls
            .iter()
            .find_map(|c| match &c.kind {
                Kind::Select(options) if c.name == name => Some(options.clone()),
                _ => None,
            })
            .unwrap_or_default()
    }

    /// Click a radio button (the others of its group go off); it must be on the page.
    pub fn choose(&mut self, name: &str, value: &str) {
        let offered = self.choices(name);
        assert!(
            offered.iter().any(|v| v == value),
            "{name} offers {offered:?}, not {value:?}"
        );
        for c in self.controls.iter_mut().filter(|c| c.name == name) {
            if matches!(c.kind, Kind::Radio) {
                c.checked = c.value == value;
            }
        }
    }

    /// The values of a radio group or checkbox set, in page order.
    pub fn choices(&self, name: &str) -> Vec<String> {
        self.controls
            .iter()
            .filter(|c| c.name == name && matches!(c.kind, Kind::Radio | Kind::Checkbox))
            .map(|c| c.value.clone())
            .collect()
    }

    /// The checked values of a radio group or checkbox set.
    pub fn checked(&self, name: &str) -> Vec<String> {
        self.controls
            .iter()
            .filter(|c| c.name == name && c.checked)
            .filter(|c| matches!(c.kind, Kind::Radio | Kind::Checkbox))
            .map(|c| c.value.clone())
            .collect()
    }

    /// Tick or untick one checkbox; it must be on the page.
    pub fn tick(&mut self, name: &str, value: &str, on: bool) {
        let offered = self.choices(name);
        let target = self
            .controls
            .iter_mut()
            .find(|c| c.name == name && c.value == value && matches!(c.kind, Kind::Checkbox))
            .unwrap_or_else(|| panic!("no checkbox {name}={value}; the form offers {offered:?}"));
        target.checked = on;
    }

    /// The labels of the submit buttons.
    pub fn buttons(&self) -> Vec<String> {
        self.controls
            .iter()
            .filter_map(|c| match &c.kind {
                Kind::Button(label) => Some(label.clone()),
                _ => None,
            })
            .collect()
    }

    /// Set a field to a value no control offers, or add it: a forged submission.
    pub fn tamper(&mut self, name: &str, value: &str) {
        self.remove(name);
        self.controls.push(Control {
            kind: Kind::Field("hidden".into()),
            name: name.to_string(),
            value: value.to_string(),
            checked: false,
        });
    }

    /// Add one more value under a name (e.g. a second category): a forged submission.
    pub fn append(&mut self, name: &str, value: &str) {
        self.controls.push(Control {
            kind: Kind::Field("hidden".into()),
            name: name.to_string(),
            value: value.to_string(),
            checked: false,
        });
    }

    /// Drop every control of a name: a forged submission.
    pub fn remove(&mut self, name: &str) {
        self.controls
            .retain(|c| c.name != name || matches!(c.kind, Kind::Button(_)));
    }

    /// The name/value pairs a browser sends when the button labelled `button` is pressed
    /// (or, with an empty label, the form's only button or none).
    pub fn pairs(&self, button: &str) -> Vec<(String, String)> {
        let buttons = self.buttons();
        if button.is_empty() {
            assert!(buttons.len() <= 1, "say which button to press: {buttons:?}");
        } else {
            assert!(
                buttons.iter().any(|b| b == button),
                "no button {button:?}; the form has {buttons:?}"
            );
        }
        let mut pairs = Vec::new();
        for c in self.controls.iter().filter(|c| !c.name.is_empty()) {
            let send = match &c.kind {
                Kind::Field(_) | Kind::Select(_) => true,
                Kind::Radio | Kind::Checkbox => c.checked,
                Kind::Button(label) => button.is_empty() || label == button,
            };
            if send {
                pairs.push((c.name.clone(), c.value.clone()));
            }
        }
        pairs
    }
}
