//! `simulate`: queue, list and clear a client's simulated faults on a smartnb server
//! (POST, GET and DELETE /oauth/debug/simulate), so an app's error handling can be tried.

use serde_json::{json, Map, Value};

use super::super::args::Args;
use super::super::context::{http_failure, Ctx};
use super::super::faults::{self, delay_words, parse_delay, PLACES};
use super::super::output::{CommandError, Output, Table};
use super::super::spec::did_you_mean;
use crate::client::{Reply, Request};

/// What `simulate` was asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action<'a> {
    List,
    Clear,
    Add(&'a str),
}

pub(super) fn simulate(ctx: &mut Ctx, args: &Args) -> Result<(), CommandError> {
    let action = match args.positional(0) {
        None => Action::List,
        Some("clear") => Action::Clear,
        Some(fault) => Action::Add(fault),
    };
    if let (false, Some(flag)) = (
        matches!(action, Action::Add(_)),
        ["times", "delay", "at"].into_iter().find(|f| args.has(f)),
    ) {
        let what = if action == Action::List {
            "`simulate` alone lists the queued faults"
        } else {
            "`simulate clear` removes every queued fault"
        };
        return Err(CommandError::new(
            "BadFlag",
            format!("--{flag} goes with a fault to queue; {what}"),
        )
        .hint("write `simulate FAULT --times N`; `help simulate` lists the faults"));
    }
    let client_id = match args.value("client") {
        Some(id) => id.to_string(),
        None => ctx.var("client_id").map_err(|e| {
            e.hint("`register` first, or name the client whose requests to fault with --client ID")
        })?,
    };
    let body = match action {
        Action::Add(fault) => Some(request_body(args, fault, &client_id)?),
        _ => None,
    };
    let endpoint = ctx.endpoints()?.debug_simulate();
    let of_client = format!(
        "{endpoint}?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &client_id)
            .finish()
    );
    let request = match action {
        Action::List => Request {
            method: "GET".into(),
            url: of_client,
            ..Default::default()
        },
        Action::Clear => Request {
            method: "DELETE".into(),
            url: of_client,
            ..Default::default()
        },
        Action::Add(_) => Request {
            method: "POST".into(),
            url: endpoint.clone(),
            json: body,
            ..Default::default()
        },
    };
    let client = ctx.state.client.clone();
    let reply = ctx.request(client.send(request))?;
    ctx.record(&reply);
    let listed = checked(ctx, &reply, &endpoint, action)?;
    match action {
        Action::List => {
            if listed.is_empty() {
                ctx.emit(Output::Json(reply.json().cloned().unwrap_or_default()));
                ctx.emit(Output::Text(format!(
                    "No faults are queued for client {client_id}: its requests get real answers."
                )));
            } else {
                ctx.emit(Output::Table(faults_table(&listed, reply.json())));
            }
        }
        Action::Clear => {
            ctx.emit(Output::Json(reply.json().cloned().unwrap_or_default()));
            let cleared = reply
                .json()
                .and_then(|j| j.get("cleared"))
                .and_then(Value::as_u64);
            let count = match cleared {
                Some(1) => "the one queued fault".to_string(),
                Some(n) => format!("{n} queued faults"),
                None => "its queued faults".to_string(),
            };
            ctx.emit(Output::Text(format!(
                "Cleared {count} of client {client_id}: its requests get real answers again."
            )));
        }
        Action::Add(fault) => {
            ctx.emit(Output::Table(faults_table(&listed, reply.json())));
            ctx.emit(Output::Note(queued_note(args, fault, &client_id)));
        }
    }
    Ok(())
}

