//! /oauth/consent: the patient picker and the consent page of a pending authorize request.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::encounters;
use super::session::BrowserSession;
use super::templates::{ConsentPage, Duration, EncounterPage, PatientChoice, PickerPage};
use super::words;
use super::{
    csrf_failure, error_page, field, form_pairs, html, see_other, sign_in_again, sign_in_as,
    sign_in_first, Halt,
};
use crate::server::clock;
use crate::server::launch::mint::encounters_of;
use crate::server::oauth::authorize::redirect_to_client;
use crate::server::oauth::pending::PendingAuthorization;
use crate::server::oauth::{grants, sha256};
use crate::server::scopes::Scopes;
use crate::server::state::AppState;
use crate::server::store::{AuthCode, LaunchContext};
use crate::server::users::User;

const YEAR: i64 = 365 * 24 * 3600;

fn expired_request() -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        "This request has ended",
        "The app's request was already answered, or it waited too long.",
        "Go back to the app and start again.",
    )
}

fn someone_elses() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "This request belongs to another account",
        "It was started while someone else was signed in.",
        "Go back to the app and start again.",
    )
}

/// A pending request seen by its signed-in participant.
struct Consent {
    pending: PendingAuthorization,
    session: BrowserSession,
    user: User,
}

/// The pending request and signed-in user, or the response that stands instead.
async fn context(
    state: &AppState,
    session: Option<BrowserSession>,
    request_id: &str,
) -> Result<Consent, Halt> {
    let mut pending = state
        .pending
        .get(request_id)
        .await
        .ok_or_else(expired_request)?;
    crate::server::request_log::note_client(&pending.client_id);
    let next = format!("/oauth/consent?request={request_id}");
    // An EHR launch belongs to the user who launched it: whoever else is signed in here is
    // asked to sign in as that user, with the name filled in.
    let launched_by = pending
        .context
        .as_ref()
        .filter(|c| c.ehr)
        .and(pending.username.clone());
    let Some(session) = session.filter(|s| s.username.is_some()) else {
        return Err(match &launched_by {
            Some(user) => see_other(&sign_in_as(&next, user), None),
            None => see_other(&sign_in_first(&next), None),
        }
        .into());
    };
    if let Some(user) = &launched_by {
        if session.username.as_ref() != Some(user) {
            return Err(see_other(&sign_in_as(&next, user), None).into());
        }
    }
    if !pending.sign_in.accepts(session.created, clock::now()) {
        return Err(see_other(&sign_in_again(&next), None).into());
    }
    let username = session.username.clone().unwrap_or_default();
    let user = state
        .users
        .get(&username)
        .cloned()
        .ok_or_else(someone_elses)?;
    match &pending.username {
        Some(bound) if *bound != username => return Err(someone_elses().into()),
        Some(_) => {}
        None => {
            pending.username = Some(username);
            if let [only] = user.patients.as_slice() {
                pending.patient_id = Some(only.id.clone());
            }
            state.pending.update(pending.clone()).await;
        }
    }
    Ok(Consent {
        pending,
        session,
        user,
    })
}

/// GET /oauth/consent?request=…: sign in, pick a patient, or consent, whichever is next.
pub async fn show(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = form_pairs(query.unwrap_or_default().as_bytes());
    let id = field(&pairs, "request").unwrap_or_default();
    match context(&state, state.sessions.current(&headers).await, id).await {
        Ok(c) => {
            page(
                &state,
                &c.pending,
                &c.session,
                &c.user,
                None,
                StatusCode::OK,
            )
            .await
        }
        Err(halt) => halt.into_response(),
    }
}

