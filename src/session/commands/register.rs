//! `register`: POST /oauth/register with the seed's defaults (and an app's launch URL).

use serde_json::json;

use super::super::args::Args;
use super::super::context::{http_failure, Ctx};
use super::super::output::CommandError;

/// The seed walkthrough's client name, redirect URI and scope.
pub const DEFAULT_NAME: &str = "SMART Test Client";
/// The redirect URI the reference stack's example app uses.
pub const DEFAULT_REDIRECT: &str = "http://localhost:9001/authorized";
/// The walkthrough's scopes.
pub const DEFAULT_SCOPE: &str = "launch/patient patient/*.read offline_access";

pub(super) fn register(ctx: &mut Ctx, args: &Args) -> Result<(), CommandError> {
    let endpoints = ctx.endpoints()?;
    let url = endpoints.register.ok_or_else(|| {
        CommandError::new("NoEndpoint", "the target server advertises no registration_endpoint")
            .hint("register the app on the server's own site, then `set client_id …` and `set client_secret …`")
    })?;
    let redirect_uris: Vec<String> = match args.values("redirect-uri") {
        [] => vec![DEFAULT_REDIRECT.to_string()],
        given => given.to_vec(),
    };
    let mut body = json!({
        "client_name": args.value("name").unwrap_or(DEFAULT_NAME),
        "redirect_uris": redirect_uris,
        "scope": args.value("scope").unwrap_or(DEFAULT_SCOPE),
    });
    if args.has("public") {
        body["token_endpoint_auth_method"] = json!("none");
    }
    if let Some(uri) = args.value("launch-uri") {
        // OpenID Connect Dynamic Client Registration's name for an app's launch URL.
        body["initiate_login_uri"] = json!(uri);
    }
    let client = ctx.state.client.clone();
    let reply = ctx.request(client.post_json(&url, &body))?;
    ctx.show(&reply);
    if !reply.ok() {
        return Err(http_failure(&reply, "registration")
            .hint("check the redirect URIs (absolute, no #fragment) and the scope"));
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
    let first = redirect_uris.first().cloned().unwrap_or_default();
    ctx.bind("redirect_uri", &first);
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
