//! The FHIR API: reads, searches and $everything, with scopes and compartments enforced.
//!
//! `/api/fhir` needs a bearer token; `/api/open-fhir` serves the same data without one.
//! With `--fhir-upstream`, `/api/fhir` forwards to a real FHIR server instead (see `upstream`).

mod accept;
pub mod access;
mod bundle;
pub mod capability;
pub mod data;
pub mod query;
pub mod search;
pub mod upstream;

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::Value;
use tower_http::cors::{Any, CorsLayer};

use access::{Access, Operation};
use bundle::bundle;
use data::{Resource, SERVED_TYPES};
use search::Search;

use super::error::{fhir_json, method_not_allowed, FhirError};
use super::no_store::no_store;
use super::state::AppState;

type Shared = State<Arc<AppState>>;

/// Which of the two FHIR bases a request came in on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Base {
    Protected,
    Open,
}

/// Routes under `/api/fhir` and `/api/open-fhir`, with open CORS.
pub fn routes() -> Router<Arc<AppState>> {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::OPTIONS])
        .allow_headers([header::AUTHORIZATION, header::ACCEPT, header::CONTENT_TYPE])
        .expose_headers([
            header::WWW_AUTHENTICATE,
            header::LOCATION,
            header::RETRY_AFTER,
            crate::server::simulate::HEADER,
        ]);
    // Patient data: never cached, errors included.
    let data = Router::new()
        .route("/api/fhir", get(page_protected))
        .route("/api/fhir/{type}", get(search_protected))
        .route("/api/open-fhir/{type}", get(search_open))
        .route("/api/fhir/{type}/{id}", get(read_protected))
        .route("/api/open-fhir/{type}/{id}", get(read_open))
        .route(
            "/api/fhir/{type}/{id}/{operation}",
            get(operation_protected),
        )
        .route(
            "/api/open-fhir/{type}/{id}/{operation}",
            get(operation_open),
        )
        // Set before the layers: the router-wide 405 fallback would not reach layered
        // routes, and under the CORS layer it would answer browsers' preflights with 405.
        .method_not_allowed_fallback(method_not_allowed);
    // The CapabilityStatements describe the server, not a patient: cacheable.
    let metadata = Router::new()
        .route("/api/fhir/metadata", get(metadata))
        .route("/api/open-fhir/metadata", get(open_metadata))
        .method_not_allowed_fallback(method_not_allowed);
    // `Accept` is read before anything else: a client that takes no JSON gets 406 whatever
    // else is wrong with its request.
    let negotiate = || axum::middleware::from_fn(accept::negotiate);
    no_store(data.layer(negotiate()))
        .merge(metadata.layer(negotiate()))
        .layer(cors)
}

async fn metadata(State(state): Shared, RawQuery(query): RawQuery) -> Response {
    respond(check_query_format(query.as_deref()).map(|_| capability::statement(&state, true)))
}

/// The bare base answers only in front of an upstream, for its paging links.
async fn page_protected(
    State(state): Shared,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(upstream) = &state.upstream else {
        return super::error::not_found(uri).await;
    };
    let result = async {
        let access = access::from_bearer(&state, &headers).await?;
        upstream::page(&state, upstream, &access, query.as_deref()).await
    };
    respond(result.await)
}

async fn open_metadata(State(state): Shared, RawQuery(query): RawQuery) -> Response {
    if let Some(off) = open_fhir_off(&state) {
        return off;
    }
    respond(check_query_format(query.as_deref()).map(|_| capability::statement(&state, false)))
}

