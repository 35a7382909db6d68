//! GET|POST /oauth/authorize: check the request, then hand the participant to the pages.
//!
//! Errors before the client and redirect URI are trusted get an HTML page, never a redirect
//! (RFC 6749 §4.1.2.1); later errors go back to the client with the exact `state`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::server::clock;
use crate::server::launch::spend::spend;
use crate::server::pages::{error_page, see_other, sign_in_again, sign_in_as, sign_in_first};
use crate::server::scopes::{Context, Scopes};
use crate::server::simulate;
use crate::server::state::AppState;
use crate::server::store::Client;

use super::form::Form;
use super::limits::{authorize_limit, too_long, AUTHORIZE_PARAMS};
use super::pending::PendingAuthorization;
use super::prompt::SignInRule;
use super::token::is_pkce_value;

/// GET /oauth/authorize?….
pub async fn authorize_get(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    authorize(&state, &headers, query.unwrap_or_default().as_bytes()).await
}

/// POST /oauth/authorize with a form body.
pub async fn authorize_post(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match body {
        Ok(bytes) => authorize(&state, &headers, &bytes).await,
        Err(e) => untrusted(&format!("The request body could not be read: {e}")),
    }
}

fn untrusted(message: &str) -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        "This sign-in link is not valid",
        message,
        "The app that sent you here built a wrong link. Tell its developers; there is nothing to fix on your side.",
    )
}

/// Send the participant back to the client with these parameters.
pub fn redirect_to_client(
    redirect_uri: &str,
    params: &[(&str, &str)],
    status: StatusCode,
) -> Response {
    let location = match url::Url::parse(redirect_uri) {
        Ok(mut url) => {
            {
                let mut query = url.query_pairs_mut();
                for (k, v) in params {
                    query.append_pair(k, v);
                }
            }
            url.to_string()
        }
        Err(_) => return untrusted("The app's redirect address is not a valid URI."),
    };
    let mut response = (status, [(header::CACHE_CONTROL, "no-store")]).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// An error for the client, carried on the redirect with the exact state.
fn client_error(
    redirect_uri: &str,
    state: Option<&str>,
    code: &str,
    description: &str,
) -> Response {
    let mut params = vec![("error", code), ("error_description", description)];
    if let Some(state) = state {
        params.push(("state", state));
    }
    redirect_to_client(redirect_uri, &params, StatusCode::FOUND)
}

async fn authorize(state: &AppState, headers: &HeaderMap, raw: &[u8]) -> Response {
    let form = match Form::from_pairs(form_urlencoded::parse(raw).into_owned()) {
        Ok(form) => form,
        Err(e) => return untrusted(&e.description),
    };
    // Before the app is known, an over-long client_id or redirect_uri can only be shown.
    for name in ["client_id", "redirect_uri"] {
        if let Some(message) = oversized(&form, name) {
            return untrusted(&format!("The link's {message}."));
        }
    }
    let Some(client_id) = form.get("client_id") else {
        return untrusted("The link has no client_id.");
    };
    let client = match state.store.client(client_id).await {
        Ok(Some(client)) => {
            crate::server::request_log::note_client(&client.client_id);
            client
        }
        Ok(None) => {
            return untrusted(&format!(
                "No app with client_id {client_id} is registered here."
            ))
        }
        Err(e) => return unavailable(&e),
    };
    let (redirect_uri, given) = match trusted_redirect(&client, form.get("redirect_uri")) {
        Ok(found) => found,
        Err(message) => return untrusted(&message),
    };
    // A state too long to keep is not echoed either: the error goes back without one.
    if let Some(message) = oversized(&form, "state") {
        return client_error(&redirect_uri, None, "invalid_request", &message);
    }
    let client_state = form.get("state");
    // The client and redirect URI are trusted now: one of its simulated faults may answer.
    match simulate::take(state, &client.client_id, simulate::Request::Authorize).await {
        Ok(Some(taken)) => {
            if let Some(answer) = simulated(taken.fault, &client, &redirect_uri, client_state) {
                return answer;
            }
        }
        Ok(None) => {}
        Err(e) => return unavailable(&e),
    }
    match check(state, &client, &form) {
        Err((code, description)) => client_error(&redirect_uri, client_state, code, &description),
        Ok(scope) => {
            let Some(client_state) = client_state else {
                return client_error(&redirect_uri, None, "invalid_request", "state is required (SMART App Launch): send an unguessable value and check it on return");
            };
            let now = clock::now();
            let sign_in = match SignInRule::of(&form, now) {
                Ok(rule) => rule,
                Err(message) => {
                    return client_error(
                        &redirect_uri,
                        Some(client_state),
                        "invalid_request",
                        &message,
                    )
                }
            };
            let session = state.sessions.current(headers).await;
            let fresh_enough = session
                .as_ref()
                .is_some_and(|s| s.username.is_some() && sign_in.accepts(s.created, now));
            // An EHR launch is spent here, by the one request that names it, and binds the
            // request to the launch's user and patient.
            let launch = match form.get("launch") {
                None => None,
                // prompt=none is answered below without spending the launch.
                Some(_) if sign_in.no_pages => None,
                Some(id) => match spend(state, id, &client.client_id).await {
                    Ok(Ok(launch)) => {
                        if let Some(answer) =
                            launch_fault(state, &launch, &client, &redirect_uri, Some(client_state))
                                .await
                        {
                            return answer;
                        }
                        Some(launch)
                    }
                    Ok(Err(refusal)) => {
                        return client_error(
                            &redirect_uri,
                            Some(client_state),
                            "invalid_request",
                            &refusal.to_string(),
                        )
                    }
                    Err(e) => return unavailable(&e),
                },
            };
            if sign_in.no_pages {
                // Every grant here needs the participant's consent on a page.
                let (code, description) = if fresh_enough {
                    ("consent_required", "prompt=none, but the participant must approve this app on the consent page; send the request without prompt=none")
                } else {
                    ("login_required", "prompt=none, but the participant is not signed in (or not recently enough for max_age); send the request without prompt=none")
                };
                return client_error(&redirect_uri, Some(client_state), code, description);
            }
            let request = PendingAuthorization {
                id: uuid::Uuid::new_v4().simple().to_string(),
                client_id: client.client_id.clone(),
                redirect_uri,
                redirect_uri_given: given,
                scope,
                state: client_state.to_string(),
                code_challenge: form.get("code_challenge").map(str::to_string),
                nonce: form.get("nonce").map(str::to_string),
                sign_in,
                username: launch.as_ref().map(|l| l.username.clone()),
                patient_id: launch.as_ref().map(|l| l.patient_id.clone()),
                context: launch.as_ref().map(|l| l.context.clone()),
                created: now,
            };
            let consent = format!("/oauth/consent?request={}", request.id);
            if let Err(e) = state.pending.insert(request).await {
                return unavailable(&e);
            }
            let signed_in_as = session.as_ref().and_then(|s| s.username.clone());
            // The consent page would send a browser that is not signed in (or not recently
            // enough, or as someone other than the launch's user) on to sign in: send it
            // there directly, one round trip fewer.
            match launch {
                Some(launch) if signed_in_as.as_deref() != Some(launch.username.as_str()) => {
                    see_other(&sign_in_as(&consent, &launch.username), None)
                }
                _ if fresh_enough => see_other(&consent, None),
                _ if signed_in_as.is_some() => see_other(&sign_in_again(&consent), None),
                _ => see_other(&sign_in_first(&consent), None),
            }
        }
    }
}

fn unavailable(e: &crate::server::store::StoreError) -> Response {
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again shortly",
        &e.to_string(),
        "",
    )
}

