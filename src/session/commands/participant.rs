//! `authorize --as`: do what a participant does in a browser, over HTTP: follow the
//! redirects, fill in the sign-in form, pick the patient (and, for a standalone
//! `launch/encounter`, the encounter), press Approve, and read the code
//! from the final redirect. Only smartnb's own pages (the embedded server, or a `smartnb
//! serve` whose configuration says so) are driven this way.

use scraper::{Html, Selector};

use super::super::context::Ctx;
use super::super::output::{CommandError, Output};
use super::authorize::Answer;

/// Who approves, and where.
pub(super) struct Participant<'a> {
    pub user: &'a str,
    pub password: &'a str,
    pub patient: Option<&'a str>,
    /// The encounter to pick when the server asks (an id, or `none`).
    pub encounter: Option<&'a str>,
    pub base: &'a str,
}

/// A form on a page: where it posts, and the fields a browser would send by default.
#[derive(Debug, Default)]
struct Form {
    action: String,
    fields: Vec<(String, String)>,
    radios: Vec<(String, String)>,
    /// The radio buttons checked by default.
    checked: Vec<(String, String)>,
}

fn forms(html: &str) -> Vec<Form> {
    let doc = Html::parse_document(html);
    let form_sel = Selector::parse("form").expect("static selector");
    let input_sel = Selector::parse("input, select").expect("static selector");
    let option_sel = Selector::parse("option").expect("static selector");
    doc.select(&form_sel)
        .map(|form| {
            let mut out = Form {
                action: form.value().attr("action").unwrap_or_default().to_string(),
                ..Default::default()
            };
            for input in form.select(&input_sel) {
                let el = input.value();
                let Some(name) = el.attr("name") else {
                    continue;
                };
                if el.name() == "select" {
                    let chosen = input
                        .select(&option_sel)
                        .find(|o| o.value().attr("selected").is_some())
                        .or_else(|| input.select(&option_sel).next())
                        .and_then(|o| o.value().attr("value"));
                    if let Some(value) = chosen {
                        out.fields.push((name.into(), value.into()));
                    }
                    continue;
                }
                let value = el.attr("value").unwrap_or_default().to_string();
                match el.attr("type").unwrap_or("text") {
                    "radio" => {
                        if el.attr("checked").is_some() {
                            out.checked.push((name.into(), value.clone()));
                        }
                        out.radios.push((name.into(), value))
                    }
                    "checkbox" if el.attr("checked").is_some() => {
                        out.fields.push((name.into(), value))
                    }
                    "hidden" => out.fields.push((name.into(), value)),
                    _ => {}
                }
            }
            out
        })
        .collect()
}

fn step_error(message: impl Into<String>) -> CommandError {
    CommandError::new("AuthorizeError", message)
}

