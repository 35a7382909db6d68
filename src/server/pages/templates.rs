//! The page templates and the data each one shows (askama escapes every value).

use askama::Template;

use super::encounters::EncounterChoice;
use super::words::{Category, Reach};

/// /login.
#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    /// Page title.
    pub title: &'a str,
    /// Signed-in user, if any.
    pub user: Option<&'a str>,
    /// The session's CSRF token.
    pub csrf: &'a str,
    /// Where to go after signing in.
    pub next: &'a str,
    /// The user name to prefill after a failed attempt.
    pub username: &'a str,
    /// Why the last attempt failed.
    pub error: Option<&'a str>,
    /// Something the participant should know, e.g. that the link's `next` was not used.
    pub notice: Option<&'a str>,
}

/// /logout.
#[derive(Template)]
#[template(path = "logout.html")]
pub struct LogoutPage<'a> {
    /// Page title.
    pub title: &'a str,
    /// Signed-in user, if any.
    pub user: Option<&'a str>,
    /// The session's CSRF token.
    pub csrf: &'a str,
}

/// A patient on the picker.
pub struct PatientChoice {
    /// FHIR id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// "You", "Someone you represent" or "Your patient".
    pub relation: &'static str,
}

/// The patient picker.
#[derive(Template)]
#[template(path = "picker.html")]
pub struct PickerPage<'a> {
    /// Page title.
    pub title: &'a str,
    /// Signed-in user.
    pub user: Option<&'a str>,
    /// The session's CSRF token.
    pub csrf: &'a str,
    /// The pending request's id.
    pub request: &'a str,
    /// The asking app's name.
    pub app_name: &'a str,
    /// Patients to choose from.
    pub patients: Vec<PatientChoice>,
    /// What the app may do, for every listed patient and for the chosen one.
    pub reach: Reach,
    /// Why the last choice was refused.
    pub error: Option<&'a str>,
}

/// The encounter picker of a standalone launch that asked for `launch/encounter`.
#[derive(Template)]
#[template(path = "encounter.html")]
pub struct EncounterPage<'a> {
    /// Page title.
    pub title: &'a str,
    /// Signed-in user.
    pub user: Option<&'a str>,
    /// The session's CSRF token.
    pub csrf: &'a str,
    /// The pending request's id.
    pub request: &'a str,
    /// The asking app's name.
    pub app_name: &'a str,
    /// The chosen patient's name.
    pub patient_name: &'a str,
    /// Their Encounters, most recent first.
    pub encounters: Vec<EncounterChoice>,
    /// Why the last choice was refused.
    pub error: Option<&'a str>,
}

/// A patient on the EHR page, with their Encounters.
pub struct EhrPatient {
    /// FHIR id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// "You", "Someone you represent" or "Your patient".
    pub relation: &'static str,
    /// Whether their chart is the one open.
    pub chosen: bool,
    /// Their Encounters, most recent first.
    pub encounters: Vec<EncounterChoice>,
}

/// An app the EHR page suggests: one the user approved that registered a launch URL.
pub struct EhrApp {
    /// Its client id.
    pub client_id: String,
    /// Its name.
    pub name: String,
    /// Its registered launch URL.
    pub launch_url: String,
}

/// The simulated failures of one place in a flow, as a group of the EHR page's select.
pub struct EhrFaultGroup {
    /// "At authorize (the sign-in link)" and so on.
    pub label: &'static str,
    /// Its faults.
    pub faults: Vec<EhrFault>,
}

/// One simulated failure the EHR page offers.
pub struct EhrFault {
    /// Its name, the submitted value.
    pub name: &'static str,
    /// Whether it is the one chosen.
    pub chosen: bool,
}

/// /ehr, the simulated EHR's launch form.
#[derive(Template)]
#[template(path = "ehr.html")]
pub struct EhrPage<'a> {
    /// Page title.
    pub title: &'a str,
    /// Signed-in user.
    pub user: Option<&'a str>,
    /// The session's CSRF token.
    pub csrf: &'a str,
    /// The user's patients.
    pub patients: Vec<EhrPatient>,
    /// Apps to suggest.
    pub apps: Vec<EhrApp>,
    /// The client id typed in.
    pub client_id: &'a str,
    /// The launch URL typed in.
    pub launch_url: &'a str,
    /// The intent typed in.
    pub intent: &'a str,
    /// Whether "the EHR shows the patient banner" is ticked.
    pub ehr_banner: bool,
    /// The longest intent taken.
    pub max_intent: usize,
    /// The simulated failures a launch may carry, by place.
    pub faults: Vec<EhrFaultGroup>,
    /// Whether no failure is chosen.
    pub no_fault: bool,
    /// Why the last launch was refused.
    pub error: Option<&'a str>,
}

/// One "share until" option.
pub struct Duration {
    /// Years, the submitted value.
    pub years: u8,
    /// "1 year (until 23 Nov 2027)".
    pub label: String,
}

/// The consent page.
#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    /// Page title.
    pub title: &'a str,
    /// Signed-in user.
    pub user: Option<&'a str>,
    /// The session's CSRF token.
    pub csrf: &'a str,
    /// The pending request's id.
    pub request: &'a str,
    /// The asking app's name.
    pub app_name: &'a str,
    /// First letter of the app's name, for its badge.
    pub app_initial: String,
    /// The app's client id.
    pub client_id: &'a str,
    /// The patient the app opens with.
    pub patient_name: &'a str,
    /// Their FHIR id.
    pub patient_id: &'a str,
    /// The launch context in words: the EHR's patient, encounter and intent, or a
    /// standalone launch's chosen encounter.
    pub launch_context: Option<String>,
    /// The other patients whose records `user/` scopes reach too.
    pub also_reached: Vec<String>,
    /// The scopes in words.
    pub scope_words: Vec<String>,
    /// Data categories to tick.
    pub categories: Vec<Category>,
    /// Share-until choices.
    pub durations: Vec<Duration>,
    /// Host of the redirect URI, so the participant knows where the answer goes.
    pub redirect_host: String,
    /// Why the last submission was refused.
    pub error: Option<&'a str>,
}

/// One row of /apps.
pub struct ApprovalRow {
    /// Approval id, the revoke form's value.
    pub id: String,
    /// The app's name.
    pub app_name: String,
    /// Whose records.
    pub patient_name: String,
    /// Granted scopes.
    pub scope: String,
    /// What the app knows of who the participant is, when the grant shares it.
    pub identity: Option<String>,
    /// Expiry date (the latest, when the grant was approved more than once).
    pub until: String,
    /// How many approvals the row stands for (a grant approved or minted again).
    pub approvals: usize,
}

/// /apps.
#[derive(Template)]
#[template(path = "apps.html")]
pub struct AppsPage<'a> {
    /// Page title.
    pub title: &'a str,
    /// Signed-in user.
    pub user: Option<&'a str>,
    /// The session's CSRF token.
    pub csrf: &'a str,
    /// What the last revoke ended, shown once.
    pub notice: Option<&'a str>,
    /// The user's approvals.
    pub approvals: Vec<ApprovalRow>,
}

/// An error page.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    /// Headline.
    pub title: &'a str,
    /// Signed-in user, if any.
    pub user: Option<&'a str>,
    /// What went wrong.
    pub message: &'a str,
    /// What to do next.
    pub hint: &'a str,
}
