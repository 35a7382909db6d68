//! Who may read what: a bearer token's scopes and patient compartment, or open access.

use std::sync::Arc;

use axum::http::{header, HeaderMap};

use crate::server::clock;
use crate::server::error::FhirError;
use crate::server::scopes::{Context, Permissions, ResourceScope};
use crate::server::simulate;
use crate::server::state::AppState;
use crate::server::store::{Approval, Token};

use super::data::{in_compartment, Resource};
use super::search::matches_filter;

/// One resource scope together with the patients it reaches.
#[derive(Debug, Clone)]
pub struct Grant {
    scope: Arc<ResourceScope>,
    patients: Arc<[String]>,
    /// A `system/` scope (SMART Backend Services): every patient, no compartment.
    everyone: bool,
}

impl Grant {
    /// Whether this grant lets the operation touch this type at all: it names the type with
    /// the permission, and a type outside every patient compartment (Practitioner) is
    /// reached by `user/` and `system/` scopes only.
    fn reaches_type(&self, resource_type: &str, op: Operation) -> bool {
        self.scope.names_type(resource_type)
            && self.scope.permissions.contains(&op.permissions())
            && (in_compartment(resource_type) || self.scope.context != Context::Patient)
    }

    /// Whether this grant lets the operation return this resource.
    fn allows(&self, resource: &Resource, op: Operation) -> bool {
        self.reaches_type(&resource.resource_type, op)
            && (!in_compartment(&resource.resource_type)
                || self.everyone
                || resource
                    .patient
                    .as_ref()
                    .is_some_and(|p| self.patients.iter().any(|q| q == p)))
            && self
                .scope
                .filter
                .iter()
                .all(|(name, value)| matches_filter(&resource.json, name, value))
    }
}

/// The resource a token's identity grant (`openid` with `fhirUser` or `profile`) names:
/// readable by id whatever the resource scopes say.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnRecord {
    /// Its type: Patient, RelatedPerson or Practitioner.
    pub resource_type: String,
    /// Its id.
    pub id: String,
}

impl OwnRecord {
    /// The record a relative reference `Type/id` names; `None` for anything else.
    pub fn from_reference(reference: &str) -> Option<OwnRecord> {
        let (resource_type, id) = reference.split_once('/')?;
        (!resource_type.is_empty() && !id.is_empty() && !id.contains('/')).then(|| OwnRecord {
            resource_type: resource_type.to_string(),
            id: id.to_string(),
        })
    }

    fn is(&self, resource: &Resource) -> bool {
        resource.resource_type == self.resource_type && resource.id == self.id
    }
}

/// What a request may see.
#[derive(Debug, Clone)]
pub enum Access {
    /// `/api/open-fhir`: everything, no token.
    Open,
    /// A bearer token's grants.
    Token {
        /// One per resource scope.
        grants: Vec<Grant>,
        /// The user's own fhirUser record, when the token carries the identity grant: read
        /// by id only (never found by a search).
        own_record: Option<OwnRecord>,
    },
}

/// What a search must be narrowed to before it leaves for an upstream server.
#[derive(Debug, Clone, PartialEq)]
pub struct Confinement {
    /// The patients whose compartments the token reaches for this type, sorted.
    pub patients: Vec<String>,
    /// The v2 filter every grant for this type shares; empty when any grant has none or
    /// they differ (the answer is then filtered resource by resource instead).
    pub filter: Vec<(String, String)>,
    /// Whether `patients` and `filter` together say exactly what the token may see of this
    /// type; false when the grants' filters differ, so a count of matches is not one of
    /// what the token may see.
    pub complete: bool,
    /// A `system/` scope reaches this type in every patient's compartment: no compartment
    /// is written (`patients` is then empty).
    pub everyone: bool,
}

/// The kind of operation a check is for.
#[derive(Debug, Clone, Copy)]
pub enum Operation {
    /// GET by id (and $everything).
    Read,
    /// A search.
    Search,
}

impl Operation {
    fn permissions(self) -> Permissions {
        match self {
            Operation::Read => Permissions {
                read: true,
                ..Default::default()
            },
            Operation::Search => Permissions {
                search: true,
                ..Default::default()
            },
        }
    }
}

impl Access {
    /// Whether any scope lets this operation touch this type at all (a read also when the
    /// type is the token's own record's).
    pub fn reaches_type(&self, resource_type: &str, op: Operation) -> bool {
        match self {
            Access::Open => true,
            Access::Token { grants, own_record } => {
                grants.iter().any(|g| g.reaches_type(resource_type, op))
                    || matches!(op, Operation::Read)
                        && own_record
                            .as_ref()
                            .is_some_and(|own| own.resource_type == resource_type)
            }
        }
    }

    /// Whether this resource may be returned for this operation.
    pub fn allows(&self, resource: &Resource, op: Operation) -> bool {
        match self {
            Access::Open => true,
            Access::Token { grants, own_record } => {
                grants.iter().any(|g| g.allows(resource, op))
                    || matches!(op, Operation::Read)
                        && own_record.as_ref().is_some_and(|own| own.is(resource))
            }
        }
    }

