//! `http`: any request, to replay any cell exactly.

use serde_json::Value;

use super::super::args::Args;
use super::super::context::Ctx;
use super::super::output::CommandError;
use crate::client::Request;

pub(super) fn http(ctx: &mut Ctx, args: &Args) -> Result<(), CommandError> {
    let method = args.positional(0).unwrap_or_default().to_ascii_uppercase();
    let target = args.positional(1).unwrap_or_default();
    let url = if target.starts_with('/') {
        format!("{}{target}", ctx.endpoints()?.base)
    } else {
        target.to_string()
    };
    let json = match args.value("json") {
        Some(text) => Some(serde_json::from_str::<Value>(text).map_err(|e| {
            CommandError::new("BadValue", format!("--json is not valid JSON: {e}"))
                .hint("quote the JSON with single quotes: --json '{\"a\": 1}'")
        })?),
        None => None,
    };
    let split = |items: &[String],
                 sep: char,
                 flag: &str,
                 example: &str|
     -> Result<Vec<(String, String)>, CommandError> {
        items
            .iter()
            .map(|item| {
                item.split_once(sep)
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .ok_or_else(|| {
                        CommandError::new("BadValue", format!("--{flag} {item:?} has no {sep:?}"))
                            .hint(format!("write --{flag} {example}"))
                    })
            })
            .collect()
    };
    let form = split(args.values("form"), '=', "form", "grant_type=refresh_token")?;
    let headers = split(
        args.values("header"),
        ':',
        "header",
        "Accept:application/fhir+json",
    )?;
    let basic = match args.value("basic") {
        Some(text) => {
            Some(split(&[text.to_string()], ':', "basic", "CLIENT_ID:CLIENT_SECRET")?.remove(0))
        }
        None => None,
    };
    if json.is_some() && !form.is_empty() {
        return Err(
            CommandError::new("BadFlag", "--json and --form both set the body")
                .hint("use one of them"),
        );
    }
    let request = Request {
        method,
        url,
        headers,
        json,
        form: (!form.is_empty()).then_some(form),
        basic,
        bearer: args.value("bearer").map(str::to_string),
    };
    let client = ctx.state.client.clone();
    let reply = ctx.request(client.send(request))?;
    if args.has("include") {
        ctx.show_with_headers(&reply);
    } else {
        ctx.show(&reply);
    }
    if let Some(location) = reply.location.as_ref().filter(|_| !args.has("include")) {
        ctx.emit(super::super::output::Output::Text(format!(
            "Location: {location}"
        )));
    }
    Ok(())
}