async fn search_protected(
    State(state): Shared,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Response {
    let result = async {
        let Path(resource_type) = path.map_err(bad_path)?;
        let access = access::from_bearer(&state, &headers).await?;
        if let Some(upstream) = &state.upstream {
            return upstream::search(&state, upstream, &access, &resource_type, query.as_deref())
                .await;
        }
        search_type(
            &state,
            Base::Protected,
            &access,
            &resource_type,
            query.as_deref(),
        )
    };
    respond(result.await)
}

async fn search_open(
    State(state): Shared,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(off) = open_fhir_off(&state) {
        return off;
    }
    let result = path
        .map_err(bad_path)
        .and_then(|Path(t)| search_type(&state, Base::Open, &Access::Open, &t, query.as_deref()));
    respond(result)
}

async fn read_protected(
    State(state): Shared,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Response {
    let result = async {
        let Path((resource_type, id)) = path.map_err(bad_path)?;
        let access = access::from_bearer(&state, &headers).await?;
        if let Some(upstream) = &state.upstream {
            let resource =
                upstream::read(upstream, &access, &resource_type, &id, query.as_deref()).await?;
            return Ok(resource_response(&resource));
        }
        read(&state, &access, &resource_type, &id, query.as_deref()).map(resource_response)
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}

async fn read_open(
    State(state): Shared,
    path: Result<Path<(String, String)>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(off) = open_fhir_off(&state) {
        return off;
    }
    let result = path
        .map_err(bad_path)
        .and_then(|Path((t, id))| read(&state, &Access::Open, &t, &id, query.as_deref()));
    match result {
        Ok(resource) => resource_response(resource),
        Err(e) => e.into_response(),
    }
}

async fn operation_protected(
    State(state): Shared,
    headers: HeaderMap,
    path: Result<Path<(String, String, String)>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Response {
    let result = async {
        let Path((resource_type, id, op)) = path.map_err(bad_path)?;
        let access = access::from_bearer(&state, &headers).await?;
        if let Some(upstream) = &state.upstream {
            let asked = (resource_type.as_str(), id.as_str(), op.as_str());
            return upstream::everything(&state, upstream, &access, asked, query.as_deref()).await;
        }
        everything(
            &state,
            Base::Protected,
            &access,
            &resource_type,
            &id,
            &op,
            query.as_deref(),
        )
    };
    respond(result.await)
}

async fn operation_open(
    State(state): Shared,
    path: Result<Path<(String, String, String)>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(off) = open_fhir_off(&state) {
        return off;
    }
    let result = path.map_err(bad_path).and_then(|Path((t, id, op))| {
        everything(
            &state,
            Base::Open,
            &Access::Open,
            &t,
            &id,
            &op,
            query.as_deref(),
        )
    });
    respond(result)
}

fn respond(result: Result<Value, FhirError>) -> Response {
    match result {
        Ok(body) => fhir_json(&body).into_response(),
        Err(e) => e.into_response(),
    }
}

fn resource_response(resource: &Resource) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/fhir+json; charset=utf-8"),
        )],
        resource.body.clone(),
    )
        .into_response()
}

/// The 404 for `/api/open-fhir` when it is not served: turned off, or in front of an
/// upstream server, whose records must not be handed out without a token.
fn open_fhir_off(state: &AppState) -> Option<Response> {
    let why = if state.upstream.is_some() {
        "open FHIR access is not offered in front of an upstream FHIR server (--fhir-upstream); use /api/fhir with a bearer token"
    } else if !state.config.open_fhir {
        "open FHIR access is turned off on this server (--no-open-fhir); use /api/fhir with a bearer token"
    } else {
        return None;
    };
    Some(FhirError::not_found(why).into_response())
}

fn bad_path(rejection: PathRejection) -> FhirError {
    FhirError::invalid(format!("the request path could not be read: {rejection}"))
}

/// `_format` may only ask for JSON.
fn check_format(value: &str) -> Result<(), FhirError> {
    match value {
        "json" | "application/json" | "application/fhir+json" => Ok(()),
        other => Err(FhirError::new(
            StatusCode::NOT_ACCEPTABLE,
            "not-supported",
            format!("_format={other:?} is not served; this server speaks JSON only (_format=json)"),
        )),
    }
}