/// How a simulated fault answers this authorize request; `None` lets it go on (`slow`,
/// which has waited already).
fn simulated(
    fault: simulate::Fault,
    client: &Client,
    redirect_uri: &str,
    client_state: Option<&str>,
) -> Option<Response> {
    Some(
        match simulate::authorize_answer(fault, &client.client_id, redirect_uri)? {
            simulate::AuthorizeAnswer::Page(message) => untrusted(&message),
            simulate::AuthorizeAnswer::Redirect(code, description) => {
                client_error(redirect_uri, client_state, code, description)
            }
        },
    )
}

/// A launch that carries a fault queues it for the client that spent the launch; an
/// authorize fault answers this very request.
async fn launch_fault(
    state: &AppState,
    launch: &crate::server::store::Launch,
    client: &Client,
    redirect_uri: &str,
    client_state: Option<&str>,
) -> Option<Response> {
    let fault = launch.fault.as_deref().and_then(simulate::Fault::parse)?;
    // A launch made for any app may reach one the fault can never answer: it is dropped.
    if let Err(why) = simulate::can_apply(fault, client) {
        tracing::info!(client_id = %client.client_id, "the launch's simulated fault is dropped: {why}");
        return None;
    }
    if let Err(e) = simulate::queue_once(state, fault, &client.client_id).await {
        return Some(unavailable(&e));
    }
    match simulate::take(state, &client.client_id, simulate::Request::Authorize).await {
        Ok(Some(taken)) => simulated(taken.fault, client, redirect_uri, client_state),
        Ok(None) => None,
        Err(e) => Some(unavailable(&e)),
    }
}

