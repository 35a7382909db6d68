//! Client authentication by a signed assertion (RFC 7523 §2.2, SMART App Launch 2.2
//! "Asymmetric client authentication"): every rule checked, and each refusal names the
//! rule and what was expected.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::server::clock;
use crate::server::state::AppState;
use crate::server::store::Client;

use super::client_keys::{self, KeySource, ALGORITHMS};
use super::form::Form;
use super::store_failed;
use crate::server::error::OAuthError;

/// The one `client_assertion_type` there is.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Seconds of clock difference allowed on `exp` and `nbf`.
pub const LEEWAY: i64 = 60;
/// The furthest ahead an assertion's `exp` may be (SMART: five minutes).
pub const MAX_AHEAD: i64 = 300;
/// The longest `jti` kept.
pub const MAX_JTI: usize = 256;

fn refused(description: impl Into<String>) -> OAuthError {
    OAuthError {
        status: axum::http::StatusCode::UNAUTHORIZED,
        code: "invalid_client",
        description: description.into(),
        www_authenticate: None,
    }
}

/// Whether the request authenticates with an assertion.
pub fn is_present(form: &Form) -> bool {
    form.get("client_assertion").is_some() || form.get("client_assertion_type").is_some()
}

/// The client an assertion proves, at an endpoint whose own URL is `endpoint` (the token
/// endpoint's URL is accepted as `aud` everywhere).
pub async fn authenticate(
    state: &AppState,
    form: &Form,
    endpoint: &str,
) -> Result<Client, OAuthError> {
    match form.get("client_assertion_type") {
        Some(JWT_BEARER) => {}
        Some(other) => {
            return Err(refused(format!(
                "client_assertion_type {other:?} is not supported; use {JWT_BEARER}"
            )))
        }
        None => {
            return Err(refused(format!(
                "client_assertion_type is missing; send {JWT_BEARER} with the client_assertion"
            )))
        }
    }
    if form.get("client_secret").is_some() {
        return Err(OAuthError::invalid_request(
            "the client authenticated twice (client_secret and client_assertion); use one",
        ));
    }
    let assertion = form
        .get("client_assertion")
        .ok_or_else(|| refused("client_assertion is missing: send the signed JWT"))?;
    let (header, claims) = peek(assertion)?;
    let alg = header["alg"].as_str().unwrap_or_default();
    if !ALGORITHMS.contains(&alg) {
        return Err(refused(format!(
            "alg {alg:?} is not accepted for client assertions; sign with {}",
            ALGORITHMS.join(", ")
        )));
    }
    if header
        .get("typ")
        .and_then(Value::as_str)
        .is_some_and(|t| !t.eq_ignore_ascii_case("JWT"))
    {
        return Err(refused("typ must be JWT when present"));
    }
    if header.get("crit").is_some() {
        return Err(refused(
            "the header has crit, naming extensions this server does not understand (RFC 7515 §4.1.11); leave crit out",
        ));
    }
    for (claim, is_number) in [("exp", true), ("nbf", true), ("iat", true), ("jti", false)] {
        match claims.get(claim) {
            None => {}
            Some(v) if is_number && v.is_number() => {}
            Some(v) if !is_number && v.is_string() => {}
            Some(v) => {
                return Err(refused(format!(
                    "{claim} must be {}, not {v}",
                    if is_number {
                        "a number of seconds since 1970"
                    } else {
                        "a string"
                    }
                )))
            }
        }
    }
    let iss = claims["iss"]
        .as_str()
        .ok_or_else(|| refused("iss is missing; it must be the client_id"))?;
    if claims["sub"].as_str() != Some(iss) {
        return Err(refused(format!(
            "sub must equal iss (the client_id {iss}); this assertion's sub is {}",
            claims["sub"]
        )));
    }
    if let Some(id) = form.get("client_id").filter(|id| *id != iss) {
        return Err(refused(format!(
            "client_id {id} differs from the assertion's iss {iss}"
        )));
    }
    let client = state
        .store
        .client(iss)
        .await
        .map_err(store_failed)?
        .ok_or_else(|| refused(format!("iss {iss:?} is no registered client_id")))?;
    if client.token_endpoint_auth_method != "private_key_jwt" {
        return Err(refused(format!(
            "client {iss} registered token_endpoint_auth_method {}, not private_key_jwt; authenticate as it registered",
            client.token_endpoint_auth_method
        )));
    }
    let kid = header.get("kid").and_then(Value::as_str);
    let jwk = key_for(state, &client, &header, kid).await?;
    if let Some(intended) = jwk.common.key_algorithm {
        let intended = format!("{intended:?}");
        if intended != alg {
            return Err(refused(format!(
                "alg {alg} is not the alg {intended} registered for key {} (RFC 7517 §4.4)",
                jwk.common.key_id.as_deref().unwrap_or("(no kid)")
            )));
        }
    }
    verify(
        assertion,
        &jwk,
        alg,
        &client.client_id,
        &audiences(state, endpoint),
        &claims,
    )?;
    let jti = claims["jti"]
        .as_str()
        .filter(|j| !j.is_empty())
        .ok_or_else(|| refused("jti is missing; give every assertion a new unique jti"))?;
    if jti.len() > MAX_JTI {
        return Err(refused(format!(
            "jti is {} bytes; at most {MAX_JTI}",
            jti.len()
        )));
    }
    let exp = claims["exp"].as_i64().unwrap_or_default();
    let first = state
        .store
        .use_jti(
            &client.client_id,
            jti,
            exp.saturating_add(LEEWAY),
            clock::now(),
        )
        .await
        .map_err(store_failed)?;
    if !first {
        return Err(refused(format!(
            "jti {jti:?} was used before by this client (replayed assertion); sign a new assertion with a fresh jti"
        )));
    }
    Ok(client)
}

