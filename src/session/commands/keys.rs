//! `keys [--alg ES384|RS384]` and `keys show`: the session's key pair for clients that
//! authenticate with signed assertions (private_key_jwt). Only the public half is shown.

use super::super::args::Args;
use super::super::context::Ctx;
use super::super::keys::{ClientKey, KeyAlg, ALGS};
use super::super::output::{CommandError, Output};

pub(super) fn keys(ctx: &mut Ctx, args: &Args) -> Result<(), CommandError> {
    match args.positional(0) {
        None => make(ctx, args),
        Some("show") if !args.has("alg") => show(ctx),
        Some("show") => Err(CommandError::new(
            "BadFlag",
            "`keys show` shows the key the session has; --alg is for making a new one",
        )
        .hint("run `keys --alg RS384` to make a new key, or `keys show` alone")),
        Some(other) => Err(CommandError::new(
            "UnexpectedArgument",
            format!("keys does not take {other:?}"),
        )
        .hint("`keys` makes a key pair, `keys show` shows its public JWK Set")),
    }
}

fn make(ctx: &mut Ctx, args: &Args) -> Result<(), CommandError> {
    let name = args.value("alg").unwrap_or("ES384");
    let alg = KeyAlg::parse(name).ok_or_else(|| {
        CommandError::new(
            "BadValue",
            format!("--alg {name:?} is not an algorithm for client assertions"),
        )
        .hint(format!(
            "use one of {} (SMART asks servers for ES384 and RS384; HMAC and none are not for private_key_jwt)",
            ALGS.join(", ")
        ))
    })?;
    let key = ClientKey::generate(alg).map_err(|e| CommandError::new("KeyError", e.to_string()))?;
    if let Some(old) = ctx.state.client_key.replace(key.clone()) {
        ctx.emit(Output::Note(format!(
            "Replaced the key {}: a client registered with it cannot authenticate from this session any more; register again with the new $jwks.",
            old.kid()
        )));
    }
    ctx.emit(Output::Text(format!(
        "Made an {} key pair ({}) with kid {}. The private key stays in this session and signs the client's assertions; the public JWK Set below is what the server gets.",
        alg.name(),
        alg.key_kind(),
        key.kid()
    )));
    let jwks = key.jwks();
    ctx.emit(Output::Json(jwks.clone()));
    ctx.bind("jwks", &jwks.to_string());
    ctx.bind("kid", key.kid());
    ctx.emit(Output::Note(
        "Bound $jwks (the public JWK Set: `register --backend` or `register --auth private_key_jwt` sends it) and $kid.".into(),
    ));
    Ok(())
}

fn show(ctx: &mut Ctx) -> Result<(), CommandError> {
    let key = ctx.state.client_key.clone().ok_or_else(|| {
        CommandError::new("NoKey", "this session has no key pair yet")
            .hint("run `keys` (ES384) or `keys --alg RS384` to make one")
    })?;
    ctx.emit(Output::Text(format!(
        "{} key ({}), kid {}; the private key is kept in this session and never shown.",
        key.alg().name(),
        key.alg().key_kind(),
        key.kid()
    )));
    ctx.emit(Output::Json(key.jwks()));
    Ok(())
}