/// "name is N bytes long; at most L…" when an authorize parameter passes its limit.
fn oversized(form: &Form, name: &str) -> Option<String> {
    let value = form.get(name)?;
    let limit = authorize_limit(name)?;
    (value.len() > limit).then(|| too_long(name, value.len(), limit))
}

/// The redirect URI to answer on: the given one if registered exactly, or the only one.
fn trusted_redirect(client: &Client, given: Option<&str>) -> Result<(String, bool), String> {
    match given {
        Some(uri) if client.redirect_uris.iter().any(|r| r == uri) => Ok((uri.to_string(), true)),
        Some(uri) => Err(format!(
            "The redirect_uri {uri} is not one this app registered; it must match a registered URI exactly."
        )),
        None if client.redirect_uris.len() == 1 => Ok((client.redirect_uris[0].clone(), false)),
        None => Err("The link has no redirect_uri, and this app registered several.".to_string()),
    }
}

/// Every rule a trusted client's request must meet; the scope to ask consent for.
fn check(state: &AppState, client: &Client, form: &Form) -> Result<String, (&'static str, String)> {
    if let Some(message) = AUTHORIZE_PARAMS
        .iter()
        .find_map(|(name, _)| oversized(form, name))
    {
        return Err(("invalid_request", message));
    }
    match form.get("response_type") {
        Some("code") => {}
        Some(other) => {
            return Err((
                "unsupported_response_type",
                format!("response_type {other:?} is not supported; use code"),
            ))
        }
        None => {
            return Err((
                "invalid_request",
                "response_type is missing; use response_type=code".to_string(),
            ))
        }
    }
    if !client.grant_types.iter().any(|g| g == "authorization_code") {
        return Err((
            "unauthorized_client",
            "this client did not register the authorization_code grant".to_string(),
        ));
    }
    let aud = form.get("aud").ok_or((
        "invalid_request",
        format!(
            "aud is missing; set it to the FHIR base URL {}",
            state.fhir_base()
        ),
    ))?;
    if !state.is_own_fhir_base(aud) {
        return Err((
            "invalid_request",
            format!(
                "aud {aud:?} is not this server's FHIR base; use {}",
                state.fhir_base()
            ),
        ));
    }
    let text = form.get("scope").ok_or((
        "invalid_scope",
        "scope is missing; ask for e.g. launch/patient patient/*.read".to_string(),
    ))?;
    let wanted = Scopes::parse_request(text).map_err(|e| ("invalid_scope", e.to_string()))?;
    let registered = state.scope_cache.stored(&client.scope);
    let extra = registered.uncovered(&wanted);
    if !extra.is_empty() {
        return Err((
            "invalid_scope",
            format!(
                "{} not among the app's registered scopes ({})",
                extra.join(" "),
                client.scope
            ),
        ));
    }
    match (wanted.has("launch"), form.get("launch")) {
        (true, None) => {
            return Err((
                "invalid_scope",
                "the launch scope is for EHR launches and needs the launch parameter the EHR sent; for a standalone launch ask for launch/patient instead".to_string(),
            ))
        }
        (false, Some(_)) => {
            return Err((
                "invalid_scope",
                "a launch parameter was sent without the launch scope; add launch to the scope".to_string(),
            ))
        }
        _ => {}
    }
    if wanted
        .resource_scopes()
        .any(|s| s.context == Context::System)
    {
        return Err((
            "invalid_scope",
            "system/ scopes cannot be granted by a person".to_string(),
        ));
    }
    match (
        form.get("code_challenge"),
        form.get("code_challenge_method"),
    ) {
        (Some(challenge), Some("S256")) => {
            if !is_pkce_value(challenge) {
                return Err(("invalid_request", "code_challenge must be the 43-character BASE64URL SHA-256 of the code_verifier".to_string()));
            }
        }
        (_, Some("plain")) => {
            return Err((
                "invalid_request",
                "code_challenge_method plain is not allowed; use S256".to_string(),
            ))
        }
        (None, Some(_)) => {
            return Err((
                "invalid_request",
                "code_challenge_method was sent without code_challenge".to_string(),
            ))
        }
        (_, Some(other)) => {
            return Err((
                "invalid_request",
                format!("code_challenge_method {other:?} is not supported; use S256"),
            ))
        }
        (Some(_), None) => {
            return Err((
                "invalid_request",
                "code_challenge_method is missing; send code_challenge_method=S256".to_string(),
            ))
        }
        (None, None) if client.token_endpoint_auth_method == "none" => {
            return Err((
                "invalid_request",
                "public clients must use PKCE: send code_challenge and code_challenge_method=S256"
                    .to_string(),
            ))
        }
        (None, None) => {}
    }
    Ok(wanted.to_string())
}
