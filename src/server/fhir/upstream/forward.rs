//! The FHIR interactions, forwarded: the same checks as the bundled store first (its own
//! parser for every query), then the upstream with the compartment written into the
//! question, then the guard over the answer.

use axum::body::Bytes;
use serde_json::{json, Value};

use super::super::access::{Access, Operation};
use super::super::data::{in_compartment, Resource, SERVED_TYPES};
use super::super::search::Search;
use super::super::{
    check_id, check_query_format, check_type, forbidden_type, query, unknown_operation,
};
use super::error::Asked;
use super::guard::{self, Screen};
use super::params;
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

/// GET `{type}?params`: the query as the bundled store's parser reads it (what it refuses is
/// refused here with the same 400, before anything is asked), with the token's compartment
/// (and shared v2 filter) written by the proxy.
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
    let search = Search::parse(resource_type, &query::pairs(query)?)?;
    let confinement = access.confinement(resource_type, Operation::Search);
    let proxy_base = state.fhir_base();
    let Some(pairs) = params::search(resource_type, &search, confinement.as_ref()) else {
        return Ok(empty_searchset(&proxy_base, resource_type, &search));
    };
    let bundle = upstream
        .get(&format!("/{resource_type}"), &pairs)
        .await
        .map_err(|e| e.into_fhir(Asked::Search))?;
    let verified = confinement.as_ref().is_none_or(|c| c.complete);
    screen(
        upstream,
        access,
        Operation::Search,
        &proxy_base,
        verified,
        bundle,
    )
}

/// GET `Patient/{id}/$everything`, only for a patient the token reaches, with only the
/// paging parameters the bundled store's `$everything` takes.
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
    let search = Search::everything(&query::pairs(query)?)?;
    if !access.reaches_patient(id) {
        return Err(FhirError::not_found(format!("Patient/{id} is not known")));
    }
    let bundle = upstream
        .get(
            &format!("/Patient/{id}/$everything"),
            &params::paging(&search),
        )
        .await
        .map_err(|e| e.into_fhir(Asked::Everything(id)))?;
    screen(
        upstream,
        access,
        Operation::Read,
        &state.fhir_base(),
        reaches_whole_compartment(access, id),
        bundle,
    )
}

/// GET `?params` on the bare base: only the upstream's own paging links (`?_getpages=…`).
pub async fn page(
    state: &AppState,
    upstream: &Upstream,
    access: &Access,
    query: Option<&str>,
) -> Result<Value, FhirError> {
    let pairs = query::pairs(query)?;
    if pairs.is_empty() {
        return Err(FhirError::not_found(
            "no FHIR endpoint at the bare base without a query; reads look like /api/fhir/Patient/{id} and searches like /api/fhir/Observation?patient={id}",
        ));
    }
    let pairs = params::page(&pairs)?;
    let bundle = upstream
        .get("", &pairs)
        .await
        .map_err(|e| e.into_fhir(Asked::Search))?;
    // Nothing says whose search this page belongs to: every entry is checked, and the page
    // is never verified (no total; paging links only while every entry passes).
    screen(
        upstream,
        access,
        Operation::Search,
        &state.fhir_base(),
        false,
        bundle,
    )
}

/// Whether the token may see every served type of this patient's compartment, unfiltered,
/// so that the upstream's count of `$everything` is one of what the token may see.
fn reaches_whole_compartment(access: &Access, id: &str) -> bool {
    SERVED_TYPES.iter().filter(|t| in_compartment(t)).all(|t| {
        access.confinement(t, Operation::Read).is_some_and(|c| {
            c.complete && c.filter.is_empty() && (c.everyone || c.patients.iter().any(|p| p == id))
        })
    })
}

fn screen(
    upstream: &Upstream,
    access: &Access,
    op: Operation,
    proxy_base: &str,
    verified: bool,
    bundle: Value,
) -> Result<Value, FhirError> {
    Screen {
        access,
        op,
        upstream_base: upstream.base(),
        proxy_base,
        verified,
    }
    .bundle(bundle)
    .map_err(|what| UpstreamError::Unexpected(what).into_fhir(Asked::Search))
}

/// A search whose own compartment parameters leave no patient the token reaches finds
/// nothing, without asking upstream; its self link is the bundled store's.
fn empty_searchset(proxy_base: &str, resource_type: &str, search: &Search) -> Value {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.extend_pairs(&search.link_params);
    if search.offset > 0 {
        query.append_pair("_offset", &search.offset.to_string());
    }
    let query = query.finish();
    let mut url = format!("{proxy_base}/{resource_type}");
    if !query.is_empty() {
        url = format!("{url}?{query}");
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
