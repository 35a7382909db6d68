//! /ehr: the simulated EHR. A signed-in user picks a patient of theirs, optionally one of
//! that patient's Encounters, an app (a registered client id, a launch URL typed in, or
//! both), an intent and who shows the patient banner; Launch mints a launch and sends the
//! browser to the app's launch URL with `iss` and `launch` (SMART App Launch, EHR launch).
//!
//! Which launch URL opens: the one typed in when given, else the app's registered
//! `initiate_login_uri`. The launch is bound to the app when a client id was given, so only
//! that app can spend it; a launch URL alone makes a launch any app may spend (as SMART's
//! own launcher does). The page suggests the launchable apps the user approved before (at
//! most [`MAX_SUGGESTED`], so the page stays small however many approvals there are);
//! registered apps are not listed, since anyone may register one under any name.
//!
//! "Simulate a failure" (none by default) makes the launch carry one simulated fault for the
//! app that uses it, answered once: an authorize fault answers the app's authorize request
//! with the launch, a token fault its code exchange or refresh, a FHIR fault its first FHIR
//! request, `slow` delays its next request.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use url::Url;

use super::encounters;
use super::session::BrowserSession;
use super::templates::{EhrApp, EhrFault, EhrFaultGroup, EhrPage, EhrPatient};
use super::words;
use super::{csrf_failure, error_page, field, form_pairs, html, see_other, sign_in_first};
use crate::server::launch::mint::{mint, EncounterChoice, LaunchRequest, MAX_INTENT};
use crate::server::oauth::limits::MAX_URI;
use crate::server::simulate::{self, Fault, Site, FAULT_NAMES};
use crate::server::state::AppState;
use crate::server::store::Client;
use crate::server::users::User;

/// The most approved apps the page suggests.
pub const MAX_SUGGESTED: usize = 20;
/// The longest client id taken from the form (the server's are 36 characters).
const MAX_CLIENT_ID: usize = 128;
/// The most of an unknown fault name a refusal repeats.
const MAX_SHOWN_FAULT: usize = 64;

/// What the form holds: as first shown, or as submitted (shown again with an error).
#[derive(Debug, Clone, Default)]
struct Filled {
    patient: String,
    encounter: String,
    client_id: String,
    launch_url: String,
    intent: String,
    ehr_banner: bool,
    /// The simulated failure's name; empty for none.
    fault: String,
}

impl Filled {
    /// A first view: the query may preselect the patient and prefill the app.
    fn from_query(pairs: &[(String, String)]) -> Filled {
        let short = |name: &str, limit: usize| {
            field(pairs, name)
                .filter(|v| v.len() <= limit)
                .unwrap_or_default()
                .to_string()
        };
        Filled {
            patient: short("patient", MAX_CLIENT_ID),
            encounter: String::new(),
            client_id: short("client_id", MAX_CLIENT_ID),
            launch_url: short("launch_url", MAX_URI),
            intent: String::new(),
            ehr_banner: true,
            fault: String::new(),
        }
    }

    /// A submitted form; an unticked checkbox sends nothing.
    fn from_form(pairs: &[(String, String)]) -> Filled {
        let text = |name: &str| field(pairs, name).unwrap_or_default().trim().to_string();
        let patient = text("patient");
        Filled {
            encounter: text(&format!("encounter-{patient}")),
            patient,
            client_id: text("client_id"),
            launch_url: text("launch_url"),
            intent: text("intent"),
            ehr_banner: field(pairs, "ehr_banner").is_some(),
            fault: text("fault"),
        }
    }
}

/// The signed-in user of a request, or None.
async fn signed_in(state: &AppState, headers: &HeaderMap) -> Option<(BrowserSession, User)> {
    let session = state.sessions.current(headers).await?;
    let user = state.users.get(session.username.as_deref()?)?.clone();
    Some((session, user))
}

