//! The FHIR interactions, forwarded: the same checks as the bundled store first, then the
//! upstream with the compartment added to the question, then the guard over the answer.

use axum::body::Bytes;
use serde_json::{json, Value};

use super::super::access::{Access, Operation};
use super::super::data::Resource;
use super::super::{
    check_format, check_id, check_query_format, check_type, forbidden_type, query,
    unknown_operation,
};
use super::error::Asked;
use super::guard::{self, Screen};
use super::{Upstream, UpstreamError};
use crate::server::clock;
use crate::server::error::FhirError;
use crate::server::state::AppState;

/// GET `{type}/{id}`: 404 unless the answer is in the token's reach.
pub async fn read(
    upstream: &Upstream,
    access: &Access,
    resource_type: &str,
    id: &str,
    query: Option<&str>,
) -> Result<Resource, FhirError> {
    check_type(resource_type)?;
    check_id(id)?;
    check_query_format(query)?;
    if !access.reaches_type(resource_type, Operation::Read) {
        return Err(forbidden_type(resource_type, Operation::Read));
    }
    let asked = Asked::Read(resource_type, id);
    let json = upstream
        .get(&format!("/{resource_type}/{id}"), &[])
        .await
        .map_err(|e| e.into_fhir(asked))?;
    let found = json["resourceType"].as_str().unwrap_or("?").to_string();
    let mut resource = guard::resource(json, upstream.base())
        .filter(|r| r.resource_type == resource_type && r.id == id)
        .ok_or_else(|| {
            UpstreamError::Unexpected(format!(
                "the upstream FHIR server answered a read of {resource_type}/{id} with another resource ({found})"
            ))
            .into_fhir(asked)
        })?;
    if !guard::permitted(&resource, access, Operation::Read) {
        return Err(FhirError::not_found(format!(
            "{resource_type}/{id} is not known"
        )));
    }
    resource.body = Bytes::from(resource.json.to_string());
    Ok(resource)
}

/// GET `{type}?params`, with the token's compartment (and shared v2 filter) added.
pub async fn search(
    state: &AppState,
    upstream: &Upstream,
    access: &Access,
    resource_type: &str,
    query: Option<&str>,
) -> Result<Value, FhirError> {
    check_type(resource_type)?;
    if !access.reaches_type(resource_type, Operation::Search) {
        return Err(forbidden_type(resource_type, Operation::Search));
    }
    let mut pairs = forwardable(query)?;
    let proxy_base = state.fhir_base();
    if let Some(confinement) = access.confinement(resource_type, Operation::Search) {
        if confinement.patients.is_empty() {
            return Ok(empty_searchset(&proxy_base, resource_type, &pairs));
        }
        let name = if resource_type == "Patient" {
            "_id"
        } else {
            "patient"
        };
        pairs.push((name.to_string(), confinement.patients.join(",")));
        pairs.extend(confinement.filter);
    }
    let bundle = upstream
        .get(&format!("/{resource_type}"), &pairs)
        .await
        .map_err(|e| e.into_fhir(Asked::Search))?;
    screen(
        upstream,
        access,
        Operation::Search,
        &proxy_base,
        true,
        bundle,
    )
}

/// GET `Patient/{id}/$everything`, only for a patient the token reaches.
pub async fn everything(
    state: &AppState,
    upstream: &Upstream,
    access: &Access,
    (resource_type, id, operation): (&str, &str, &str),
    query: Option<&str>,
) -> Result<Value, FhirError> {
    if resource_type != "Patient" || operation != "$everything" {
        return Err(unknown_operation(resource_type, operation));
    }
    check_id(id)?;
    let pairs = forwardable(query)?;
    if !access.reaches_patient(id) {
        return Err(FhirError::not_found(format!("Patient/{id} is not known")));
    }
    let bundle = upstream
        .get(&format!("/Patient/{id}/$everything"), &pairs)
        .await
        .map_err(|e| e.into_fhir(Asked::Everything(id)))?;
    screen(
        upstream,
        access,
        Operation::Read,
        &state.fhir_base(),
        true,
        bundle,
    )
}

/// GET `?params` on the bare base: the upstream's own paging links (`?_getpages=…`).
pub async fn page(
    state: &AppState,
    upstream: &Upstream,
    access: &Access,
    query: Option<&str>,
) -> Result<Value, FhirError> {
    let pairs = forwardable(query)?;
    if pairs.is_empty() {
        return Err(FhirError::not_found(
            "no FHIR endpoint at the bare base without a query; reads look like /api/fhir/Patient/{id} and searches like /api/fhir/Observation?patient={id}",
        ));
    }
    let bundle = upstream
        .get("", &pairs)
        .await
        .map_err(|e| e.into_fhir(Asked::Search))?;
    // No compartment parameter could be added here, so `total` is never trusted.
    screen(
        upstream,
        access,
        Operation::Search,
        &state.fhir_base(),
        false,
        bundle,
    )
}

/// The client's query pairs as they go upstream: `_format` checked and left out.
fn forwardable(query: Option<&str>) -> Result<Vec<(String, String)>, FhirError> {
    let mut pairs = query::pairs(query)?;
    for (name, value) in &pairs {
        if name == "_format" {
            check_format(value)?;
        }
    }
    pairs.retain(|(name, _)| name != "_format");
    Ok(pairs)
}

fn screen(
    upstream: &Upstream,
    access: &Access,
    op: Operation,
    proxy_base: &str,
    keep_total: bool,
    bundle: Value,
) -> Result<Value, FhirError> {
    Screen {
        access,
        op,
        upstream_base: upstream.base(),
        proxy_base,
        keep_total,
    }
    .bundle(bundle)
    .map_err(|what| UpstreamError::Unexpected(what).into_fhir(Asked::Search))
}

/// A token that reaches no patient for this type finds nothing, without asking upstream.
fn empty_searchset(proxy_base: &str, resource_type: &str, pairs: &[(String, String)]) -> Value {
    let mut url = format!("{proxy_base}/{resource_type}");
    if !pairs.is_empty() {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.extend_pairs(pairs);
        url = format!("{url}?{}", query.finish());
    }
    json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "meta": {"lastUpdated": clock::fhir_instant(clock::now())},
        "type": "searchset",
        "total": 0,
        "link": [{"relation": "self", "url": url}],
    })
}
