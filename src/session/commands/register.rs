//! `register`: POST /oauth/register with the seed's defaults (and an app's launch URL), or a
//! client with keys (private_key_jwt), or a backend service (client_credentials).

use serde_json::{json, Value};

use super::super::args::Args;
use super::super::context::{http_failure, Ctx};
use super::super::output::{CommandError, Output};
use super::client_auth::AUTH_METHOD;

/// The seed walkthrough's client name, redirect URI and scope.
pub const DEFAULT_NAME: &str = "SMART Test Client";
/// The redirect URI the reference stack's example app uses.
pub const DEFAULT_REDIRECT: &str = "http://localhost:9001/authorized";
/// The walkthrough's scopes.
pub const DEFAULT_SCOPE: &str = "launch/patient patient/*.read offline_access";
/// A backend service's name.
pub const DEFAULT_BACKEND_NAME: &str = "SMART Backend Service";
/// A backend service's scopes: read every resource type of every patient (SMART v2).
pub const DEFAULT_BACKEND_SCOPE: &str = "system/*.rs";
/// The asymmetric authentication method (RFC 7523 §2.2, SMART App Launch 2.2).
const PRIVATE_KEY_JWT: &str = "private_key_jwt";

/// The `token_endpoint_auth_method` to ask for, if any: `--auth`, implied by `--backend`,
/// `--jwks` or `--jwks-uri`, or `none` for `--public`.
fn auth_method(args: &Args) -> Result<Option<String>, CommandError> {
    let keyed = args.has("backend") || args.has("jwks") || args.has("jwks-uri");
    match (args.value("auth"), args.has("public")) {
        (Some(_), true) => Err(CommandError::new(
            "BadFlag",
            "--public and --auth both choose how the client authenticates",
        )
        .hint("--public is --auth none; give one of them")),
        (Some(method), false) if keyed && method != PRIVATE_KEY_JWT => Err(CommandError::new(
            "BadFlag",
            format!(
                "--auth {method} does not use keys, but --backend, --jwks or --jwks-uri was given"
            ),
        )
        .hint("backend services and clients with keys authenticate with --auth private_key_jwt")),
        (Some(method), false) => Ok(Some(method.to_string())),
        (None, true) => Ok(Some("none".into())),
        (None, false) if keyed => Ok(Some(PRIVATE_KEY_JWT.into())),
        (None, false) => Ok(None),
    }
}

/// The JWK Set to register: `--jwks` (JSON text), else the session's `$jwks`.
fn key_set(ctx: &Ctx, args: &Args) -> Result<Value, CommandError> {
    let text = match args.value("jwks") {
        Some(text) => text.to_string(),
        None => ctx.var_opt("jwks").ok_or_else(|| {
            CommandError::new(
                "NoKey",
                "a private_key_jwt client registers its public keys, and this session has none",
            )
            .hint("run `keys` first (it binds $jwks), or give --jwks JSON or --jwks-uri URL")
        })?,
    };
    serde_json::from_str::<Value>(&text)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| {
            CommandError::new("BadValue", "--jwks is not a JSON object (a JWK Set)")
                .hint("give a JWK Set such as $jwks: {\"keys\": [{\"kty\": \"EC\", …}]}")
        })
}

