//! smartnb as the app under an EHR: `authorize --listen` waits on the app's launch URL and
//! redirect URI while the test plays the browser the EHR sends there, then signs in and
//! approves on the server's pages and comes back with the code.

use scraper::{Html, Selector};
use serde_json::Value;

use super::session_listen::{browse_on, free_port, Listening, STATE};
use crate::session_support::*;
use smartnb::session::{Outcome, Session};

/// The patient the EHR launches for.
const PATIENT: &str = "smart-1081332";

/// A session whose client redirects to, and launches at, `http://localhost:PORT/…`.
fn launchable_app() -> (Session, u16) {
    let port = free_port();
    let mut s = session();
    let out = ok(
        &mut s,
        &format!(
            "register --scope \"launch openid fhirUser user/*.rs offline_access\" \
             --redirect-uri http://localhost:{port}/cb --launch-uri http://localhost:{port}/launch"
        ),
    );
    assert_eq!(statuses(&out), [201]);
    (s, port)
}

fn listening(s: Session, port: u16) -> Listening {
    Listening::start_cell(
        s,
        port,
        format!("authorize --listen --timeout 30 --state {STATE}"),
    )
}

/// A header's value in an answer's head.
fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name)
            .then(|| value.trim().to_string())
    })
}

/// The path and query of a URL, as a browser asks for it.
fn path_of(url: &str) -> String {
    let url = url::Url::parse(url).unwrap();
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}

/// The query parameters of a URL.
fn params(url: &str) -> Vec<(String, String)> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