/// Reads and operations take only `_format`.
fn check_query_format(query: Option<&str>) -> Result<(), FhirError> {
    for (name, value) in query::pairs(query)? {
        match name.as_str() {
            "_format" => check_format(&value)?,
            "_pretty" | "_summary" | "_elements" => {}
            _ => {
                return Err(FhirError::invalid(format!(
                    "parameter {name:?} is not understood here; reads take only _format"
                )))
            }
        }
    }
    Ok(())
}

fn check_type(resource_type: &str) -> Result<(), FhirError> {
    if SERVED_TYPES.contains(&resource_type) {
        return Ok(());
    }
    Err(FhirError::not_found(format!(
        "resource type {resource_type:?} is not served here; served types: {}",
        SERVED_TYPES.join(", ")
    )))
}

fn check_id(id: &str) -> Result<(), FhirError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(FhirError::invalid(format!(
            "{id:?} is not a FHIR id: ids are 1 to 64 letters, digits, '-' or '.'"
        )))
    }
}

fn unknown_operation(resource_type: &str, operation: &str) -> FhirError {
    FhirError::not_found(format!(
        "no operation {resource_type}/{{id}}/{operation}; the one operation served is Patient/{{id}}/$everything"
    ))
}

fn forbidden_type(resource_type: &str, op: Operation) -> FhirError {
    let verb = match op {
        Operation::Read => "read",
        Operation::Search => "search",
    };
    let example = if data::in_compartment(resource_type) {
        format!("patient/{resource_type}.read")
    } else {
        // In no patient's compartment: patient/ scopes never reach it.
        format!("user/{resource_type}.read")
    };
    FhirError::forbidden(format!(
        "the token's scopes do not allow {verb} on {resource_type}; ask for a scope such as {example}"
    ))
}

fn read<'a>(
    state: &'a AppState,
    access: &Access,
    resource_type: &str,
    id: &str,
    query: Option<&str>,
) -> Result<&'a Resource, FhirError> {
    check_type(resource_type)?;
    check_id(id)?;
    check_query_format(query)?;
    if !access.reaches_type(resource_type, Operation::Read) {
        return Err(forbidden_type(resource_type, Operation::Read));
    }
    // A resource outside the token's reach is reported exactly like one that does not exist.
    state
        .data
        .get(resource_type, id)
        .filter(|r| access.allows(r, Operation::Read))
        .ok_or_else(|| FhirError::not_found(format!("{resource_type}/{id} is not known")))
}

fn search_type(
    state: &AppState,
    base: Base,
    access: &Access,
    resource_type: &str,
    query: Option<&str>,
) -> Result<Value, FhirError> {
    check_type(resource_type)?;
    if !access.reaches_type(resource_type, Operation::Search) {
        return Err(forbidden_type(resource_type, Operation::Search));
    }
    let search = Search::parse(resource_type, &query::pairs(query)?)?;
    let hits: Vec<&Resource> = state
        .data
        .of_type(resource_type)
        .filter(|r| search.matches(r) && access.allows(r, Operation::Search))
        .collect();
    Ok(bundle(
        state,
        base,
        &format!("/{resource_type}"),
        &search,
        &hits,
    ))
}

fn everything(
    state: &AppState,
    base: Base,
    access: &Access,
    resource_type: &str,
    id: &str,
    operation: &str,
    query: Option<&str>,
) -> Result<Value, FhirError> {
    if resource_type != "Patient" || operation != "$everything" {
        return Err(unknown_operation(resource_type, operation));
    }
    check_id(id)?;
    let search = Search::everything(&query::pairs(query)?)?;
    // An unknown patient and one outside the token's reach look the same.
    if state.data.get("Patient", id).is_none() || !access.reaches_patient(id) {
        return Err(FhirError::not_found(format!("Patient/{id} is not known")));
    }
    let hits: Vec<&Resource> = state
        .data
        .compartment(id)
        .filter(|r| access.allows(r, Operation::Read))
        .collect();
    Ok(bundle(
        state,
        base,
        &format!("/Patient/{id}/$everything"),
        &search,
        &hits,
    ))
}