pub(super) fn register(ctx: &mut Ctx, args: &Args) -> Result<(), CommandError> {
    let endpoints = ctx.endpoints()?;
    let url = endpoints.register.ok_or_else(|| {
        CommandError::new("NoEndpoint", "the target server advertises no registration_endpoint")
            .hint("register the app on the server's own site, then `set client_id …` and `set client_secret …`")
    })?;
    let backend = args.has("backend");
    if backend && (args.has("public") || !args.values("redirect-uri").is_empty()) {
        return Err(CommandError::new(
            "BadFlag",
            "a backend service has no user and no browser, so no redirect URI and no public client",
        )
        .hint("drop --public and --redirect-uri; `register --backend` registers client_credentials with a private_key_jwt key"));
    }
    let redirect_uris: Vec<String> = match args.values("redirect-uri") {
        [] if backend => Vec::new(),
        [] => vec![DEFAULT_REDIRECT.to_string()],
        given => given.to_vec(),
    };
    let auth = auth_method(args)?;
    let scope = match args.value("scope") {
        Some(scope) => scope,
        None if backend => DEFAULT_BACKEND_SCOPE,
        None => DEFAULT_SCOPE,
    };
    let name = match args.value("name") {
        Some(name) => name,
        None if backend => DEFAULT_BACKEND_NAME,
        None => DEFAULT_NAME,
    };
    let mut body = json!({"client_name": name, "scope": scope});
    if !redirect_uris.is_empty() {
        body["redirect_uris"] = json!(redirect_uris);
    }
    if backend {
        body["grant_types"] = json!(["client_credentials"]);
    }
    if let Some(method) = &auth {
        body["token_endpoint_auth_method"] = json!(method);
    }
    if auth.as_deref() == Some(PRIVATE_KEY_JWT) {
        if let Some(uri) = args.value("jwks-uri") {
            body["jwks_uri"] = json!(uri);
        }
        // Both given are sent as given, for the server to refuse (RFC 7591 §2).
        if !args.has("jwks-uri") || args.has("jwks") {
            body["jwks"] = key_set(ctx, args)?;
        }
    }
    if let Some(uri) = args.value("launch-uri") {
        // OpenID Connect Dynamic Client Registration's name for an app's launch URL.
        body["initiate_login_uri"] = json!(uri);
    }
    let client = ctx.state.client.clone();
    let reply = ctx.request(client.post_json(&url, &body))?;
    ctx.show(&reply);
    if !reply.ok() {
        let hint = if auth.as_deref() == Some(PRIVATE_KEY_JWT) {
            "the error_description names the problem: public keys only (no private parts), RSA of 2048 bits or more or EC P-256/P-384, a kid on each of several keys; system/ scopes need --backend"
        } else {
            "check the redirect URIs (absolute, no #fragment) and the scope"
        };
        return Err(http_failure(&reply, "registration").hint(hint));
    }
    let client_id = reply
        .field("client_id")
        .ok_or_else(|| CommandError::new("BadReply", "the registration reply has no client_id"))?
        .to_string();
    ctx.bind("client_id", &client_id);
    match reply.field("client_secret") {
        Some(secret) => {
            let secret = secret.to_string();
            ctx.bind("client_secret", &secret);
        }
        None => {
            ctx.state.vars.unset("client_secret");
        }
    }
    match redirect_uris.first() {
        Some(first) => {
            let first = first.clone();
            ctx.bind("redirect_uri", &first);
        }
        None => {
            ctx.state.vars.unset("redirect_uri");
        }
    }
    if auth.as_deref() == Some(PRIVATE_KEY_JWT) {
        ctx.bind(AUTH_METHOD, PRIVATE_KEY_JWT);
        let next = if backend {
            "`backend` gets a token"
        } else {
            "`exchange` and `refresh` sign one each time"
        };
        ctx.emit(Output::Note(format!(
            "Bound $client_id and ${AUTH_METHOD} = {PRIVATE_KEY_JWT}: this client proves who it is with an assertion signed by the session's key, never a secret; {next}, and `assertion` shows the last one sent."
        )));
    } else {
        ctx.state.vars.unset(AUTH_METHOD);
    }
    if let Some(scope) = reply.field("scope").map(str::to_string) {
        ctx.bind("scope", &scope);
    }
    ctx.state.vars.unset("code_verifier");
    // A new client has its own launch URL, or none: a launch URL is never another client's.
    ctx.state.vars.unset("launch_url");
    let launch_uri = reply
        .field("initiate_login_uri")
        .or(args.value("launch-uri"))
        .map(str::to_string);
    match launch_uri {
        Some(uri) => ctx.bind("launch_uri", &uri),
        None => {
            ctx.state.vars.unset("launch_uri");
        }
    }
    Ok(())
}
