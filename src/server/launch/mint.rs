//! Minting a launch: what the EHR page and the debug endpoint ask for, checked against the
//! fixtures and the bundled charts, saved in the store under its id's SHA-256.

use crate::server::clock;
use crate::server::oauth::sha256;
use crate::server::simulate::{self, Fault};
use crate::server::state::AppState;
use crate::server::store::{Launch, LaunchContext};

/// The most resources one launch may put in `fhirContext` besides the encounter.
pub const MAX_FHIR_CONTEXT: usize = 10;
/// The longest `intent`, and the longest reference in `fhirContext`.
pub const MAX_INTENT: usize = 256;

/// Which encounter a launch puts in context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncounterChoice {
    /// None.
    None,
    /// The patient's most recent one.
    Latest,
    /// This Encounter id.
    Id(String),
}

/// What an EHR asks to launch.
#[derive(Debug, Clone)]
pub struct LaunchRequest {
    /// Whose EHR session it is.
    pub username: String,
    /// The patient in context.
    pub patient_id: String,
    /// The encounter in context.
    pub encounter: EncounterChoice,
    /// Only this client may use it, when given.
    pub client_id: Option<String>,
    /// SMART's `intent`.
    pub intent: Option<String>,
    /// Whether the app should show its own patient banner.
    pub need_patient_banner: bool,
    /// More resources in context, as `Type/id`.
    pub fhir_context: Vec<String>,
    /// A simulated fault for the app that uses the launch (answered once).
    pub fault: Option<Fault>,
}

/// Why a launch could not be made; `code` is the debug endpoint's error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{description}")]
pub struct MintError {
    /// `no_user`, `no_patient`, `no_patient_for_user`, `no_encounter`, `no_client`,
    /// `no_context`, `invalid_request` or `temporarily_unavailable`.
    pub code: &'static str,
    /// What went wrong and how to fix it.
    pub description: String,
}

fn refuse(code: &'static str, description: impl Into<String>) -> MintError {
    MintError {
        code,
        description: description.into(),
    }
}

/// Check a launch request and save the launch; its id (only ever shown to the caller).
pub async fn mint(state: &AppState, request: LaunchRequest) -> Result<(String, Launch), MintError> {
    let context = check(state, &request).await?;
    let id = new_secret_hex();
    let launch = Launch {
        id_sha256: sha256(&id),
        username: request.username,
        patient_id: request.patient_id,
        client_id: request.client_id,
        context,
        expires: clock::now().saturating_add(lifetime(state)),
        fault: request.fault.map(|f| f.name().to_string()),
    };
    state
        .store
        .insert_launch(launch.clone())
        .await
        .map_err(|e| refuse("temporarily_unavailable", e.to_string()))?;
    Ok((id, launch))
}

/// Seconds a launch lasts (`--launch-lifetime`).
pub fn lifetime(state: &AppState) -> i64 {
    i64::try_from(state.config.launch_lifetime).unwrap_or(i64::MAX)
}

/// 32 lowercase hex characters (122 random bits, like every other credential here).
fn new_secret_hex() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