/// The debug request's JSON body for `simulate FAULT` and its flags.
fn request_body(args: &Args, fault: &str, client_id: &str) -> Result<Value, CommandError> {
    let mut body = Map::new();
    body.insert("client_id".into(), json!(client_id));
    body.insert("fault".into(), json!(fault));
    if let Some(text) = args.value("times") {
        let times: u64 = text.trim().parse().map_err(|_| {
            CommandError::new(
                "BadValue",
                format!("--times {text:?} is not a whole number"),
            )
            .hint("--times 3 answers three requests; --times 0 answers every one until `simulate clear`")
        })?;
        body.insert("times".into(), json!(times));
    }
    if let Some(text) = args.value("delay") {
        let ms = parse_delay(text).ok_or_else(|| {
            CommandError::new("BadValue", format!("--delay {text:?} is not a duration"))
                .hint("write it with a unit: 500ms, 2s, 1.5s")
        })?;
        body.insert("delay_ms".into(), json!(ms));
    }
    if let Some(at) = args.value("at") {
        let at = at.trim().to_ascii_lowercase();
        if !PLACES.contains(&at.as_str()) {
            return Err(CommandError::new(
                "BadValue",
                format!("--at {at:?} is not a place a request can be slowed"),
            )
            .hint("--at authorize, --at token or --at fhir"));
        }
        body.insert("at".into(), json!(at));
    }
    Ok(Value::Object(body))
}

/// The faults of a 2xx answer; otherwise the error that says what went wrong and what to do.
fn checked(
    ctx: &mut Ctx,
    reply: &Reply,
    endpoint: &str,
    action: Action,
) -> Result<Vec<Value>, CommandError> {
    ctx.emit(Output::Status(reply.status));
    let listed = reply
        .json()
        .and_then(|j| j.get("faults"))
        .and_then(Value::as_array);
    if let (true, Some(listed)) = (reply.ok(), listed) {
        return Ok(listed.clone());
    }
    let error = reply.field("error").map(str::to_string);
    let not_smartnb = matches!(reply.status, 404 | 405 | 501) || error.is_none();
    if not_smartnb {
        return Err(CommandError::new(
            "NoEndpoint",
            format!(
                "the target has no simulated faults: {endpoint} answered HTTP {} without a list of faults",
                reply.status
            ),
        )
        .hint("simulated faults are a smartnb server's debug endpoint: `connect embedded` targets the embedded server, or `connect` to a `smartnb serve` of this version"));
    }
    if let Some(body) = reply.json() {
        ctx.emit(Output::Json(body.clone()));
    }
    let what = match action {
        Action::List => "listing the simulated faults",
        Action::Clear => "clearing the simulated faults",
        Action::Add(_) => "the simulate request",
    };
    let hint = match error.as_deref().unwrap_or_default() {
        "unknown_fault" => {
            let named = match action {
                Action::Add(fault) => did_you_mean(fault, faults::names())
                    .map(|near| format!("did you mean {near}? ")),
                _ => None,
            };
            format!(
                "{}`help simulate` lists the faults with what each answers",
                named.unwrap_or_default()
            )
        }
        "no_client" => {
            "the client must be registered on the target: `register` first, or --client ID of a registered client".to_string()
        }
        "access_denied" => {
            "the debug endpoints answer only programs on the server's machine; a server that faces outside also needs `smartnb serve --debug-endpoints`".to_string()
        }
        _ => "`help simulate` shows the flags: --delay and --at go only with slow".to_string(),
    };
    Err(http_failure(reply, what).hint(hint))
}

/// The queued faults, in the order they will answer.
fn faults_table(listed: &[Value], json: Option<&Value>) -> Table {
    let rows = listed
        .iter()
        .map(|f| {
            let name = f["fault"].as_str().unwrap_or("?");
            let remaining = match (f["remaining"].as_u64(), f["times"].as_u64()) {
                (Some(left), Some(times)) if times > 0 => format!("{left} of {times}"),
                (Some(left), _) => left.to_string(),
                (None, _) => "until cleared".to_string(),
            };
            let at = match f["at"].as_str() {
                Some(at) => at.to_string(),
                None if name == "slow" => "any".to_string(),
                None => faults::find(name)
                    .map(|known| known.at.to_string())
                    .unwrap_or_default(),
            };
            let delay = f["delay_ms"].as_u64().map(delay_words).unwrap_or_default();
            vec![name.to_string(), remaining, at, delay]
        })
        .collect();
    Table {
        columns: vec![
            "fault".into(),
            "remaining".into(),
            "at".into(),
            "delay".into(),
        ],
        rows,
        json: json.cloned(),
    }
}