fn param(url: &str, name: &str) -> Option<String> {
    params(url)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

#[test]
fn a_launch_from_the_target_goes_on_to_authorize_and_the_code_is_caught() {
    let (s, port) = launchable_app();
    let fhir = format!("{}/api/fhir", s.embedded_url().unwrap());
    let listening = listening(s, port);
    let launch_path = format!(
        "/launch?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("iss", &fhir)
            .append_pair("launch", "0123456789abcdef0123456789abcdef")
            .finish()
    );
    let (status, head, _) = listening.browse_with_headers(&launch_path);
    assert_eq!(status, 302, "{head}");
    let location = header(&head, "Location").expect("a Location");
    assert!(location.starts_with(&fhir.replace("/api/fhir", "/oauth/authorize")));
    assert_eq!(
        param(&location, "launch").as_deref(),
        Some("0123456789abcdef0123456789abcdef")
    );
    assert_eq!(param(&location, "state").as_deref(), Some(STATE));
    assert_eq!(param(&location, "aud").as_deref(), Some(fhir.as_str()));
    assert!(param(&location, "scope")
        .unwrap()
        .split_whitespace()
        .any(|w| w == "launch"));

    let (status, _) = listening.browse(&format!("/cb?code=c-1&state={STATE}"));
    assert_eq!(status, 200);
    let (s, outcome, out) = listening.finish();
    assert_eq!(outcome, Outcome::Ok, "{out:#?}");
    assert_eq!(var(&s, "code"), "c-1");
    assert_eq!(var(&s, "launch"), "0123456789abcdef0123456789abcdef");
    assert_eq!(var(&s, "iss"), fhir);
    let said = texts(&out);
    assert!(said
        .iter()
        .any(|t| t.contains("launch the app from the EHR")));
    assert!(said
        .iter()
        .any(|t| t.contains("The EHR opened the launch URL")));
}

#[test]
fn a_launch_naming_another_server_is_refused_in_the_browser_and_the_cell() {
    let (s, port) = launchable_app();
    let listening = listening(s, port);
    let (status, page) =
        listening.browse("/launch?iss=https%3A%2F%2Fehr.example%2Ffhir&launch=abc");
    assert_eq!(status, 400);
    assert!(page.contains("https://ehr.example/fhir"), "{page}");
    let (s, outcome, out) = listening.finish();
    assert_eq!(outcome, Outcome::Failed);
    let error = errors(&out)[0];
    assert_eq!(error.kind, "WrongIssuer");
    assert!(
        error.message.contains("https://ehr.example/fhir"),
        "{error}"
    );
    assert!(!bound(&s, "code") && !bound(&s, "launch"));
}

#[test]
fn a_request_to_the_launch_url_without_iss_is_refused() {
    let (s, port) = launchable_app();
    let listening = listening(s, port);
    let (status, _) = listening.browse("/launch?launch=abc");
    assert_eq!(status, 400);
    let (_, outcome, out) = listening.finish();
    assert_eq!(outcome, Outcome::Failed);
    assert_eq!(errors(&out)[0].kind, "BadLaunch");
}

#[test]
fn a_launch_url_on_its_own_port_is_listened_on_too() {
    let (redirect_port, launch_port) = (free_port(), free_port());
    let mut s = session();
    ok(
        &mut s,
        &format!(
            "register --redirect-uri http://localhost:{redirect_port}/cb \
             --launch-uri http://127.0.0.1:{launch_port}/start"
        ),
    );
    let fhir = format!("{}/api/fhir", s.embedded_url().unwrap());
    // The launch port opens after the redirect port: once it answers, both do.
    let listening = Listening::start_cell(
        s,
        launch_port,
        format!("authorize --listen --timeout 30 --state {STATE}"),
    );
    let (status, head, _) = browse_on(launch_port, &format!("/start?iss={fhir}&launch=l-2"));
    assert_eq!(status, 302, "{head}");
    assert_eq!(
        param(&header(&head, "Location").unwrap(), "launch").as_deref(),
        Some("l-2")
    );
    let (status, _, _) = browse_on(redirect_port, &format!("/cb?code=c-2&state={STATE}"));
    assert_eq!(status, 200);
    let (s, outcome, out) = listening.finish();
    assert_eq!(outcome, Outcome::Ok, "{out:#?}");
    assert_eq!(var(&s, "code"), "c-2");
    assert_eq!(var(&s, "launch"), "l-2");
}

/// The participant's browser on the server's pages: cookies, forms, redirects by hand.
struct Browser {
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
    base: String,
    /// What to fill in on the EHR page (`/ehr`) before pressing Launch.
    ehr_choices: Vec<(String, String)>,
}

/// Where one request landed.
enum Landing {
    Redirect(String),
    Page(u16, String),
}

impl Browser {
    fn new(base: &str) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            base: base.to_string(),
            ehr_choices: Vec::new(),
        }
    }

    fn land(&self, request: reqwest::RequestBuilder) -> Landing {
        self.runtime.block_on(async {
            let response = request.send().await.expect("the server answers");
            let status = response.status().as_u16();
            match response.headers().get("location") {
                Some(location) => {
                    let location = location.to_str().unwrap();
                    Landing::Redirect(if location.starts_with('/') {
                        format!("{}{location}", self.base)
                    } else {
                        location.to_string()
                    })
                }
                None => Landing::Page(status, response.text().await.unwrap()),
            }
        })
    }

    /// The hidden fields (and checked boxes) of the page's form posting to `action`.
    fn form(page: &str, action: &str) -> Option<Vec<(String, String)>> {
        let doc = Html::parse_document(page);
        let form = doc
            .select(&Selector::parse("form").unwrap())
            .find(|f| f.value().attr("action") == Some(action))?;
        let mut fields = Vec::new();
        for input in form.select(&Selector::parse("input").unwrap()) {
            let el = input.value();
            let (Some(name), kind) = (el.attr("name"), el.attr("type").unwrap_or("text")) else {
                continue;
            };
            if kind == "hidden" || (kind == "checkbox" && el.attr("checked").is_some()) {
                fields.push((name.to_string(), el.attr("value").unwrap_or("").to_string()));
            }
        }
        Some(fields)
    }

    /// From a page on the server, sign in as `user` when asked, press Launch on the EHR
    /// page or Approve on the consent page; the redirect off the server.
    fn approve(&self, start: &str, user: &str) -> String {
        let mut next = self.http.get(start);
        for _ in 0..12 {
            match self.land(next) {
                Landing::Redirect(to) if to.starts_with(&self.base) => next = self.http.get(&to),
                Landing::Redirect(away) => return away,
                Landing::Page(status, page) => {
                    assert_eq!(status, 200, "{page}");
                    let url = |action: &str| format!("{}{action}", self.base);
                    if let Some(mut fields) = Browser::form(&page, "/login") {
                        fields.retain(|(k, _)| k != "username" && k != "password");
                        fields.push(("username".into(), user.into()));
                        fields.push(("password".into(), "demo-password".into()));
                        next = self.http.post(url("/login")).form(&fields);
                    } else if let Some(mut fields) = Browser::form(&page, "/ehr/launch") {
                        fields.extend(self.ehr_choices.iter().cloned());
                        next = self.http.post(url("/ehr/launch")).form(&fields);
                    } else if let Some(mut fields) = Browser::form(&page, "/oauth/consent") {
                        assert!(
                            Browser::form(&page, "/oauth/consent/patient").is_none(),
                            "no patient picker in an EHR launch"
                        );
                        fields.push(("decision".into(), "approve".into()));
                        next = self.http.post(url("/oauth/consent")).form(&fields);
                    } else {
                        panic!("a page the test does not know: {page}");
                    }
                }
            }
        }
        panic!("the pages never sent the browser back to the app");
    }
}