async fn check(state: &AppState, request: &LaunchRequest) -> Result<LaunchContext, MintError> {
    let shipped = state.users.names();
    let user = state.users.get(&request.username).ok_or_else(|| {
        refuse(
            "no_user",
            format!(
                "no user {:?}; the shipped users are {shipped}",
                request.username
            ),
        )
    })?;
    let patient = &request.patient_id;
    let known = state.users.all().iter().any(|u| u.has_patient(patient));
    if !known {
        return Err(refuse(
            "no_patient",
            format!("no patient {patient:?}; the bundled patients are smart-1288992, smart-1032702 and smart-1081332"),
        ));
    }
    if !user.has_patient(patient) {
        let theirs = user
            .patients
            .iter()
            .map(|p| p.id.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(refuse(
            "no_patient_for_user",
            format!(
                "{} may not open {patient}'s chart; their patients are {theirs}",
                user.username
            ),
        ));
    }
    if let Some(client_id) = &request.client_id {
        let found = state
            .store
            .client(client_id)
            .await
            .map_err(|e| refuse("temporarily_unavailable", e.to_string()))?;
        let Some(client) = found else {
            return Err(refuse(
                "no_client",
                format!("no client with id {client_id:?} is registered here"),
            ));
        };
        if let Some(fault) = request.fault {
            simulate::can_apply(fault, &client).map_err(|why| refuse("invalid_request", why))?;
        }
    }
    let intent = match &request.intent {
        Some(text) if text.len() > MAX_INTENT || text.chars().any(char::is_control) => {
            return Err(refuse(
                "invalid_request",
                format!(
                    "intent must be at most {MAX_INTENT} bytes of text without control characters"
                ),
            ))
        }
        Some(text) if text.is_empty() => None,
        other => other.clone(),
    };
    if request.fhir_context.len() > MAX_FHIR_CONTEXT {
        return Err(refuse(
            "invalid_request",
            format!("fhir_context holds at most {MAX_FHIR_CONTEXT} references"),
        ));
    }
    for reference in &request.fhir_context {
        check_reference(state, patient, reference)?;
    }
    Ok(LaunchContext {
        ehr: true,
        encounter: encounter(state, patient, &request.encounter)?,
        fhir_context: request.fhir_context.clone(),
        intent,
        need_patient_banner: request.need_patient_banner,
    })
}

/// The encounter a choice names, checked to be the patient's.
pub fn encounter(
    state: &AppState,
    patient: &str,
    choice: &EncounterChoice,
) -> Result<Option<String>, MintError> {
    match choice {
        EncounterChoice::None => Ok(None),
        EncounterChoice::Latest => latest_encounter(state, patient).map(Some).ok_or_else(|| {
            refuse(
                "no_encounter",
                format!("{patient} has no Encounter to put in context"),
            )
        }),
        EncounterChoice::Id(id) => {
            let id = id.strip_prefix("Encounter/").unwrap_or(id);
            match state.data.get("Encounter", id) {
                Some(found) if found.patient.as_deref() == Some(patient) => {
                    Ok(Some(id.to_string()))
                }
                _ => Err(refuse(
                    "no_encounter",
                    format!(
                        "{patient} has no Encounter {id:?}; their Encounters are {}",
                        encounters_of(state, patient).join(", ")
                    ),
                )),
            }
        }
    }
}

/// A patient's Encounter ids, most recent first (by `period.start`).
pub fn encounters_of(state: &AppState, patient: &str) -> Vec<String> {
    let mut found: Vec<(String, String)> = state
        .data
        .compartment(patient)
        .filter(|r| r.resource_type == "Encounter")
        .map(|r| {
            let start = r.json["period"]["start"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            (start, r.id.clone())
        })
        .collect();
    found.sort_by(|a, b| b.cmp(a));
    found.into_iter().map(|(_, id)| id).collect()
}

fn latest_encounter(state: &AppState, patient: &str) -> Option<String> {
    encounters_of(state, patient).into_iter().next()
}

/// A `fhirContext` entry must name a bundled resource in the patient's compartment (or
/// one belonging to no compartment, a Practitioner).
fn check_reference(state: &AppState, patient: &str, reference: &str) -> Result<(), MintError> {
    let wrong = |why: &str| {
        refuse(
            "no_context",
            format!("fhir_context entry {reference:?} {why}; give references like Observation/<id> from {patient}'s chart"),
        )
    };
    if reference.len() > MAX_INTENT {
        return Err(wrong("is too long"));
    }
    let Some((resource_type, id)) = reference.split_once('/') else {
        return Err(wrong("is not a relative reference Type/id"));
    };
    match state.data.get(resource_type, id) {
        Some(found) if found.patient.as_deref() == Some(patient) || found.patient.is_none() => {
            Ok(())
        }
        Some(_) => Err(wrong("belongs to another patient")),
        None => Err(wrong("names no bundled resource")),
    }
}
