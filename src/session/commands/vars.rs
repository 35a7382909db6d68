//! `vars`, `set`, `unset`.

use super::super::args::Args;
use super::super::context::Ctx;
use super::super::output::{CommandError, Output};

pub(super) fn vars(ctx: &mut Ctx) -> Result<(), CommandError> {
    if ctx.state.vars.iter().next().is_none() {
        ctx.emit(Output::Text(
            "No variables yet; `register` binds client_id and client_secret.".into(),
        ));
    } else {
        let table = ctx.state.vars.table();
        ctx.emit(Output::Table(table));
    }
    Ok(())
}

pub(super) fn set(ctx: &mut Ctx, args: &Args) -> Result<(), CommandError> {
    let name = args.positional(0).unwrap_or_default();
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(
            CommandError::new("BadName", format!("{name:?} is not a variable name"))
                .hint("names are letters, digits and _, not starting with a digit"),
        );
    }
    let value = args.positional(1).unwrap_or_default();
    ctx.bind(name, value);
    Ok(())
}

pub(super) fn unset(ctx: &mut Ctx, args: &Args) -> Result<(), CommandError> {
    let name = args.positional(0).unwrap_or_default();
    if !ctx.state.vars.unset(name) {
        ctx.emit(Output::Note(format!("${name} was not set")));
    }
    Ok(())
}
