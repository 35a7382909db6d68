//! `token` (POST /oauth/debug/token) and `introspect` (GET /oauth/debug/introspect).

use serde_json::{json, Map, Value};

use super::super::args::Args;
use super::super::context::{http_failure, Ctx};
use super::super::output::{CommandError, Output, Table};
use crate::server::clock;

/// The seed's user.
const DEFAULT_USER: &str = "daniel-adams";

/// The shipped users' own patient records: `--patient`'s default for each.
const OWN_PATIENT: &[(&str, &str)] = &[
    ("daniel-adams", "smart-1288992"),
    ("joseph-ross", "smart-1081332"),
];

/// The practitioner among the shipped users, who has no record of their own.
const PRACTITIONER: (&str, &str) = ("dr-carter", "smart-1288992, smart-1032702 or smart-1081332");

/// The patient a token is for when `--patient` is not given: the user's own record. `None`
/// for a user this session does not know (the server then names the users it has).
fn default_patient(user: &str) -> Result<Option<&'static str>, CommandError> {
    if let Some((_, patient)) = OWN_PATIENT.iter().find(|(name, _)| *name == user) {
        return Ok(Some(patient));
    }
    if user == PRACTITIONER.0 {
        return Err(CommandError::new(
            "MissingArgument",
            format!("{user} has no patient record of their own; name one with --patient"),
        )
        .hint(format!("{user} treats {}", PRACTITIONER.1)));
    }
    Ok(None)
}

/// Seconds in a duration written `3600`, `90s`, `30m`, `3h`, `180d` or `1y`.
pub fn parse_duration(text: &str) -> Option<i64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: i64 = number.parse().ok()?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "y" => 365 * 86_400,
        _ => return None,
    };
    n.checked_mul(scale)
}

pub(super) fn token(ctx: &mut Ctx, args: &Args) -> Result<(), CommandError> {
    let endpoints = ctx.endpoints()?;
    let client_id = match args.value("client") {
        Some(id) => id.to_string(),
        None => ctx.var("client_id")?,
    };
    let mut body = Map::new();
    body.insert("client_id".into(), json!(client_id));
    let user = args.value("user").unwrap_or(DEFAULT_USER);
    body.insert("username".into(), json!(user));
    let patient = match args.value("patient") {
        Some(patient) => Some(patient),
        None => default_patient(user)?,
    };
    if let Some(patient) = patient {
        body.insert("patient_id".into(), json!(patient));
    }
    if let Some(text) = args.value("lifetime") {
        let seconds = parse_duration(text).ok_or_else(|| {
            CommandError::new("BadValue", format!("--lifetime {text:?} is not a duration"))
                .hint("write seconds (10800) or with a unit: 90m, 3h, 2d")
        })?;
        body.insert("access_lifetime".into(), json!(seconds));
    }
    if let Some(text) = args.value("approval-expires") {
        let when = match text.parse::<i64>() {
            Ok(unix) if unix > 1_000_000_000 => unix,
            _ => {
                clock::now()
                    + parse_duration(text).ok_or_else(|| {
                        CommandError::new(
                            "BadValue",
                            format!(
                                "--approval-expires {text:?} is neither a duration nor a Unix time"
                            ),
                        )
                        .hint("write a duration from now (180d) or a Unix time (1735689600)")
                    })?
            }
        };
        body.insert("approval_expires".into(), json!(when));
    }
    if let Some(scope) = args.value("scope") {
        body.insert("scope".into(), json!(scope));
    }
    let client = ctx.state.client.clone();
    let reply = ctx.request(client.post_json(&endpoints.debug_token, &Value::Object(body)))?;
    ctx.show(&reply);
    if !reply.ok() {
        return Err(http_failure(&reply, "the debug token request").hint("the shipped users are daniel-adams (smart-1288992, smart-1032702), joseph-ross (smart-1081332) and dr-carter (a practitioner: give --patient)"));
    }
    for name in ["access_token", "refresh_token"] {
        if let Some(value) = reply.field(name).map(str::to_string) {
            ctx.bind(name, &value);
        }
    }
    Ok(())
}

pub(super) fn introspect(ctx: &mut Ctx, args: &Args) -> Result<(), CommandError> {
    let token = match args.positional(0) {
        Some(t) => t.to_string(),
        None => ctx.var("access_token")?,
    };
    let endpoints = ctx.endpoints()?;
    let url = format!(
        "{}?{}",
        endpoints.debug_introspect,
        form_urlencoded::Serializer::new(String::new())
            .append_pair("token", &token)
            .finish()
    );
    let client = ctx.state.client.clone();
    let reply = ctx.request(client.get(&url, None))?;
    ctx.record(&reply);
    ctx.emit(Output::Status(reply.status));
    match reply.json() {
        Some(Value::Object(map)) if reply.ok() => {
            let rows = map
                .iter()
                .map(|(k, v)| vec![k.clone(), super::super::vars::as_text(v)])
                .collect();
            ctx.emit(Output::Table(Table {
                columns: vec!["field".into(), "value".into()],
                rows,
                json: Some(Value::Object(map.clone())),
            }));
            // A client_credentials token has no refresh token at all, hidden or not.
            let system = map
                .get("scope")
                .and_then(Value::as_str)
                .is_some_and(|s| s.split_whitespace().all(|w| w.starts_with("system/")));
            if let Some(other) = ["access_token", "refresh_token"]
                .into_iter()
                .filter(|name| !(system && *name == "refresh_token"))
                .find(|name| map.get(*name).is_some_and(Value::is_null))
            {
                ctx.emit(Output::Text(format!(
                    "{other} is null: the server keeps only a hash of each token, so it can \
                     show only the one it was given"
                )));
            }
            Ok(())
        }
        Some(other) => {
            ctx.emit(Output::Json(other.clone()));
            Err(http_failure(&reply, "introspection")
                .hint("the token may be unknown, revoked or rotated"))
        }
        None => Err(http_failure(&reply, "introspection")),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("3h"), Some(10_800));
        assert_eq!(parse_duration("10800"), Some(10_800));
        assert_eq!(parse_duration("180d"), Some(180 * 86_400));
        assert_eq!(parse_duration("90m"), Some(5_400));
        assert_eq!(parse_duration("3 hours"), None);
        assert_eq!(parse_duration("h"), None);
        assert_eq!(parse_duration("99999999999999999999y"), None);
    }
}
