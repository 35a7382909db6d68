//! `launch`: mint an EHR launch with the debug endpoint, as an EHR does when someone opens an
//! app from a patient's chart, and show the URL the EHR would open.

use serde_json::{json, Map, Value};

use super::super::args::Args;
use super::super::context::{http_failure, Ctx};
use super::super::output::{CommandError, Output};

/// The patient a launch is about when `--patient` is not given (the seed's).
pub const DEFAULT_PATIENT: &str = "smart-1288992";

/// The debug launch request's JSON body from the command's flags.
pub fn request_body(args: &Args, client_id: Option<&str>) -> Value {
    let mut body = Map::new();
    body.insert(
        "patient_id".into(),
        json!(args.value("patient").unwrap_or(DEFAULT_PATIENT)),
    );
    if let Some(encounter) = args.value("encounter") {
        body.insert("encounter_id".into(), json!(encounter));
    }
    if let Some(user) = args.value("user") {
        body.insert("username".into(), json!(user));
    }
    if let Some(client_id) = client_id {
        body.insert("client_id".into(), json!(client_id));
    }
    if let Some(intent) = args.value("intent") {
        body.insert("intent".into(), json!(intent));
    }
    if args.has("banner") {
        body.insert("need_patient_banner".into(), json!(true));
    }
    let context = args.values("context");
    if !context.is_empty() {
        body.insert("fhir_context".into(), json!(context));
    }
    Value::Object(body)
}

/// The URL an EHR opens to launch an app: its launch URL with `iss` and `launch` added to
/// whatever query it already has.
pub fn launch_url(launch_uri: &str, iss: &str, launch: &str) -> Result<String, CommandError> {
    let mut url = url::Url::parse(launch_uri).map_err(|_| {
        CommandError::new(
            "BadValue",
            format!("the launch URL {launch_uri:?} is not a URL"),
        )
    })?;
    url.query_pairs_mut()
        .append_pair("iss", iss)
        .append_pair("launch", launch);
    Ok(url.to_string())
}

/// What to try when the server refuses a launch, by its error code.
fn refusal_hint(error: &str) -> &'static str {
    match error {
        "no_patient" => "the bundled patients are smart-1288992, smart-1032702 and smart-1081332",
        "no_user" => "the shipped users are dr-carter, daniel-adams and joseph-ross",
        "no_patient_for_user" => {
            "dr-carter treats every patient; a patient user launches only for whom they may share"
        }
        "no_encounter" => {
            "`fetch Encounter?patient=P` lists the patient's encounters; --encounter auto picks the most recent"
        }
        "no_client" => "`register` first, or name a registered client with --client ID",
        "no_context" => {
            "each --context is Type/id of a resource in the patient's record (or a Practitioner)"
        }
        _ => "`help launch` shows the flags",
    }
}

pub(super) fn launch(ctx: &mut Ctx, args: &Args) -> Result<(), CommandError> {
    let endpoints = ctx.endpoints()?;
    let own_client = ctx.var_opt("client_id");
    let client_id = args
        .value("client")
        .map(str::to_string)
        .or_else(|| own_client.clone());
    let body = request_body(args, client_id.as_deref());
    let client = ctx.state.client.clone();
    let reply = ctx.request(client.post_json(&endpoints.debug_launch(), &body))?;
    ctx.show(&reply);
    if !reply.ok() {
        let hint = refusal_hint(reply.field("error").unwrap_or_default());
        return Err(http_failure(&reply, "the debug launch request").hint(hint));
    }
    let (Some(launch), Some(iss)) = (
        reply.field("launch").map(str::to_string),
        reply.field("iss").map(str::to_string),
    ) else {
        return Err(CommandError::new(
            "BadReply",
            "the launch reply has no launch or no iss",
        ));
    };
    ctx.bind("launch", &launch);
    ctx.bind("iss", &iss);
    // The launch URL registered is this session's client's; another client's is unknown here.
    let launch_uri = ctx
        .var_opt("launch_uri")
        .filter(|_| client_id.is_some() && client_id == own_client);
    match launch_uri {
        Some(uri) => {
            let url = launch_url(&uri, &iss, &launch)?;
            ctx.bind("launch_url", &url);
            ctx.emit(Output::Link {
                label: "The EHR would open the app at:".into(),
                url,
            });
            ctx.emit(Output::Note(
                "Bound $launch, $iss and $launch_url; `authorize --launch` spends the launch (once, before it expires).".into(),
            ));
        }
        None => {
            ctx.state.vars.unset("launch_url");
            ctx.emit(Output::Note(
                "Bound $launch and $iss; `authorize --launch` spends the launch (once, before it expires).".into(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::super::spec::spec;
    use super::*;

    fn args(words: &[&str]) -> Args {
        let words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        Args::parse(spec("launch").unwrap(), &words).unwrap()
    }

    #[test]
    fn flags_become_the_debug_request() {
        let body = request_body(
            &args(&[
                "--patient",
                "smart-1081332",
                "--encounter",
                "auto",
                "--intent",
                "reconcile-medications",
                "--context",
                "Observation/o1",
                "--context",
                "Practitioner/practitioner-carter",
                "--banner",
                "--user",
                "dr-carter",
            ]),
            Some("c-1"),
        );
        assert_eq!(
            body,
            json!({
                "patient_id": "smart-1081332",
                "encounter_id": "auto",
                "username": "dr-carter",
                "client_id": "c-1",
                "intent": "reconcile-medications",
                "need_patient_banner": true,
                "fhir_context": ["Observation/o1", "Practitioner/practitioner-carter"],
            })
        );
    }

    #[test]
    fn without_flags_only_the_default_patient_is_sent() {
        assert_eq!(
            request_body(&args(&[]), None),
            json!({"patient_id": DEFAULT_PATIENT})
        );
    }

    #[test]
    fn the_launch_url_keeps_its_query_and_escapes_iss() {
        assert_eq!(
            launch_url(
                "http://localhost:9001/launch",
                "http://localhost:9000/api/fhir",
                "ab12"
            )
            .unwrap(),
            "http://localhost:9001/launch?iss=http%3A%2F%2Flocalhost%3A9000%2Fapi%2Ffhir&launch=ab12"
        );
        assert_eq!(
            launch_url(
                "https://app.example/start?v=2",
                "https://ehr.example/fhir",
                "x"
            )
            .unwrap(),
            "https://app.example/start?v=2&iss=https%3A%2F%2Fehr.example%2Ffhir&launch=x"
        );
        assert_eq!(
            launch_url("not a url", "i", "l").unwrap_err().kind,
            "BadValue"
        );
    }

    #[test]
    fn refusals_point_at_a_fix() {
        assert!(refusal_hint("no_encounter").contains("--encounter auto"));
        assert!(refusal_hint("no_client").contains("register"));
        assert!(refusal_hint("something_else").contains("help launch"));
    }
}