async fn page(
    state: &AppState,
    pending: &PendingAuthorization,
    session: &BrowserSession,
    user: &User,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let app_name = match state.store.client(&pending.client_id).await {
        Ok(Some(c)) => c.client_name,
        _ => pending.client_id.clone(),
    };
    let scopes = Scopes::parse(&pending.scope).unwrap_or_default();
    // user/ scopes reach every patient of the user's (fhir::access), whoever is chosen.
    let reach = words::reach(&scopes);
    let Some(patient_id) = &pending.patient_id else {
        let patients = user
            .patients
            .iter()
            .map(|p| PatientChoice {
                name: name_of(state, &p.id),
                id: p.id.clone(),
                relation: words::relation(&p.relation),
            })
            .collect();
        let picker = PickerPage {
            title: "Choose a patient",
            user: Some(&user.username),
            csrf: &session.csrf,
            request: &pending.id,
            app_name: &app_name,
            patients,
            reach,
            error,
        };
        return html(status, &picker);
    };
    if needs_encounter(pending, &scopes) {
        let patient_name = name_of(state, patient_id);
        let picker = EncounterPage {
            title: "Choose an encounter",
            user: Some(&user.username),
            csrf: &session.csrf,
            request: &pending.id,
            app_name: &app_name,
            patient_name: &patient_name,
            encounters: encounters::choices(state, patient_id, None),
            error,
        };
        return html(status, &picker);
    }
    let also_reached = if reach.every_patient.is_empty() {
        Vec::new()
    } else {
        user.patients
            .iter()
            .filter(|p| p.id != *patient_id)
            .map(|p| name_of(state, &p.id))
            .collect()
    };
    let now = clock::now();
    let durations = (1..=3u8)
        .map(|years| {
            let until = clock::http_date(now + i64::from(years) * YEAR);
            let date = until.get(5..16).unwrap_or(&until).to_string();
            let unit = if years == 1 { "year" } else { "years" };
            Duration {
                years,
                label: format!("{years} {unit} (until {date})"),
            }
        })
        .collect();
    let patient_name = name_of(state, patient_id);
    let fhir_user = user.fhir_user(patient_id);
    let identity = words::Identity {
        fhir_user: fhir_user.as_deref(),
        patient_name: &patient_name,
    };
    let consent = ConsentPage {
        title: "Share your records?",
        user: Some(&user.username),
        csrf: &session.csrf,
        request: &pending.id,
        app_initial: app_name
            .chars()
            .next()
            .unwrap_or('?')
            .to_uppercase()
            .collect(),
        app_name: &app_name,
        client_id: &pending.client_id,
        patient_name: &patient_name,
        patient_id,
        launch_context: context_words(state, pending.context.as_ref(), &patient_name),
        also_reached,
        scope_words: words::describe(&scopes, &identity),
        categories: words::categories(&scopes),
        durations,
        redirect_host: url::Url::parse(&pending.redirect_uri)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_else(|| "the app".to_string()),
        error,
    };
    html(status, &consent)
}

/// Whether a standalone launch asked for `launch/encounter` and has not chosen one yet (an
/// EHR launch's context came with it, never chosen here).
fn needs_encounter(pending: &PendingAuthorization, scopes: &Scopes) -> bool {
    scopes.has("launch/encounter") && pending.context.is_none()
}

/// The launch context in one sentence for the consent page.
fn context_words(
    state: &AppState,
    context: Option<&LaunchContext>,
    patient_name: &str,
) -> Option<String> {
    let context = context?;
    let encounter = context
        .encounter
        .as_deref()
        .map(|id| encounters::label(state, id));
    if !context.ehr {
        return encounter.map(|e| format!("The app opens with the encounter {e}."));
    }
    let mut line = format!("Opened from the EHR for {patient_name}");
    if let Some(e) = encounter {
        line.push_str(&format!(", encounter {e}"));
    }
    if let Some(intent) = &context.intent {
        line.push_str(&format!(", intent \u{201c}{intent}\u{201d}"));
    }
    if !context.fhir_context.is_empty() {
        line.push_str(&format!(
            ", with {} in context",
            context.fhir_context.join(", ")
        ));
    }
    line.push_str(if context.need_patient_banner {
        ". The app shows its own patient banner."
    } else {
        ". The EHR shows the patient banner."
    });
    Some(line)
}

/// A patient's name from the bundled charts, or their id.
fn name_of(state: &AppState, patient_id: &str) -> String {
    state
        .data
        .patient_name(patient_id)
        .unwrap_or_else(|| patient_id.to_string())
}