/// What the client's requests will get now, in words.
fn queued_note(args: &Args, fault: &str, client_id: &str) -> String {
    let known = faults::find(fault);
    let at = match (fault, args.value("at")) {
        ("slow", Some("fhir")) => "FHIR".to_string(),
        ("slow", Some(place)) => place.to_string(),
        ("slow", None) => "authorize, token or FHIR".to_string(),
        _ => known.map(|f| f.at.to_string()).unwrap_or_default(),
    };
    let answer = match (fault, args.value("delay").and_then(parse_delay)) {
        ("slow", Some(ms)) => format!("the real answer, after {}", delay_words(ms)),
        ("slow", None) => "the real answer, after 2s".to_string(),
        _ => known.map(|f| f.answer.to_string()).unwrap_or_default(),
    };
    let times = args
        .value("times")
        .and_then(|t| t.trim().parse::<u64>().ok())
        .unwrap_or(1);
    let what = match (times, at.is_empty() || answer.is_empty()) {
        (_, true) => String::new(),
        (0, _) => format!(": its {at} requests get {answer}, until `simulate clear`"),
        (1, _) => format!(": its next {at} request gets {answer}"),
        (n, _) => format!(": its next {n} {at} requests get {answer}"),
    };
    format!(
        "Queued {fault} for client {client_id}{what}. `simulate` lists the queue, `simulate clear` empties it."
    )
}

#[cfg(test)]
mod tests {
    use super::super::super::spec::spec;
    use super::*;

    fn args(words: &[&str]) -> Args {
        let words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        Args::parse(spec("simulate").unwrap(), &words).unwrap()
    }

    #[test]
    fn flags_become_the_debug_request() {
        assert_eq!(
            request_body(&args(&["fhir_expired_token"]), "fhir_expired_token", "c1").unwrap(),
            json!({"client_id": "c1", "fault": "fhir_expired_token"})
        );
        assert_eq!(
            request_body(
                &args(&["slow", "--times", "0", "--delay", "1.5s", "--at", "FHIR"]),
                "slow",
                "c1"
            )
            .unwrap(),
            json!({"client_id": "c1", "fault": "slow", "times": 0, "delay_ms": 1500, "at": "fhir"})
        );
        let bad = |words: &[&str]| request_body(&args(words), "slow", "c").unwrap_err();
        assert!(bad(&["slow", "--times", "-1"])
            .hint
            .unwrap()
            .contains("--times 0"));
        assert!(bad(&["slow", "--delay", "2h"])
            .hint
            .unwrap()
            .contains("500ms"));
        assert!(bad(&["slow", "--at", "ehr"])
            .hint
            .unwrap()
            .contains("--at fhir"));
    }

    #[test]
    fn the_table_says_what_is_left_where() {
        let listed = vec![
            json!({"fault": "fhir_expired_token", "times": 3, "remaining": 2, "at": null, "delay_ms": null}),
            json!({"fault": "slow", "times": 0, "remaining": null, "at": null, "delay_ms": 1500}),
            json!({"fault": "slow", "times": 1, "remaining": 1, "at": "token", "delay_ms": 2000}),
        ];
        let t = faults_table(&listed, None);
        assert_eq!(t.columns, ["fault", "remaining", "at", "delay"]);
        assert_eq!(t.rows[0], ["fhir_expired_token", "2 of 3", "FHIR", ""]);
        assert_eq!(t.rows[1], ["slow", "until cleared", "any", "1.5s"]);
        assert_eq!(t.rows[2], ["slow", "1 of 1", "token", "2s"]);
    }

    #[test]
    fn the_note_says_which_requests_get_what() {
        let note = queued_note(
            &args(&["fhir_throttled", "--times", "2"]),
            "fhir_throttled",
            "c1",
        );
        assert!(
            note.starts_with(
                "Queued fhir_throttled for client c1: its next 2 FHIR requests get 429"
            ),
            "{note}"
        );
        let note = queued_note(
            &args(&["slow", "--at", "fhir", "--times", "0"]),
            "slow",
            "c1",
        );
        assert!(
            note.contains(
                "its FHIR requests get the real answer, after 2s, until `simulate clear`"
            ),
            "{note}"
        );
        let note = queued_note(&args(&["new_fault"]), "new_fault", "c1");
        assert!(
            note.starts_with("Queued new_fault for client c1. "),
            "{note}"
        );
    }
}
