//! How the helpers authenticate as the client at the token endpoint: a client assertion
//! signed with the session's key when the client registered keys (`private_key_jwt`),
//! otherwise HTTP Basic with the secret, otherwise `client_id` alone (a public client).

use super::super::context::Ctx;
use super::super::keys::{AssertionClaims, ASSERTION_LIFETIME, ASSERTION_TYPE};
use super::super::output::CommandError;
use crate::client::ClientAuth;
use crate::server::clock;

/// The variable `register` binds for a client that authenticates with assertions.
pub(super) const AUTH_METHOD: &str = "token_endpoint_auth_method";

/// The variable holding the last assertion sent.
pub(super) const ASSERTION_VAR: &str = "client_assertion";

/// Whether the session's client authenticates with signed assertions.
pub(super) fn uses_assertion(ctx: &Ctx) -> bool {
    ctx.var_opt(AUTH_METHOD).as_deref() == Some("private_key_jwt")
}

/// Sign an assertion for `$client_id` at `aud` valid for `lifetime` seconds, bind it as
/// `$client_assertion`, and return it.
pub(super) fn sign_assertion(
    ctx: &mut Ctx,
    aud: &str,
    lifetime: i64,
) -> Result<String, CommandError> {
    let client_id = ctx.var("client_id")?;
    let key = ctx.state.client_key.as_ref().ok_or_else(|| {
        CommandError::new(
            "NoKey",
            format!("client {client_id} authenticates with a signed assertion (private_key_jwt), and this session has no key pair to sign it with"),
        )
        .hint("run `keys` and register a client with its $jwks (`register --backend` or `register --auth private_key_jwt`); or `unset token_endpoint_auth_method` to use a secret")
    })?;
    let claims = AssertionClaims::new(&client_id, aud, clock::now(), lifetime);
    let token = key
        .sign(&claims.to_json())
        .map_err(|e| CommandError::new("SignError", e.to_string()))?;
    ctx.bind(ASSERTION_VAR, &token);
    Ok(token)
}

/// The form fields that carry an assertion (RFC 7523 §2.2), with `client_id` beside it.
pub(super) fn assertion_fields(client_id: String, assertion: String) -> Vec<(String, String)> {
    vec![
        ("client_id".into(), client_id),
        ("client_assertion_type".into(), ASSERTION_TYPE.into()),
        ("client_assertion".into(), assertion),
    ]
}

/// Authenticate a token request at `token_url`: an assertion's fields (or `client_id`) go
/// into `form`; Basic credentials come back for a client with a secret.
pub(super) fn client_auth(
    ctx: &mut Ctx,
    form: &mut Vec<(String, String)>,
    token_url: &str,
) -> Result<ClientAuth, CommandError> {
    let client_id = ctx.var("client_id")?;
    if uses_assertion(ctx) {
        let assertion = sign_assertion(ctx, token_url, ASSERTION_LIFETIME)?;
        form.extend(assertion_fields(client_id, assertion));
        return Ok(ClientAuth::None);
    }
    Ok(match ctx.var_opt("client_secret") {
        Some(secret) => ClientAuth::Basic(client_id, secret),
        None => {
            form.push(("client_id".into(), client_id));
            ClientAuth::None
        }
    })
}
