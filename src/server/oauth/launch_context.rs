//! The launch context a token response carries besides the patient (SMART App Launch 2.2,
//! "Launch context arrives with your access_token"), the same at every refresh.

use serde_json::{json, Value};

use crate::server::launch::style::STYLE_PATH;
use crate::server::scopes::Scopes;
use crate::server::state::AppState;
use crate::server::store::LaunchContext;

/// Add `encounter` (when `launch` or `launch/encounter` was granted) and `fhirContext`
/// (`[{"reference": …}]`, the encounter first) to a token or introspection response.
pub fn add_resources(scopes: &Scopes, context: &LaunchContext, body: &mut Value) {
    let encounter = context
        .encounter
        .as_ref()
        .filter(|_| scopes.has("launch") || scopes.has("launch/encounter"));
    if let Some(id) = encounter {
        body["encounter"] = json!(id);
    }
    let references: Vec<Value> = encounter
        .map(|id| format!("Encounter/{id}"))
        .into_iter()
        .chain(context.fhir_context.iter().cloned())
        .map(|reference| json!({ "reference": reference }))
        .collect();
    if !references.is_empty() {
        body["fhirContext"] = Value::Array(references);
    }
}

/// Add `encounter`, `fhirContext`, `intent`, `need_patient_banner` and `smart_style_url`
/// to a token response. A grant without a stored context is a standalone launch that chose
/// no encounter: the app shows its own banner.
pub fn add(state: &AppState, scopes: &Scopes, context: Option<&LaunchContext>, body: &mut Value) {
    let standalone = LaunchContext {
        need_patient_banner: true,
        ..LaunchContext::default()
    };
    let context = context.unwrap_or(&standalone);
    add_resources(scopes, context, body);
    if let Some(intent) = &context.intent {
        body["intent"] = json!(intent);
    }
    body["need_patient_banner"] = json!(context.need_patient_banner);
    body["smart_style_url"] = json!(state.url(STYLE_PATH));
}