/// The URLs an assertion's `aud` may name here.
fn audiences(state: &AppState, endpoint: &str) -> Vec<String> {
    let token = state.url("/oauth/token");
    let mut all = vec![token.clone()];
    if endpoint != token {
        all.push(endpoint.to_string());
    }
    all
}

/// Header and claims, read before anything is trusted (to find the client and its key).
fn peek(assertion: &str) -> Result<(Value, Value), OAuthError> {
    let parts: Vec<&str> = assertion.split('.').collect();
    let [header, claims, _signature] = parts.as_slice() else {
        return Err(refused(
            "client_assertion is not a compact JWS (three base64url parts joined by dots)",
        ));
    };
    let part = |text: &str, what: &str| -> Result<Value, OAuthError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| refused(format!("the assertion's {what} is not base64url")))?;
        serde_json::from_slice::<Value>(&bytes)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| refused(format!("the assertion's {what} is not a JSON object")))
    };
    Ok((part(header, "header")?, part(claims, "claims")?))
}

/// The registered key the assertion names, from the inline set or the `jwks_uri`.
async fn key_for(
    state: &AppState,
    client: &Client,
    header: &Value,
    kid: Option<&str>,
) -> Result<Jwk, OAuthError> {
    let source = client_keys::of_client(&client.extra)
        .ok_or_else(|| refused("this client registered no keys"))?;
    if let Some(jku) = header.get("jku").and_then(Value::as_str) {
        match &source {
            KeySource::Uri(uri) if uri == jku => {}
            KeySource::Uri(uri) => {
                return Err(refused(format!(
                    "jku {jku} is not the registered jwks_uri {uri}"
                )))
            }
            KeySource::Inline(_) => return Err(refused(
                "jku was sent, but this client registered its keys inline (jwks), not a jwks_uri",
            )),
        }
    }
    let set = match &source {
        KeySource::Inline(set) => set.clone(),
        KeySource::Uri(uri) => state.jwks_cache.get(uri, kid).await.map_err(refused)?,
    };
    match kid {
        Some(kid) => set.find(kid).cloned().ok_or_else(|| {
            let known: Vec<&str> = set
                .keys
                .iter()
                .filter_map(|k| k.common.key_id.as_deref())
                .collect();
            let fetched = match &source {
                KeySource::Uri(uri) => format!(
                    "; the set at {uri} was just read (it is read again for an unknown kid at most every {} s: if the key was published a moment ago, retry shortly)",
                    super::jwks_cache::REFETCH_AFTER.as_secs()
                ),
                KeySource::Inline(_) => String::new(),
            };
            refused(format!(
                "kid {kid:?} names none of the client's registered keys ({}){fetched}",
                if known.is_empty() { "none has a kid".to_string() } else { known.join(", ") }
            ))
        }),
        None => match set.keys.as_slice() {
            [only] => Ok(only.clone()),
            _ => Err(refused(
                "the assertion has no kid and the client registered several keys; name one with kid",
            )),
        },
    }
}