#[test]
fn a_browser_sent_by_the_ehr_ends_with_the_tokens_in_the_session() {
    let (mut s, port) = launchable_app();
    ok(
        &mut s,
        &format!("launch --patient {PATIENT} --encounter auto --intent reconcile-medications"),
    );
    let launch = var(&s, "launch");
    let launch_url = var(&s, "launch_url");
    assert!(launch_url.starts_with(&format!("http://localhost:{port}/launch?")));
    let base = s.embedded_url().unwrap().to_string();
    let listening = listening(s, port);

    // The EHR's page sent the browser to the launch URL; smartnb sends it on to authorize.
    let (status, head, _) = listening.browse_with_headers(&path_of(&launch_url));
    assert_eq!(status, 302, "{head}");
    let authorize = header(&head, "Location").unwrap();
    assert_eq!(param(&authorize, "launch"), Some(launch.clone()));

    // The participant signs in as the launch's user and approves; the server sends the
    // browser back to the app's redirect URI, where smartnb catches the code.
    let browser = Browser::new(&base);
    let back = browser.approve(&authorize, "dr-carter");
    assert!(
        back.starts_with(&format!("http://localhost:{port}/cb?")),
        "{back}"
    );
    let (status, page) = listening.browse(&path_of(&back));
    assert_eq!(status, 200, "{page}");

    let (mut s, outcome, out) = listening.finish();
    assert_eq!(outcome, Outcome::Ok, "{out:#?}");
    assert_eq!(var(&s, "launch"), launch);
    let out = ok(&mut s, "exchange");
    let answer: &Value = the_json(&out);
    assert_eq!(var(&s, "patient"), PATIENT);
    assert_eq!(var(&s, "intent"), "reconcile-medications");
    assert_eq!(
        answer["encounter"].as_str(),
        Some(var(&s, "encounter").as_str())
    );
    let out = ok(&mut s, "fetch Encounter/$encounter");
    assert_eq!(statuses(&out), [200]);
}

#[test]
fn launch_pressed_on_the_ehr_page_ends_with_the_tokens_in_the_session() {
    let (mut s, port) = launchable_app();
    ok(&mut s, &format!("fetch Encounter?patient={PATIENT} --open"));
    let encounter = s.vars().get("response").unwrap()["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let client_id = var(&s, "client_id");
    let base = s.embedded_url().unwrap().to_string();
    let listening = listening(s, port);

    // The clinician signs in to the EHR, opens Joseph Ross's chart at an encounter and
    // presses Launch: the browser goes to the app's launch URL.
    let mut browser = Browser::new(&base);
    browser.ehr_choices = vec![
        ("patient".into(), PATIENT.into()),
        (format!("encounter-{PATIENT}"), encounter.clone()),
        ("client_id".into(), client_id),
        ("intent".into(), "summary-timeline".into()),
        ("ehr_banner".into(), "1".into()),
    ];
    let launch_url = browser.approve(&format!("{base}/ehr"), "dr-carter");
    assert!(
        launch_url.starts_with(&format!("http://localhost:{port}/launch?")),
        "{launch_url}"
    );
    let (status, head, _) = listening.browse_with_headers(&path_of(&launch_url));
    assert_eq!(status, 302, "{head}");
    let authorize = header(&head, "Location").unwrap();
    // Still signed in as dr-carter: straight to the consent page, then back to the app.
    let back = browser.approve(&authorize, "dr-carter");
    let (status, _) = listening.browse(&path_of(&back));
    assert_eq!(status, 200);

    let (mut s, outcome, out) = listening.finish();
    assert_eq!(outcome, Outcome::Ok, "{out:#?}");
    assert_eq!(Some(var(&s, "launch")), param(&launch_url, "launch"));
    ok(&mut s, "exchange");
    assert_eq!(var(&s, "patient"), PATIENT);
    assert_eq!(var(&s, "encounter"), encounter);
    assert_eq!(var(&s, "intent"), "summary-timeline");
    assert_eq!(
        s.vars().get("response").unwrap()["need_patient_banner"],
        Value::Bool(false)
    );
}
