//! Encounters as the pages show them: a patient's, most recent first, each in words.

use crate::server::launch::mint::encounters_of;
use crate::server::state::AppState;

/// One Encounter on a page.
pub struct EncounterChoice {
    /// Its FHIR id, the submitted value.
    pub id: String,
    /// "2017-12-05 · Follow-up encounter (procedure)".
    pub label: String,
    /// Whether it is the one chosen (or offered first).
    pub chosen: bool,
}

/// The patient's Encounters, most recent first, with `chosen` marking the one given.
pub fn choices(state: &AppState, patient_id: &str, chosen: Option<&str>) -> Vec<EncounterChoice> {
    encounters_of(state, patient_id)
        .into_iter()
        .map(|id| EncounterChoice {
            label: label(state, &id),
            chosen: chosen == Some(id.as_str()),
            id,
        })
        .collect()
}

/// An Encounter's day and kind as its chart records them, or its id.
pub fn label(state: &AppState, id: &str) -> String {
    let Some(found) = state.data.get("Encounter", id) else {
        return id.to_string();
    };
    let json = &found.json;
    let day = json["period"]["start"]
        .as_str()
        .and_then(|s| s.get(..10))
        .unwrap_or("undated");
    let kind = json["type"][0]["text"]
        .as_str()
        .or_else(|| json["type"][0]["coding"][0]["display"].as_str())
        .or_else(|| json["class"]["display"].as_str())
        .unwrap_or("Encounter");
    format!("{day} · {kind}")
}
