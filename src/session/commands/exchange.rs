//! `exchange` (authorization_code grant) and `refresh` (refresh_token grant).

use super::super::args::Args;
use super::super::context::{http_failure, Ctx};
use super::super::output::CommandError;
use crate::client::{ClientAuth, Reply};

/// Basic auth for a confidential client; a public client sends client_id in the form.
fn client_auth(ctx: &Ctx, form: &mut Vec<(String, String)>) -> Result<ClientAuth, CommandError> {
    let client_id = ctx.var("client_id")?;
    Ok(match ctx.var_opt("client_secret") {
        Some(secret) => ClientAuth::Basic(client_id, secret),
        None => {
            form.push(("client_id".into(), client_id));
            ClientAuth::None
        }
    })
}

fn post_token(ctx: &mut Ctx, mut form: Vec<(String, String)>) -> Result<Reply, CommandError> {
    let auth = client_auth(ctx, &mut form)?;
    let url = ctx.endpoints()?.token;
    let client = ctx.state.client.clone();
    let reply = ctx.request(client.post_form(&url, form, auth))?;
    ctx.show(&reply);
    Ok(reply)
}

fn bind_tokens(ctx: &mut Ctx, reply: &Reply) {
    for name in ["access_token", "refresh_token", "patient"] {
        if let Some(value) = reply.field(name).map(str::to_string) {
            ctx.bind(name, &value);
        }
    }
}

pub(super) fn exchange(ctx: &mut Ctx, args: &Args) -> Result<(), CommandError> {
    let code = match args.positional(0).map(str::to_string).or_else(|| ctx.var_opt("code")) {
        Some(code) => code,
        None => ctx
            .frontend
            .ask("Authorization code (from the redirect URL's ?code=…): ", false)
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                CommandError::new("MissingArgument", "no authorization code: give it as `exchange CODE`, or run `authorize --as USER` or `authorize --listen` first")
            })?,
    };
    let redirect_uri = ctx.var("redirect_uri").map_err(|e| e.hint("`register` binds redirect_uri; or `set redirect_uri URI` to the one the authorize link used"))?;
    let mut form = vec![
        ("grant_type".to_string(), "authorization_code".to_string()),
        ("code".to_string(), code),
        ("redirect_uri".to_string(), redirect_uri),
    ];
    if let Some(verifier) = ctx.var_opt("code_verifier") {
        form.push(("code_verifier".into(), verifier));
    }
    let reply = post_token(ctx, form)?;
    if !reply.ok() {
        return Err(http_failure(&reply, "the code exchange").hint(
            "codes are single use and expire quickly: run `authorize` again for a fresh one",
        ));
    }
    bind_tokens(ctx, &reply);
    Ok(())
}

pub(super) fn refresh(ctx: &mut Ctx, args: &Args) -> Result<(), CommandError> {
    let refresh_token = match args.positional(0) {
        Some(t) => t.to_string(),
        None => ctx.var("refresh_token")?,
    };
    let mut form = vec![
        ("grant_type".to_string(), "refresh_token".to_string()),
        ("refresh_token".to_string(), refresh_token),
    ];
    if let Some(scope) = args.value("scope") {
        form.push(("scope".into(), scope.to_string()));
    }
    let reply = post_token(ctx, form)?;
    if !reply.ok() {
        return Err(http_failure(&reply, "the refresh").hint(
            "refresh tokens rotate: use the newest $refresh_token, and the client that got it",
        ));
    }
    bind_tokens(ctx, &reply);
    Ok(())
}
