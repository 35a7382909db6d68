//! Dispatch: resolve a command's words, check them against its spec, run it.

mod authorize;
mod backend;
mod client_auth;
mod exchange;
mod fetch;
mod http;
mod id_token;
mod keys;
mod launch;
mod listen;
mod participant;
mod register;
mod server;
mod simulate;
mod token;
mod vars;

use super::args::Args;
use super::context::Ctx;
use super::output::{CommandError, Output};
use super::parse::{CommandLine, HELPERS};
use super::spec::{self, did_you_mean};

/// Run one command line.
pub(crate) fn run(ctx: &mut Ctx, line: &CommandLine) -> Result<(), CommandError> {
    let Some(spec) = spec::spec(&line.name) else {
        let error = CommandError::new(
            "UnknownCommand",
            format!("there is no helper command {:?}", line.name),
        );
        return Err(match did_you_mean(&line.name, HELPERS.iter().copied()) {
            Some(near) => error.hint(format!("did you mean `{near}`? `help` lists every command")),
            None => error.hint("`help` lists every command"),
        });
    };
    let words = line
        .args
        .iter()
        .map(|w| ctx.state.vars.resolve(w))
        .collect::<Result<Vec<_>, _>>()?;
    let args = Args::parse(spec, &words)?;
    match spec.name {
        "server" => server::server(ctx, &args),
        "connect" => server::connect(ctx, &args),
        "register" => register::register(ctx, &args),
        "token" => token::token(ctx, &args),
        "introspect" => token::introspect(ctx, &args),
        "fetch" => fetch::fetch(ctx, &args),
        "launch" => launch::launch(ctx, &args),
        "authorize" => authorize::authorize(ctx, &args),
        "exchange" => exchange::exchange(ctx, &args),
        "refresh" => exchange::refresh(ctx, &args),
        "id-token" => id_token::id_token(ctx, &args),
        "keys" => keys::keys(ctx, &args),
        "backend" => backend::backend(ctx, &args),
        "assertion" => backend::assertion(ctx, &args),
        "simulate" => simulate::simulate(ctx, &args),
        "http" => http::http(ctx, &args),
        "vars" => vars::vars(ctx),
        "set" => vars::set(ctx, &args),
        "unset" => vars::unset(ctx, &args),
        _ => help(ctx, &args),
    }
}

fn help(ctx: &mut Ctx, args: &Args) -> Result<(), CommandError> {
    match args.positional(0) {
        Some(name) => {
            let name = name.trim_start_matches('%');
            let spec = spec::spec(name).ok_or_else(|| {
                let error = CommandError::new(
                    "UnknownCommand",
                    format!("there is no helper command {name:?}"),
                );
                match did_you_mean(name, HELPERS.iter().copied()) {
                    Some(near) => error.hint(format!("did you mean `{near}`?")),
                    None => error.hint("`help` lists every command"),
                }
            })?;
            ctx.emit(Output::Text(spec::help_text(spec)));
        }
        None => {
            let mut text = String::from("Helper commands (a cell whose first line is one of these runs them, one per line; anything else is Rust):\n\n");
            let width = spec::COMMANDS
                .iter()
                .map(|c| c.name.len())
                .max()
                .unwrap_or(0);
            for c in spec::COMMANDS {
                text.push_str(&format!("  {:width$}  {}\n", c.name, c.summary));
            }
            text.push_str("\nArguments are shell-like words; $name, ${name} and $response.field insert variables. `help COMMAND` shows a command's flags.\n");
            ctx.emit(Output::Text(text));
        }
    }
    Ok(())
}
