//! `/oauth/debug/simulate`: queue, list and clear a client's simulated faults (a debug
//! endpoint, reached only as `debug_gate` allows).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::Json;
use serde_json::{json, Map, Value};

use super::fault::{Fault, Site};
use super::{can_apply, parse_fault, queued, MAX_DELAY_MS, MAX_QUEUED, MAX_TIMES};
use crate::server::error::OAuthError;
use crate::server::oauth::{json_object, store_failed};
use crate::server::state::AppState;
use crate::server::store::{Client, QueuedFault, UNTIL_CLEARED};

const FIELDS: &[&str] = &["client_id", "fault", "times", "delay_ms", "at"];

/// POST /oauth/debug/simulate: queue a fault; the client's faults.
pub async fn set(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, OAuthError> {
    let m = json_object(&headers, body)?;
    if let Some(unknown) = m.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(OAuthError::invalid_request(format!(
            "unknown field {unknown:?}; the fields are {}",
            FIELDS.join(", ")
        )));
    }
    let client = known_client(&state, m.get("client_id").and_then(Value::as_str)).await?;
    let fault = match m.get("fault") {
        Some(Value::String(name)) => {
            parse_fault(name).map_err(|e| OAuthError::bad_request("unknown_fault", e))?
        }
        None | Some(Value::Null) => {
            return Err(OAuthError::bad_request(
                "unknown_fault",
                format!(
                    "fault is missing; the faults are {}",
                    super::FAULT_NAMES.join(", ")
                ),
            ))
        }
        Some(other) => {
            return Err(OAuthError::bad_request(
                "unknown_fault",
                format!("fault must be a fault's name, not {other}"),
            ))
        }
    };
    let queued = parse_queued(&m, fault, &client.client_id)?;
    can_apply(fault, &client).map_err(OAuthError::invalid_request)?;
    let added = state
        .store
        .add_fault(queued, MAX_QUEUED)
        .await
        .map_err(store_failed)?;
    if added.is_none() {
        return Err(OAuthError::invalid_request(format!(
            "client {} has {MAX_QUEUED} faults queued already (the most); clear them with DELETE /oauth/debug/simulate?client_id={}",
            client.client_id, client.client_id
        )));
    }
    tracing::info!(client_id = %client.client_id, fault = fault.name(), "simulated fault queued");
    listing(&state, &client.client_id).await
}

/// GET /oauth/debug/simulate?client_id=X: the client's faults, in the order they answer.
pub async fn list(
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, OAuthError> {
    let client_id = query_client_id(query.as_deref());
    let client = known_client(&state, client_id.as_deref()).await?;
    listing(&state, &client.client_id).await
}

/// DELETE /oauth/debug/simulate?client_id=X: forget the client's faults.
pub async fn clear(
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, OAuthError> {
    let client_id = query_client_id(query.as_deref());
    let client = known_client(&state, client_id.as_deref()).await?;
    let cleared = state
        .store
        .clear_faults(&client.client_id)
        .await
        .map_err(store_failed)?;
    tracing::info!(client_id = %client.client_id, cleared, "simulated faults cleared");
    Ok(Json(json!({
        "client_id": client.client_id,
        "faults": [],
        "cleared": cleared,
    })))
}

fn query_client_id(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "client_id")
        .map(|(_, v)| v.into_owned())
}

async fn known_client(state: &AppState, client_id: Option<&str>) -> Result<Client, OAuthError> {
    let client_id = client_id.filter(|c| !c.is_empty()).ok_or_else(|| {
        OAuthError::bad_request(
            "no_client",
            "client_id is missing; name the registered client whose requests should fail",
        )
    })?;
    state
        .store
        .client(client_id)
        .await
        .map_err(store_failed)?
        .ok_or_else(|| {
            OAuthError::bad_request(
                "no_client",
                format!("no client with id {client_id:?} is registered here"),
            )
        })
}

/// The fault to queue, from the body's `times`, `delay_ms` and `at`.
fn parse_queued(
    m: &Map<String, Value>,
    fault: Fault,
    client_id: &str,
) -> Result<QueuedFault, OAuthError> {
    let whole = |key: &str, low: i64, high: i64| -> Result<Option<i64>, OAuthError> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_i64()
                .filter(|n| (low..=high).contains(n))
                .map(Some)
                .ok_or_else(|| {
                    OAuthError::invalid_request(format!(
                        "{key} must be a whole number from {low} to {high}, not {v}"
                    ))
                }),
        }
    };
    let times = whole("times", 0, MAX_TIMES)?.unwrap_or(1);
    let delay_ms = whole("delay_ms", 1, MAX_DELAY_MS)?;
    let at = match m.get("at") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => Some(Site::parse(name).ok_or_else(|| {
            OAuthError::invalid_request(format!(
                "at {name:?} is not a place faults answer; use authorize, token or fhir"
            ))
        })?),
        Some(other) => {
            return Err(OAuthError::invalid_request(format!(
                "at must be authorize, token or fhir, not {other}"
            )))
        }
    };
    if fault != Fault::Slow && (delay_ms.is_some() || at.is_some()) {
        return Err(OAuthError::invalid_request(format!(
            "delay_ms and at are for the slow fault; {fault} always answers at {}",
            fault.fixed_site().map_or("any", Site::name)
        )));
    }
    Ok(queued(fault, client_id, times, at, delay_ms))
}

/// `{"client_id", "faults": [...]}`: what is queued, in the order it answers.
async fn listing(state: &AppState, client_id: &str) -> Result<Json<Value>, OAuthError> {
    let faults = state.store.faults(client_id).await.map_err(store_failed)?;
    let faults: Vec<Value> = faults.iter().map(describe).collect();
    Ok(Json(json!({"client_id": client_id, "faults": faults})))
}

/// One queued fault as the endpoint shows it.
pub fn describe(queued: &QueuedFault) -> Value {
    json!({
        "fault": queued.fault,
        "times": queued.times,
        "remaining": (queued.remaining != UNTIL_CLEARED).then_some(queued.remaining),
        "at": queued.at,
        "delay_ms": queued.delay_ms,
    })
}
