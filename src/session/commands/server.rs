//! `server start|stop|status` and `connect`.

use std::net::IpAddr;

use super::super::args::Args;
use super::super::context::Ctx;
use super::super::output::{CommandError, Output, Table};
use super::super::target::{Endpoints, Target};

pub(super) fn server(ctx: &mut Ctx, args: &Args) -> Result<(), CommandError> {
    match args.positional(0).unwrap_or("status") {
        "start" => start(ctx, args),
        "stop" => {
            match ctx.state.embedded.take() {
                Some(running) => {
                    let url = running.base_url.clone();
                    let runtime = ctx.state.runtime.clone();
                    runtime.block_on(running.shutdown());
                    ctx.emit(Output::Note(format!(
                        "Stopped the embedded server on {url}; its clients and tokens are gone"
                    )));
                }
                None => ctx.emit(Output::Note("The embedded server is not running".into())),
            }
            Ok(())
        }
        "status" => status(ctx),
        other => Err(CommandError::new(
            "UnknownSubcommand",
            format!("server has no subcommand {other:?}"),
        )
        .hint("use server start, server stop or server status")),
    }
}

fn start(ctx: &mut Ctx, args: &Args) -> Result<(), CommandError> {
    if let Some(running) = &ctx.state.embedded {
        let url = running.base_url.clone();
        ctx.emit(Output::Note(format!(
            "The embedded server is already running on {url}; `server stop` first to restart it"
        )));
        return Ok(());
    }
    let mut config = ctx.state.options.server.clone();
    if let Some(port) = args.value("port") {
        config.port = port.parse().map_err(|_| {
            CommandError::new("BadValue", format!("--port {port:?} is not a port number"))
                .hint("use 0 to 65535; 0 picks a free port")
        })?;
    }
    if let Some(host) = args.value("host") {
        config.host = host.parse::<IpAddr>().map_err(|_| {
            CommandError::new("BadValue", format!("--host {host:?} is not an IP address"))
                .hint("e.g. 127.0.0.1 or 0.0.0.0")
        })?;
    }
    ctx.start_embedded(Some(config))?;
    Ok(())
}

fn status(ctx: &mut Ctx) -> Result<(), CommandError> {
    let Some(running) = &ctx.state.embedded else {
        ctx.emit(Output::Text(
            "The embedded server is not running; it starts on first use, or with `server start`."
                .into(),
        ));
        return Ok(());
    };
    let base = running.base_url.clone();
    let state = running.state_location().to_string();
    let store = running.store();
    let runtime = ctx.state.runtime.clone();
    let (clients, tokens) =
        runtime.block_on(async { (store.client_count().await, store.token_count().await) });
    let count = |r: Result<usize, _>| {
        r.map(|n| n.to_string())
            .unwrap_or_else(|e| format!("unknown ({e})"))
    };
    let target = match &ctx.state.target {
        Target::Embedded => "yes".to_string(),
        Target::Remote(e) => format!("no (the target is {})", e.base),
    };
    ctx.emit(Output::Table(Table {
        columns: vec!["embedded server".into(), "".into()],
        rows: vec![
            vec!["URL".into(), base.clone()],
            vec!["FHIR base".into(), format!("{base}/api/fhir")],
            vec!["clients".into(), count(clients)],
            vec!["live token pairs".into(), count(tokens)],
            vec!["state".into(), state],
            vec!["session target".into(), target],
        ],
        json: None,
    }));
    Ok(())
}

pub(super) fn connect(ctx: &mut Ctx, args: &Args) -> Result<(), CommandError> {
    match args.positional(0) {
        None => {
            let text = match &ctx.state.target {
                Target::Embedded => match &ctx.state.embedded {
                    Some(s) => format!("Target: the embedded server on {}", s.base_url),
                    None => "Target: the embedded server (it starts on first use)".to_string(),
                },
                Target::Remote(e) => format!("Target: {} (FHIR base {})", e.base, e.fhir),
            };
            ctx.emit(Output::Text(text));
        }
        Some("embedded") | Some("default") => {
            ctx.state.target = Target::Embedded;
            ctx.emit(Output::Note("Target: the embedded server".into()));
        }
        Some(url) => {
            let client = ctx.state.client.clone();
            let found = ctx
                .wait(Endpoints::discover(&client, url))?
                .map_err(|e| CommandError::new("ConnectError", e.to_string()).hint(e.hint()))?;
            let note = format!(
                "Target: {} (FHIR base {}, authorize {}, token {})",
                found.base, found.fhir, found.authorize, found.token
            );
            ctx.state.target = Target::Remote(found);
            ctx.emit(Output::Note(note));
        }
    }
    Ok(())
}