    /// What a search on this type must be confined to; `None` for open access. A type in no
    /// patient compartment is confined by the grants' filter only (its `patients` is empty).
    pub fn confinement(&self, resource_type: &str, op: Operation) -> Option<Confinement> {
        let Access::Token { grants, .. } = self else {
            return None;
        };
        let relevant: Vec<&Grant> = grants
            .iter()
            .filter(|g| g.reaches_type(resource_type, op))
            .collect();
        let everyone = relevant.iter().any(|g| g.everyone);
        let mut patients: Vec<String> = relevant
            .iter()
            .filter(|_| in_compartment(resource_type) && !everyone)
            .flat_map(|g| g.patients.iter().cloned())
            .collect();
        patients.sort();
        patients.dedup();
        let (filter, complete) = match relevant.split_first() {
            Some((first, rest)) if rest.iter().all(|g| g.scope.filter == first.scope.filter) => {
                (first.scope.filter.clone(), true)
            }
            Some(_) => (Vec::new(), false),
            None => (Vec::new(), true),
        };
        Some(Confinement {
            patients,
            filter,
            complete,
            everyone,
        })
    }

    /// Whether this patient's compartment is reachable at all.
    pub fn reaches_patient(&self, patient_id: &str) -> bool {
        match self {
            Access::Open => true,
            Access::Token { grants, .. } => grants
                .iter()
                .any(|g| g.everyone || g.patients.iter().any(|p| p == patient_id)),
        }
    }
}

/// The 401 for a bearer token the server does not know.
pub fn unknown_token() -> FhirError {
    FhirError::unauthorized(
        Some("invalid_token"),
        "the access token is unknown, revoked or expired; get a new one from the token endpoint",
    )
}

/// The 401 for a bearer token past its lifetime.
pub fn expired_token() -> FhirError {
    FhirError::unauthorized(
        Some("invalid_token"),
        "the access token has expired; use the refresh token to get a new one",
    )
}

/// The bearer token's access, or the 401 to answer with.
pub async fn from_bearer(state: &AppState, headers: &HeaderMap) -> Result<Access, FhirError> {
    let token = bearer_token(headers)?;
    let unknown = unknown_token;
    let stored: Token = state
        .store
        .token_by_access(&crate::server::oauth::sha256(token))
        .await
        .map_err(store_trouble)?
        .ok_or_else(unknown)?;
    let now = clock::now();
    if stored.access_expires <= now {
        return Err(expired_token());
    }
    let approval: Approval = state
        .store
        .approval(&stored.approval_id)
        .await
        .map_err(store_trouble)?
        .ok_or_else(unknown)?;
    crate::server::request_log::note_client(&approval.client_id);
    if approval.expires <= now {
        return Err(FhirError::unauthorized(
            Some("invalid_token"),
            "the participant's approval has expired; ask them to authorize again",
        ));
    }
    // The token is this client's for sure now: one of its simulated faults may answer.
    let simulated = simulate::take(state, &approval.client_id, simulate::Request::Fhir)
        .await
        .map_err(store_trouble)?;
    if let Some(answer) = simulated.and_then(|taken| simulate::fhir_answer(taken.fault)) {
        return Err(answer);
    }
    // Parsed once per distinct scope string, not per request; the grants share its parts.
    let scopes = state.scope_cache.stored(&stored.scope);
    let user = state.users.get(&approval.username);
    let user_patients: Arc<[String]> = user
        .map(|u| u.patients.iter().map(|p| p.id.clone()).collect())
        .unwrap_or_default();
    let own_record = user
        .filter(|_| scopes.grants_identity())
        .and_then(|u| u.fhir_user(&approval.patient_id))
        .and_then(|reference| OwnRecord::from_reference(&reference));
    let token_patient: Arc<[String]> = Arc::new([approval.patient_id.clone()]);
    let grants = scopes
        .resource_scopes()
        .map(|scope| Grant {
            scope: scope.clone(),
            patients: match scope.context {
                Context::Patient => token_patient.clone(),
                Context::User => user_patients.clone(),
                Context::System => Arc::new([]),
            },
            everyone: scope.context == Context::System,
        })
        .collect();
    Ok(Access::Token { grants, own_record })
}

/// A store failure, as a 503 the client can retry.
fn store_trouble(e: crate::server::store::StoreError) -> FhirError {
    FhirError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "transient",
        e.to_string(),
    )
}

fn bearer_token(headers: &HeaderMap) -> Result<&str, FhirError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(FhirError::unauthorized(
            None,
            "this FHIR API needs an access token: send the header Authorization: Bearer <access_token> (or use /api/open-fhir for the open copy)",
        ));
    };
    let text = value.to_str().unwrap_or_default();
    match text.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(FhirError::unauthorized(
            Some("invalid_request"),
            "the Authorization header must be 'Bearer <access_token>'",
        )),
    }
}