/// GET /ehr: the launch form (sign-in first, then back here).
pub async fn show(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = form_pairs(query.unwrap_or_default().as_bytes());
    let filled = Filled::from_query(&pairs);
    let Some((session, user)) = signed_in(&state, &headers).await else {
        return see_other(&sign_in_first(&return_path(&filled)), None);
    };
    form(&state, &session, &user, &filled, None, StatusCode::OK).await
}

/// `/ehr` with the prefilled fields of `filled`, to come back to after signing in.
fn return_path(filled: &Filled) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in [
        ("patient", &filled.patient),
        ("client_id", &filled.client_id),
        ("launch_url", &filled.launch_url),
    ] {
        if !value.is_empty() {
            query.append_pair(name, value);
        }
    }
    let query = query.finish();
    if query.is_empty() {
        "/ehr".to_string()
    } else {
        format!("/ehr?{query}")
    }
}

async fn form(
    state: &AppState,
    session: &BrowserSession,
    user: &User,
    filled: &Filled,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let chosen = if user.has_patient(&filled.patient) {
        filled.patient.as_str()
    } else {
        user.patients.first().map_or("", |p| p.id.as_str())
    };
    let patients = user
        .patients
        .iter()
        .map(|p| {
            let mine = p.id == chosen;
            let encounter = (mine && !filled.encounter.is_empty()).then_some(&*filled.encounter);
            EhrPatient {
                name: state
                    .data
                    .patient_name(&p.id)
                    .unwrap_or_else(|| p.id.clone()),
                relation: words::relation(&p.relation),
                chosen: mine,
                encounters: encounters::choices(state, &p.id, encounter),
                id: p.id.clone(),
            }
        })
        .collect();
    let page = EhrPage {
        title: "Launch an app",
        user: Some(&user.username),
        csrf: &session.csrf,
        patients,
        apps: suggested_apps(state, &user.username).await,
        client_id: &filled.client_id,
        launch_url: &filled.launch_url,
        intent: &filled.intent,
        ehr_banner: filled.ehr_banner,
        max_intent: MAX_INTENT,
        faults: fault_groups(&filled.fault),
        no_fault: Fault::parse(&filled.fault).is_none(),
        error,
    };
    html(status, &page)
}

/// The simulated failures on offer, grouped by where they answer, in the documented order.
fn fault_groups(chosen: &str) -> Vec<EhrFaultGroup> {
    [
        (
            Some(Site::Authorize),
            "At authorize: the app's sign-in request",
        ),
        (
            Some(Site::Token),
            "At the token endpoint: its code exchange or refresh",
        ),
        (Some(Site::Fhir), "At the FHIR API: its first FHIR request"),
        (None, "Anywhere: its next request, answered late"),
    ]
    .into_iter()
    .map(|(site, label)| EhrFaultGroup {
        label,
        faults: Fault::ALL
            .iter()
            .filter(|f| f.fixed_site() == site)
            .map(|f| EhrFault {
                name: f.name(),
                chosen: f.name() == chosen,
            })
            .collect(),
    })
    .collect()
}

/// The failure the form names, if any; a name the list does not offer is refused.
fn chosen_fault(name: &str) -> Result<Option<Fault>, Refused> {
    if name.is_empty() {
        return Ok(None);
    }
    Fault::parse(name).map(Some).ok_or_else(|| {
        let shown: String = name.chars().take(MAX_SHOWN_FAULT).collect();
        Refused::Form(format!(
            "There is no simulated failure {shown:?}. Choose one of the list ({}), or None.",
            FAULT_NAMES.join(", ")
        ))
    })
}

/// The launchable apps (with a registered launch URL) the user approved, newest first.
async fn suggested_apps(state: &AppState, username: &str) -> Vec<EhrApp> {
    let Ok(mut approvals) = state.store.approvals_for_user(username).await else {
        return Vec::new();
    };
    approvals.sort_by_key(|a| std::cmp::Reverse(a.created));
    let mut apps: Vec<EhrApp> = Vec::new();
    for approval in approvals {
        if apps.len() == MAX_SUGGESTED {
            break;
        }
        if apps.iter().any(|a| a.client_id == approval.client_id) {
            continue;
        }
        if let Ok(Some(client)) = state.store.client(&approval.client_id).await {
            if let Some(uri) = client.launch_uri() {
                apps.push(EhrApp {
                    launch_url: uri.to_string(),
                    client_id: client.client_id.clone(),
                    name: client.client_name.clone(),
                });
            }
        }
    }
    apps
}