/// Read a page form: its session must be live and its CSRF token right.
async fn checked_form(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(BrowserSession, Vec<(String, String)>), Halt> {
    let session = state
        .sessions
        .current(headers)
        .await
        .ok_or_else(csrf_failure)?;
    let pairs = form_pairs(&body.map_err(|_| csrf_failure())?);
    if !session.csrf_matches(field(&pairs, "csrf")) {
        return Err(csrf_failure().into());
    }
    Ok((session, pairs))
}

/// A posted page form, its CSRF token checked, with the pending request it answers.
async fn posted(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(Consent, Vec<(String, String)>), Halt> {
    let (session, pairs) = checked_form(state, headers, body).await?;
    let id = field(&pairs, "request").unwrap_or_default().to_string();
    Ok((context(state, Some(session), &id).await?, pairs))
}

/// POST /oauth/consent/patient: the picker's answer, checked against the user's patients.
pub async fn choose_patient(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (
        Consent {
            mut pending,
            session,
            user,
        },
        pairs,
    ) = match posted(&state, &headers, body).await {
        Ok(found) => found,
        Err(halt) => return halt.into_response(),
    };
    let id = pending.id.clone();
    let chosen = field(&pairs, "patient").unwrap_or_default();
    if pending.context.as_ref().is_some_and(|c| c.ehr) {
        // The EHR chose the patient; the picker is never offered for a launch.
        return see_other(&format!("/oauth/consent?request={id}"), None);
    }
    if !user.has_patient(chosen) {
        let error = "Choose one of the patients listed.";
        return page(
            &state,
            &pending,
            &session,
            &user,
            Some(error),
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    if pending.patient_id.as_deref() != Some(chosen) {
        // A standalone encounter choice was of the other patient's chart.
        pending.context = None;
    }
    pending.patient_id = Some(chosen.to_string());
    state.pending.update(pending).await;
    see_other(&format!("/oauth/consent?request={id}"), None)
}

/// End the request with `access_denied` for the app.
async fn deny(state: &AppState, pending: &PendingAuthorization) -> Response {
    if state.pending.take(&pending.id).await.is_none() {
        return expired_request();
    }
    let params = [
        ("error", "access_denied"),
        ("error_description", "the participant denied the request"),
        ("state", pending.state.as_str()),
    ];
    redirect_to_client(&pending.redirect_uri, &params, StatusCode::SEE_OTHER)
}

/// POST /oauth/consent/encounter: a standalone launch's encounter (or "none"), checked to be
/// the chosen patient's. An EHR launch's context is never changed here.
pub async fn choose_encounter(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (
        Consent {
            mut pending,
            session,
            user,
        },
        pairs,
    ) = match posted(&state, &headers, body).await {
        Ok(found) => found,
        Err(halt) => return halt.into_response(),
    };
    if field(&pairs, "decision") == Some("deny") {
        return deny(&state, &pending).await;
    }
    let id = pending.id.clone();
    let back = see_other(&format!("/oauth/consent?request={id}"), None);
    let scopes = Scopes::parse(&pending.scope).unwrap_or_default();
    let Some(patient_id) = pending.patient_id.clone() else {
        return back;
    };
    if !needs_encounter(&pending, &scopes) {
        return back;
    }
    let encounter = match field(&pairs, "encounter").unwrap_or_default() {
        "none" => None,
        chosen
            if encounters_of(&state, &patient_id)
                .iter()
                .any(|e| e == chosen) =>
        {
            Some(chosen.to_string())
        }
        _ => {
            let error = "Choose one of the encounters listed, or No encounter.";
            return page(
                &state,
                &pending,
                &session,
                &user,
                Some(error),
                StatusCode::BAD_REQUEST,
            )
            .await;
        }
    };
    pending.context = Some(LaunchContext {
        ehr: false,
        encounter,
        need_patient_banner: true,
        ..LaunchContext::default()
    });
    state.pending.update(pending).await;
    back
}

/// POST /oauth/consent: Approve (with categories and a duration) or Deny.
pub async fn decide(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (
        Consent {
            pending,
            session,
            user,
        },
        pairs,
    ) = match posted(&state, &headers, body).await {
        Ok(found) => found,
        Err(halt) => return halt.into_response(),
    };
    let id = pending.id.as_str();
    if field(&pairs, "decision") == Some("deny") {
        // Deny works from the picker too: no patient needs choosing to say no.
        return deny(&state, &pending).await;
    }
    let Some(patient_id) = pending.patient_id.clone() else {
        return see_other(&format!("/oauth/consent?request={id}"), None);
    };
    if needs_encounter(&pending, &Scopes::parse(&pending.scope).unwrap_or_default()) {
        return see_other(&format!("/oauth/consent?request={id}"), None);
    }
    let refuse = |message: &'static str| {
        page(
            &state,
            &pending,
            &session,
            &user,
            Some(message),
            StatusCode::BAD_REQUEST,
        )
    };
    match field(&pairs, "decision") {
        Some("approve") => {
            let years = match field(&pairs, "years").map(str::parse::<i64>) {
                None => 1,
                Some(Ok(y)) if (1..=3).contains(&y) => y,
                Some(_) => return refuse("Share for 1, 2 or 3 years.").await,
            };
            let requested = Scopes::parse(&pending.scope).unwrap_or_default();
            let offered = words::categories(&requested);
            let ticked: Vec<&str> = pairs
                .iter()
                .filter(|(k, _)| k == "category")
                .map(|(_, v)| v.as_str())
                .collect();
            if ticked
                .iter()
                .any(|t| !offered.iter().any(|c| c.resource_type == *t))
            {
                return refuse("Choose only among the kinds of records listed.").await;
            }
            if !offered.is_empty() && ticked.is_empty() {
                return refuse("Tick at least one kind of record, or press Deny.").await;
            }
            let scope = if offered.is_empty() {
                requested.to_string()
            } else {
                // Every offered kind ticked keeps a wildcard as asked (patient/*.rs is not
                // offered Practitioner, which no patient/ scope reaches).
                let all: Vec<&str> = offered.iter().map(|c| c.resource_type).collect();
                requested.restrict_types(&ticked, &all).to_string()
            };
            if state.pending.take(id).await.is_none() {
                return expired_request();
            }
            approve(
                &state,
                &pending,
                &session,
                &user,
                &patient_id,
                &scope,
                years,
            )
            .await
        }
        _ => refuse("Press Approve or Deny.").await,
    }
}

/// Save the approval and a code for it. A grant with `online_access` and no
/// `offline_access` is bound to this browser session: its refresh token works only while
/// the participant stays signed in here.
async fn approve(
    state: &AppState,
    pending: &PendingAuthorization,
    session: &BrowserSession,
    user: &User,
    patient_id: &str,
    scope: &str,
    years: i64,
) -> Response {
    let expires = clock::now() + years * YEAR;
    let grant = grants::Grant {
        client_id: &pending.client_id,
        username: &user.username,
        patient_id,
        scope,
        expires,
    };
    let approval = match grants::consent(state, grant).await {
        Ok(a) => a,
        Err(e) => {
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again shortly",
                &e.description,
                "",
            )
        }
    };
    let code = uuid::Uuid::new_v4().simple().to_string();
    let bound = grants::bound_to_sign_in(&Scopes::parse(scope).unwrap_or_default());
    let record = AuthCode {
        code_sha256: sha256(&code),
        approval_id: approval.id,
        redirect_uri: pending.redirect_uri.clone(),
        redirect_uri_given: pending.redirect_uri_given,
        scope: scope.to_string(),
        code_challenge: pending.code_challenge.clone(),
        expires: clock::now() + state.config.code_lifetime as i64,
        session_sha256: bound.then(|| sha256(&session.id)),
        nonce: pending.nonce.clone(),
        auth_time: Some(session.created),
        context: pending.context.clone(),
    };
    if let Err(e) = state.store.insert_code(record).await {
        return error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again shortly",
            &e.to_string(),
            "",
        );
    }
    let params = [("code", code.as_str()), ("state", pending.state.as_str())];
    redirect_to_client(&pending.redirect_uri, &params, StatusCode::SEE_OTHER)
}