/// Signature, `iss`, `aud`, `exp` (with its five-minute ceiling) and `nbf`.
fn verify(
    assertion: &str,
    jwk: &Jwk,
    alg: &str,
    client_id: &str,
    audiences: &[String],
    claims: &Value,
) -> Result<(), OAuthError> {
    let algorithm: Algorithm = alg
        .parse()
        .map_err(|_| refused(format!("alg {alg:?} is not accepted")))?;
    let key = DecodingKey::from_jwk(jwk)
        .map_err(|e| refused(format!("the registered key cannot verify: {e}")))?;
    let mut rules = Validation::new(algorithm);
    rules.leeway = LEEWAY as u64;
    rules.validate_nbf = true;
    rules.set_required_spec_claims(&["exp", "iss", "aud"]);
    rules.set_issuer(&[client_id]);
    rules.set_audience(audiences);
    match jsonwebtoken::decode::<Value>(assertion, &key, &rules) {
        Ok(_) => {}
        Err(e) => {
            return Err(refused(match e.kind() {
                ErrorKind::InvalidSignature => format!(
                    "the signature does not verify with the registered key {}; sign with the private key whose public half was registered",
                    jwk.common.key_id.as_deref().unwrap_or("(no kid)")
                ),
                ErrorKind::InvalidAlgorithm => format!(
                    "alg {alg} does not fit the registered key {}",
                    jwk.common.key_id.as_deref().unwrap_or("(no kid)")
                ),
                ErrorKind::ExpiredSignature => format!(
                    "exp {} is in the past (now {}, {LEEWAY} s leeway); sign a new assertion",
                    claims["exp"],
                    clock::now()
                ),
                ErrorKind::ImmatureSignature => format!(
                    "nbf {} is in the future (now {})",
                    claims["nbf"],
                    clock::now()
                ),
                ErrorKind::InvalidAudience => format!(
                    "aud must be {}; this assertion says {}",
                    audiences[0], claims["aud"]
                ),
                ErrorKind::InvalidIssuer => {
                    format!("iss must be the client_id {client_id}; this assertion says {}", claims["iss"])
                }
                ErrorKind::MissingRequiredClaim(claim) => {
                    format!("{claim} is missing; a client assertion needs iss, sub, aud, exp and jti")
                }
                _ => format!("the assertion does not verify: {e}"),
            }))
        }
    }
    let exp = claims["exp"]
        .as_i64()
        .ok_or_else(|| refused("exp must be a whole number of seconds"))?;
    let ahead = exp - clock::now();
    // Five seconds for clocks that round differently; beyond that, five minutes is the rule.
    if ahead > MAX_AHEAD + 5 {
        return Err(refused(format!(
            "exp is {ahead} s from now; an assertion may live at most {MAX_AHEAD} s (SMART App Launch, Backend Services)"
        )));
    }
    Ok(())
}