/// POST /ehr/launch: check the form, mint the launch, open the app's launch URL.
pub async fn launch(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some((session, user)) = signed_in(&state, &headers).await else {
        return csrf_failure();
    };
    let pairs = form_pairs(&body.unwrap_or_default());
    if !session.csrf_matches(field(&pairs, "csrf")) {
        return csrf_failure();
    }
    let filled = Filled::from_form(&pairs);
    match opened(&state, &user, &filled).await {
        Ok(location) => away(&location),
        Err(Refused::Form(message)) => {
            form(
                &state,
                &session,
                &user,
                &filled,
                Some(&message),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
        Err(Refused::Store(message)) => error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again shortly",
            &message,
            "The server's store did not answer.",
        ),
    }
}

/// Why a launch was not made.
enum Refused {
    /// Something in the form: shown above it.
    Form(String),
    /// The store did not answer.
    Store(String),
}

/// The launch URL to open, with `iss` and a fresh launch's id, for this form.
async fn opened(state: &AppState, user: &User, filled: &Filled) -> Result<String, Refused> {
    let patient = &filled.patient;
    if !user.has_patient(patient) {
        return Err(Refused::Form("Choose one of the patients listed.".into()));
    }
    let fault = chosen_fault(&filled.fault)?;
    let client = match filled.client_id.as_str() {
        "" => None,
        id if id.len() > MAX_CLIENT_ID => {
            return Err(Refused::Form(
                "That client id is too long to be one of this server's.".into(),
            ))
        }
        id => match state.store.client(id).await {
            Ok(Some(client)) => Some(client),
            Ok(None) => {
                return Err(Refused::Form(format!(
                    "No app with client id {id} is registered here."
                )))
            }
            Err(e) => return Err(Refused::Store(e.to_string())),
        },
    };
    if let (Some(fault), Some(client)) = (fault, &client) {
        simulate::can_apply(fault, client).map_err(|why| {
            Refused::Form(format!(
                "That failure cannot happen for this app: {why}. Choose another, or None."
            ))
        })?;
    }
    let mut url = launch_url(filled, client.as_ref())?;
    let encounter = match filled.encounter.as_str() {
        "" => EncounterChoice::None,
        id => EncounterChoice::Id(id.to_string()),
    };
    let request = LaunchRequest {
        username: user.username.clone(),
        patient_id: patient.clone(),
        encounter,
        client_id: client.map(|c| c.client_id),
        intent: Some(filled.intent.clone()).filter(|i| !i.is_empty()),
        // The box says the EHR shows the banner: then the app need not.
        need_patient_banner: !filled.ehr_banner,
        fhir_context: Vec::new(),
        fault,
    };
    let (id, _) = mint(state, request).await.map_err(|e| match e.code {
        "temporarily_unavailable" => Refused::Store(e.description),
        "no_encounter" => Refused::Form(
            "Choose one of the listed encounters of that patient, or No encounter.".into(),
        ),
        "invalid_request" => Refused::Form(format!(
            "The intent must be at most {MAX_INTENT} bytes of text on one line."
        )),
        _ => Refused::Form(e.description),
    })?;
    url.query_pairs_mut()
        .append_pair("iss", &state.fhir_base())
        .append_pair("launch", &id);
    Ok(url.to_string())
}

/// The URL typed in when there is one, else the app's registered launch URL.
fn launch_url(filled: &Filled, client: Option<&Client>) -> Result<Url, Refused> {
    let (raw, whose) = match (filled.launch_url.as_str(), client) {
        ("", Some(client)) => match client.launch_uri() {
            Some(uri) => (uri, "The app's registered launch URL"),
            None => {
                return Err(Refused::Form(format!(
                    "{} registered no launch URL (initiate_login_uri): type the app's launch URL.",
                    client.client_name
                )))
            }
        },
        ("", None) => {
            return Err(Refused::Form(
                "Give the client id of a registered app, or the launch URL of the app to open."
                    .into(),
            ))
        }
        (typed, _) => (typed, "The launch URL"),
    };
    checked_launch_url(raw).map_err(|why| Refused::Form(format!("{whose} {why}.")))
}

/// A launch URL the browser may be sent to: absolute http(s) with a host, no credentials,
/// not already carrying `iss` or `launch`, at most [`MAX_URI`] bytes.
pub fn checked_launch_url(raw: &str) -> Result<Url, &'static str> {
    if raw.len() > MAX_URI {
        return Err("is too long (at most 1024 bytes)");
    }
    let url = Url::parse(raw)
        .map_err(|_| "must be an absolute http or https URL, such as https://app.example/launch")?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err("must be an absolute http or https URL, such as https://app.example/launch");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry a user name or password");
    }
    if url.query_pairs().any(|(k, _)| k == "iss" || k == "launch") {
        return Err("already has iss or launch in its query; the EHR adds them");
    }
    Ok(url)
}