/// Drive the pages from the authorize link to the redirect; the code.
pub(super) fn approve(
    ctx: &mut Ctx,
    who: &Participant,
    link: &str,
    state: &str,
) -> Result<String, CommandError> {
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(crate::client::TIMEOUT)
        .build()
        .map_err(|e| step_error(e.to_string()))?;
    let mut next = Request::Get(link.to_string());
    for _ in 0..12 {
        let Page {
            status,
            location,
            body,
            simulated,
        } = ctx
            .wait(send(&browser, &next))?
            .map_err(|e| step_error(format!("the portal did not answer: {e}")))?;
        ctx.simulated(simulated.as_deref());
        if let Some(location) = location {
            let absolute = if location.starts_with('/') {
                format!("{}{location}", who.base)
            } else {
                location
            };
            if !absolute.starts_with(who.base) {
                return finish(ctx, &absolute, state);
            }
            next = Request::Get(absolute);
            continue;
        }
        if status >= 400 {
            return Err(step_error(format!(
                "the portal answered HTTP {status}: {}",
                page_message(&body)
            )));
        }
        let page_forms = forms(&body);
        let url = |action: &str| format!("{}{action}", who.base);
        if let Some(form) = page_forms.iter().find(|f| f.action == "/login") {
            if body.contains("role=\"alert\"") {
                return Err(step_error(format!(
                    "signing in as {} failed: {}",
                    who.user,
                    page_message(&body)
                ))
                .hint("the demo users' password is demo-password"));
            }
            // An EHR launch's sign-in page may fill the user name in already.
            let mut fields = form.fields.clone();
            fields.retain(|(name, _)| name != "username" && name != "password");
            fields.push(("username".into(), who.user.into()));
            fields.push(("password".into(), who.password.into()));
            ctx.emit(Output::Text(format!("Signed in as {}", who.user)));
            next = Request::Post(url(&form.action), fields);
        } else if let Some(form) = page_forms
            .iter()
            .find(|f| f.action == "/oauth/consent/patient")
        {
            let choices: Vec<&str> = form
                .radios
                .iter()
                .filter(|(n, _)| n == "patient")
                .map(|(_, v)| v.as_str())
                .collect();
            let chosen = match who.patient {
                Some(p) if choices.contains(&p) => p,
                Some(p) => {
                    return Err(step_error(format!("{} cannot share patient {p}", who.user))
                        .hint(format!("choose one of: {}", choices.join(", "))))
                }
                None => choices
                    .first()
                    .copied()
                    .ok_or_else(|| step_error("the patient picker lists no patient"))?,
            };
            let mut fields = form.fields.clone();
            fields.push(("patient".into(), chosen.into()));
            ctx.emit(Output::Text(format!("Picked patient {chosen}")));
            next = Request::Post(url(&form.action), fields);
        } else if let Some(form) = page_forms
            .iter()
            .find(|f| f.action == "/oauth/consent/encounter")
        {
            // The one asked for with --encounter, else the one offered first (the most recent).
            let chosen = pick_encounter(form, who.encounter)?;
            let mut fields: Vec<(String, String)> = form
                .fields
                .iter()
                .filter(|(n, _)| n != "encounter")
                .cloned()
                .collect();
            fields.push(("encounter".into(), chosen.clone()));
            fields.push(("decision".into(), "choose".into()));
            ctx.emit(Output::Text(match chosen.as_str() {
                "none" => "Picked no encounter".to_string(),
                id => format!("Picked encounter {id}"),
            }));
            next = Request::Post(url(&form.action), fields);
        } else if let Some(form) = page_forms.iter().find(|f| f.action == "/oauth/consent") {
            if body.contains("role=\"alert\"") {
                return Err(step_error(format!(
                    "the consent page refused: {}",
                    page_message(&body)
                )));
            }
            if let Some(wanted) = who
                .patient
                .filter(|p| !body.contains(&format!("<code>{p}</code>")))
            {
                // No picker was shown (the user has one patient), and it is not this one.
                return Err(
                    step_error(format!("{} cannot share patient {wanted}", who.user))
                        .hint("leave out --patient to share the user's own patient"),
                );
            }
            let mut fields = form.fields.clone();
            fields.push(("decision".into(), "approve".into()));
            ctx.emit(Output::Text("Approved on the consent page".into()));
            next = Request::Post(url(&form.action), fields);
        } else {
            return Err(step_error(format!(
                "the portal showed a page this command does not know how to answer: {}",
                page_message(&body)
            )));
        }
    }
    Err(step_error(
        "the portal kept redirecting without reaching the app's redirect URI",
    ))
}

/// The encounter to choose on the encounter picker: the one asked for, else the one the
/// page offers first (checked).
fn pick_encounter(form: &Form, wanted: Option<&str>) -> Result<String, CommandError> {
    let choices: Vec<&str> = form
        .radios
        .iter()
        .filter(|(n, _)| n == "encounter")
        .map(|(_, v)| v.as_str())
        .collect();
    match wanted {
        Some(e) if choices.contains(&e) => Ok(e.to_string()),
        Some(e) => Err(
            step_error(format!("the encounter picker does not offer {e}"))
                .hint(format!("choose one of: {}", choices.join(", "))),
        ),
        None => form
            .checked
            .iter()
            .find(|(n, _)| n == "encounter")
            .map(|(_, v)| v.as_str())
            .or(choices.first().copied())
            .map(str::to_string)
            .ok_or_else(|| step_error("the encounter picker lists no encounter")),
    }
}

