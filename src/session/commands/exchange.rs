//! `exchange` (authorization_code grant) and `refresh` (refresh_token grant).

use super::super::args::Args;
use super::super::context::{http_failure, Ctx};
use super::super::jwt::{self, NonceExpected};
use super::super::output::{CommandError, Output};
use super::super::IdTokenGrant;
use super::client_auth::{client_auth, uses_assertion};
use crate::client::Reply;
use serde_json::Value;

fn post_token(ctx: &mut Ctx, mut form: Vec<(String, String)>) -> Result<Reply, CommandError> {
    let url = ctx.endpoints()?.token;
    let auth = client_auth(ctx, &mut form, &url)?;
    let client = ctx.state.client.clone();
    let reply = ctx.request(client.post_form(&url, form, auth))?;
    ctx.show(&reply);
    Ok(reply)
}

/// The error for an assertion the server refused (401), pointing at `assertion`.
fn failure(ctx: &Ctx, reply: &Reply, what: &str) -> Option<CommandError> {
    (reply.status == 401 && uses_assertion(ctx)).then(|| super::backend::refused(reply, what))
}

fn bind_tokens(ctx: &mut Ctx, reply: &Reply) {
    for name in ["access_token", "refresh_token", "patient"] {
        if let Some(value) = reply.field(name).map(str::to_string) {
            ctx.bind(name, &value);
        }
    }
    // A new grant without a refresh token: an older $refresh_token belongs to another grant,
    // and a later `refresh` would quietly renew that one instead.
    if reply.field("access_token").is_some()
        && reply.field("refresh_token").is_none()
        && ctx.state.vars.unset("refresh_token")
    {
        ctx.emit(Output::Note(
            "No refresh_token in this answer: unbound the previous grant's $refresh_token (ask for offline_access or online_access to get one).".into(),
        ));
    }
    bind_context(ctx, reply);
}