/// 303 to the app's launch URL, telling it nothing of where the browser came from.
fn away(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if let Ok(value) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launch_urls_must_be_absolute_http_without_credentials_or_launch_parameters() {
        for ok in [
            "https://app.example/launch",
            "http://localhost:9001/launch",
            "https://app.example/launch?tenant=a#top",
        ] {
            assert!(checked_launch_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "/launch",
            "app.example/launch",
            "javascript:alert(1)",
            "ftp://app.example/launch",
            "data:text/html,x",
            "https://user:pw@app.example/launch",
            "https://app.example/launch?iss=x",
            "https://app.example/launch?launch=x",
            "file:///etc/passwd",
            "",
        ] {
            assert!(checked_launch_url(bad).is_err(), "{bad}");
        }
        let long = format!("https://app.example/{}", "a".repeat(MAX_URI));
        assert!(checked_launch_url(&long).is_err());
    }

    #[test]
    fn the_failure_select_offers_every_fault_once_in_order_and_refuses_others() {
        let offered: Vec<&str> = fault_groups("fhir_throttled")
            .iter()
            .flat_map(|g| g.faults.iter().map(|f| f.name))
            .collect();
        assert_eq!(offered, FAULT_NAMES);
        let chosen: Vec<&str> = fault_groups("fhir_throttled")
            .iter()
            .flat_map(|g| g.faults.iter().filter(|f| f.chosen).map(|f| f.name))
            .collect();
        assert_eq!(chosen, ["fhir_throttled"]);
        assert!(matches!(chosen_fault(""), Ok(None)));
        assert!(matches!(chosen_fault("slow"), Ok(Some(Fault::Slow))));
        for bad in ["Slow", "fhir_exploded", " slow", "slow\n"] {
            let Err(Refused::Form(message)) = chosen_fault(bad) else {
                panic!("{bad:?} was taken");
            };
            assert!(message.contains("fhir_throttled, slow"), "{message}");
        }
        let Err(Refused::Form(message)) = chosen_fault(&"x".repeat(5000)) else {
            panic!("a long name was taken");
        };
        assert!(message.len() < 1000, "{}", message.len());
    }

    #[test]
    fn the_way_back_after_sign_in_keeps_only_the_prefilled_fields() {
        let filled = Filled {
            patient: "smart-1081332".into(),
            client_id: "a b".into(),
            ..Filled::default()
        };
        assert_eq!(
            return_path(&filled),
            "/ehr?patient=smart-1081332&client_id=a+b"
        );
        assert_eq!(return_path(&Filled::default()), "/ehr");
    }
}