/// One answer of the portal, as a browser sees it.
struct Page {
    status: u16,
    location: Option<String>,
    body: String,
    /// Its `Smartnb-Simulated` header.
    simulated: Option<String>,
}

enum Request {
    Get(String),
    Post(String, Vec<(String, String)>),
}

async fn send(browser: &reqwest::Client, request: &Request) -> Result<Page, reqwest::Error> {
    let response = match request {
        Request::Get(url) => browser.get(url).send().await?,
        Request::Post(url, fields) => {
            let body = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(fields)
                .finish();
            browser
                .post(url)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(body)
                .send()
                .await?
        }
    };
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let simulated = crate::client::simulated_header(response.headers());
    Ok(Page {
        status,
        location,
        body: response.text().await?,
        simulated,
    })
}

/// The text of a page's alert, or its heading.
fn page_message(html: &str) -> String {
    let doc = Html::parse_document(html);
    for selector in ["[role=alert]", "h1"] {
        let sel = Selector::parse(selector).expect("static selector");
        if let Some(el) = doc.select(&sel).next() {
            return el
                .text()
                .collect::<String>()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
        }
    }
    "no message".to_string()
}

/// Read the code (or error) from the redirect to the app, checking state.
fn finish(ctx: &mut Ctx, redirect: &str, state: &str) -> Result<String, CommandError> {
    ctx.emit(Output::Text(format!("The server redirected to {redirect}")));
    match url::Url::parse(redirect) {
        Ok(url) => Answer::read(&url, state).into_code(state),
        Err(_) => Err(step_error(format!(
            "the server redirected to {redirect:?}, which is not a URL"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_collect_what_a_browser_would_send() {
        let html = r#"<form method="post" action="/oauth/consent">
            <input type="hidden" name="csrf" value="t1"><input type="hidden" name="request" value="r1">
            <input type="checkbox" name="category" value="Patient" checked>
            <input type="checkbox" name="category" value="Observation">
            <select name="years"><option value="1" selected>1</option><option value="2">2</option></select>
            <input type="radio" name="patient" value="p1"><button name="decision" value="approve">A</button></form>"#;
        let found = forms(html);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].action, "/oauth/consent");
        assert_eq!(
            found[0].fields,
            vec![
                ("csrf".into(), "t1".into()),
                ("request".into(), "r1".into()),
                ("category".into(), "Patient".into()),
                ("years".into(), "1".into())
            ]
        );
        assert_eq!(found[0].radios, vec![("patient".into(), "p1".into())]);
        assert!(found[0].checked.is_empty());
    }

    #[test]
    fn the_encounter_picked_is_the_one_asked_for_or_the_one_offered_first() {
        let html = r#"<form method="post" action="/oauth/consent/encounter">
            <input type="hidden" name="csrf" value="t1">
            <input type="radio" name="encounter" value="enc-2" checked>
            <input type="radio" name="encounter" value="enc-1">
            <input type="radio" name="encounter" value="none"></form>"#;
        let form = &forms(html)[0];
        assert_eq!(pick_encounter(form, None).unwrap(), "enc-2");
        assert_eq!(pick_encounter(form, Some("enc-1")).unwrap(), "enc-1");
        assert_eq!(pick_encounter(form, Some("none")).unwrap(), "none");
        let error = pick_encounter(form, Some("enc-9")).unwrap_err();
        assert!(error.hint.unwrap().contains("enc-2, enc-1, none"));
        let empty = &forms(r#"<form action="/oauth/consent/encounter"></form>"#)[0];
        assert!(pick_encounter(empty, None).is_err());
    }
}
