//! `backend [--scope S]`: a SMART Backend Services token (client_credentials with a signed
//! assertion), and `assertion`: the last assertion sent, decoded.

use serde_json::{json, Value};

use super::super::args::Args;
use super::super::context::{http_failure, Ctx};
use super::super::jwt;
use super::super::keys::ASSERTION_LIFETIME;
use super::super::output::{CommandError, Output};
use super::client_auth::{assertion_fields, sign_assertion, uses_assertion, ASSERTION_VAR};
use super::id_token::claims_table;
use super::register::DEFAULT_BACKEND_SCOPE;
use crate::client::{ClientAuth, Reply};
use crate::server::clock;

pub(super) fn backend(ctx: &mut Ctx, args: &Args) -> Result<(), CommandError> {
    let endpoints = ctx.endpoints()?;
    let client_id = ctx
        .var("client_id")
        .map_err(|e| e.hint("run `keys` then `register --backend` first (it binds $client_id)"))?;
    if !uses_assertion(ctx) {
        return Err(CommandError::new(
            "NotABackendClient",
            format!("client {client_id} was not registered with keys: a backend service authenticates with a signed assertion (private_key_jwt), not a secret"),
        )
        .hint("run `keys`, then `register --backend`; or `set token_endpoint_auth_method private_key_jwt` for a client registered with this session's $jwks elsewhere"));
    }
    let scope = args
        .value("scope")
        .map(str::to_string)
        .or_else(|| ctx.var_opt("scope").filter(|s| s.contains("system/")))
        .unwrap_or_else(|| DEFAULT_BACKEND_SCOPE.to_string());
    let assertion = if args.has("replay") {
        if args.has("aud") || args.has("expires") {
            return Err(CommandError::new(
                "BadFlag",
                "--replay sends the last assertion unchanged, so --aud and --expires cannot apply",
            )
            .hint("give --replay alone, or --aud/--expires alone for a fresh assertion"));
        }
        ctx.var(ASSERTION_VAR).map_err(|e| {
            e.hint("--replay sends $client_assertion again; run `backend` once first")
        })?
    } else {
        let lifetime = match args.value("expires") {
            Some(text) => text.trim().parse::<i64>().map_err(|_| {
                CommandError::new("BadValue", format!("--expires {text:?} is not a number of seconds"))
                    .hint("seconds from now until exp: 300 (the default), 600 (too far ahead), -120 (already expired)")
            })?,
            None => ASSERTION_LIFETIME,
        };
        let aud = args
            .value("aud")
            .map(str::to_string)
            .unwrap_or_else(|| endpoints.token.clone());
        sign_assertion(ctx, &aud, lifetime)?
    };
    let mut form = vec![
        ("grant_type".to_string(), "client_credentials".to_string()),
        ("scope".to_string(), scope),
    ];
    form.extend(assertion_fields(client_id, assertion));
    let client = ctx.state.client.clone();
    let reply = ctx.request(client.post_form(&endpoints.token, form, ClientAuth::None))?;
    ctx.show(&reply);
    if !reply.ok() {
        return Err(refused(&reply, "the client_credentials request"));
    }
    let token = reply
        .field("access_token")
        .ok_or_else(|| CommandError::new("BadReply", "the token reply has no access_token"))?
        .to_string();
    ctx.bind("access_token", &token);
    // A system token is for no patient and cannot be refreshed: stale ones would mislead.
    ctx.state.vars.unset("refresh_token");
    ctx.state.vars.unset("patient");
    ctx.emit(Output::Note(
        "Bound $access_token: a system token with no user, no patient and no refresh token (get a new one with `backend` when it expires); `fetch` reads across patients with it.".into(),
    ));
    Ok(())
}

/// The error for a refused token request, pointing at `assertion` when the assertion was.
pub(super) fn refused(reply: &Reply, what: &str) -> CommandError {
    let code = reply
        .json()
        .and_then(|j| j.get("error"))
        .and_then(Value::as_str);
    let hint = match code {
        Some("invalid_client") => "the server refused the assertion; its error_description names the check, and `assertion` shows what was signed",
        Some("invalid_scope") => "ask for system/ scopes within the client's registered scope ($scope), e.g. --scope \"system/Observation.rs\"",
        Some("unauthorized_client") => "the client was not registered for client_credentials: `register --backend`",
        _ => "the error_description says why",
    };
    http_failure(reply, what).hint(hint)
}

pub(super) fn assertion(ctx: &mut Ctx, args: &Args) -> Result<(), CommandError> {
    let token = match args.positional(0) {
        Some(t) => t.trim().to_string(),
        None => ctx.var(ASSERTION_VAR).map_err(|e| {
            e.hint("`backend`, `exchange` and `refresh` bind it when the client authenticates with a key (`register --backend` or `register --auth private_key_jwt`)")
        })?,
    };
    let decoded = jwt::decode_unverified(&token).map_err(|e| {
        CommandError::new("NotAJwt", format!("this is not a client assertion: {e}"))
    })?;
    let now = clock::now();
    ctx.emit(Output::Table(claims_table(&decoded, now, gloss)));
    let kid = decoded.header.get("kid").and_then(Value::as_str);
    let signer = match (&ctx.state.client_key, kid) {
        (Some(key), Some(kid)) if key.kid() == kid => {
            format!("Signed with this session's {} key {kid} (`keys show` shows its public half; the server verifies with the JWK it registered).", key.alg().name())
        }
        (_, Some(kid)) => format!("Signed with key {kid}, which is not this session's key."),
        (_, None) => "The header names no kid: the server must find the key another way (a client with one registered key).".into(),
    };
    ctx.emit(Output::Text(signer));
    ctx.state.vars.set(
        "response",
        json!({"header": decoded.header, "claims": decoded.claims}),
    );
    Ok(())
}

/// What an assertion's header parameter or claim is for.
fn gloss(name: &str) -> &'static str {
    match name {
        "alg" => "signature algorithm (the key's)",
        "kid" => "which of the client's registered keys signed it",
        "typ" => "token type",
        "jku" => "where the client's keys are (must be the registered jwks_uri)",
        "iss" => "issuer: the client itself",
        "sub" => "subject: the client itself",
        "aud" => "the token endpoint it is meant for",
        "jti" => "a single-use id: the server refuses it a second time",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Body;

    #[test]
    fn refusals_point_at_what_to_fix() {
        let reply = |error: &str| Reply {
            status: 401,
            body: Body::Json(json!({"error": error, "error_description": "jti was used before"})),
            location: None,
            simulated: None,
            headers: Vec::new(),
        };
        let e = refused(&reply("invalid_client"), "the request");
        assert!(e.message.contains("invalid_client: jti was used before"));
        assert!(e.hint.unwrap().contains("`assertion`"));
        assert!(refused(&reply("invalid_scope"), "x")
            .hint
            .unwrap()
            .contains("system/"));
    }

    #[test]
    fn assertion_claims_are_glossed() {
        for name in ["iss", "sub", "aud", "jti", "kid"] {
            assert!(!gloss(name).is_empty(), "{name}");
        }
        assert_eq!(gloss("x-other"), "");
    }
}