/// The launch context variables a token response sets: each name with its text, or `None`
/// when the answer does not carry it (then the variable is unbound).
pub fn context_bindings(answer: Option<&Value>) -> [(&'static str, Option<String>); 3] {
    let field = |name: &str| answer.and_then(|a| a.get(name));
    let text = |name: &str| field(name).and_then(Value::as_str).map(str::to_string);
    let fhir_context = field("fhirContext")
        .filter(|v| v.is_array())
        .map(Value::to_string);
    [
        ("encounter", text("encounter")),
        ("fhir_context", fhir_context),
        ("intent", text("intent")),
    ]
}

/// Bind `$encounter`, `$fhir_context` and `$intent` from the answer, unbinding each one it
/// lacks, so no variable describes an earlier grant's context; a note says what was bound.
fn bind_context(ctx: &mut Ctx, reply: &Reply) {
    let mut bound = Vec::new();
    let mut dropped = Vec::new();
    for (name, value) in context_bindings(reply.json()) {
        match value {
            Some(value) => {
                ctx.bind(name, &value);
                bound.push(format!("${name}"));
            }
            None if ctx.state.vars.unset(name) => dropped.push(format!("${name}")),
            None => {}
        }
    }
    if !bound.is_empty() {
        ctx.emit(Output::Note(format!(
            "Launch context: bound {}.",
            bound.join(", ")
        )));
    }
    if !dropped.is_empty() {
        ctx.emit(Output::Note(format!(
            "No {} in this answer: unbound the previous grant's.",
            dropped.join(", ")
        )));
    }
}

/// Bind `$id_token` when the answer has one; when it has none, forget the previous one, so
/// `id-token` never checks a token from an earlier grant against this one's tokens.
fn bind_id_token(ctx: &mut Ctx, reply: &Reply, nonce: NonceExpected) -> Option<String> {
    match reply.field("id_token").map(str::to_string) {
        Some(token) => {
            ctx.bind("id_token", &token);
            ctx.state.id_token_grant = Some(IdTokenGrant {
                token: token.clone(),
                nonce,
            });
            ctx.emit(Output::Note(
                "Bound $id_token; `id-token` verifies it.".into(),
            ));
            Some(token)
        }
        None => {
            if ctx.state.vars.get("id_token").is_some() {
                ctx.state.vars.unset("id_token");
                ctx.emit(Output::Note(
                    "No id_token in this answer: unbound the previous grant's $id_token.".into(),
                ));
            }
            ctx.state.id_token_grant = None;
            None
        }
    }
}

/// A warning when a code exchange's id_token does not carry the nonce its request sent
/// (`id-token` makes the full check).
pub fn nonce_warning(token: &str, expected: &NonceExpected) -> Option<String> {
    let claims = match jwt::decode_unverified(token) {
        Ok(decoded) => decoded.claims,
        Err(e) => return Some(format!("Warning: the id_token cannot be read: {e}")),
    };
    let got = claims.get("nonce").and_then(serde_json::Value::as_str);
    match (expected, got) {
        (NonceExpected::Sent(sent), Some(got)) if got == sent => None,
        (NonceExpected::Sent(sent), Some(got)) => Some(format!(
            "Warning: the id_token's nonce {got:?} is not the {sent:?} this authorize request sent ($nonce): it answers another request; do not trust it"
        )),
        (NonceExpected::Sent(sent), None) => Some(format!(
            "Warning: the authorize request sent nonce {sent:?} ($nonce) and the id_token carries none: it cannot be tied to this request"
        )),
        (NonceExpected::NoneSent, Some(got)) => Some(format!(
            "Warning: the id_token carries nonce {got:?}, but this session's authorize request sent none"
        )),
        _ => None,
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
        return Err(
            failure(ctx, &reply, "the code exchange").unwrap_or_else(|| {
                http_failure(&reply, "the code exchange").hint(
                "codes are single use and expire quickly: run `authorize` again for a fresh one",
            )
            }),
        );
    }
    bind_tokens(ctx, &reply);
    let expected = match ctx.var_opt("nonce") {
        Some(nonce) => NonceExpected::Sent(nonce),
        None => NonceExpected::NoneSent,
    };
    if let Some(token) = bind_id_token(ctx, &reply, expected.clone()) {
        if let Some(warning) = nonce_warning(&token, &expected) {
            ctx.emit(Output::Text(warning));
        }
    }
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
        return Err(failure(ctx, &reply, "the refresh").unwrap_or_else(|| {
            http_failure(&reply, "the refresh").hint(
                "refresh tokens rotate: use the newest $refresh_token, and the client that got it",
            )
        }));
    }
    bind_tokens(ctx, &reply);
    // The sign-in's nonce, for a refreshed id_token that repeats it (§12.2 allows only that).
    let original = match ctx.state.id_token_grant.as_ref().map(|g| &g.nonce) {
        Some(NonceExpected::Sent(n)) | Some(NonceExpected::Refresh(Some(n))) => Some(n.clone()),
        _ => None,
    };
    bind_id_token(ctx, &reply, NonceExpected::Refresh(original));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn unsigned(claims: serde_json::Value) -> String {
        let b64 = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        format!(
            "{}.{}.c2ln",
            b64(serde_json::json!({"alg": "RS256"})),
            b64(claims)
        )
    }

    #[test]
    fn the_launch_context_binds_what_the_answer_carries() {
        let answer = serde_json::json!({
            "access_token": "a", "patient": "smart-1081332", "encounter": "enc-1",
            "fhirContext": [{"reference": "Encounter/enc-1"}, {"reference": "Observation/o1"}],
            "intent": "reconcile-medications", "need_patient_banner": false,
        });
        let bindings = context_bindings(Some(&answer));
        assert_eq!(bindings[0], ("encounter", Some("enc-1".to_string())));
        let text = bindings[1].1.clone().unwrap();
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed, answer["fhirContext"]);
        assert_eq!(
            bindings[2],
            ("intent", Some("reconcile-medications".into()))
        );

        let standalone = serde_json::json!({"access_token": "a", "patient": "p"});
        assert!(context_bindings(Some(&standalone))
            .iter()
            .all(|(_, v)| v.is_none()));
        assert!(context_bindings(None).iter().all(|(_, v)| v.is_none()));
        // A fhirContext that is not an array, or an encounter that is not a string, is not
        // context this session can use.
        let odd = serde_json::json!({"fhirContext": "Encounter/x", "encounter": 7});
        assert!(context_bindings(Some(&odd))
            .iter()
            .all(|(_, v)| v.is_none()));
    }

    #[test]
    fn a_missing_or_other_nonce_warns() {
        let sent = NonceExpected::Sent("n-1".into());
        let good = unsigned(serde_json::json!({"nonce": "n-1"}));
        assert_eq!(nonce_warning(&good, &sent), None);
        let other = unsigned(serde_json::json!({"nonce": "n-2"}));
        assert!(nonce_warning(&other, &sent)
            .unwrap()
            .contains("another request"));
        let bare = unsigned(serde_json::json!({"sub": "x"}));
        assert!(nonce_warning(&bare, &sent)
            .unwrap()
            .contains("carries none"));
        assert_eq!(nonce_warning(&bare, &NonceExpected::NoneSent), None);
        assert!(nonce_warning(&good, &NonceExpected::NoneSent).is_some());
        assert!(nonce_warning("opaque", &sent)
            .unwrap()
            .contains("cannot be read"));
    }
}
