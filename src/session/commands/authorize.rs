//! `authorize`: build the authorize link (with state and optional PKCE), and optionally
//! complete it as a participant (`--as`) or by catching the browser's redirect (`--listen`).

use base64::Engine;
use sha2::{Digest, Sha256};

use super::super::args::Args;
use super::super::context::Ctx;
use super::super::output::{CommandError, Output};
use super::register::DEFAULT_SCOPE;
use super::{listen, participant};

/// A fresh random value for `state` or a PKCE verifier (hex of random UUIDs).
pub fn random_hex(uuids: usize) -> String {
    (0..uuids)
        .map(|_| uuid::Uuid::new_v4().simple().to_string())
        .collect()
}

/// A fresh nonce: 32 random bytes, base64url (43 characters).
pub fn random_nonce() -> Result<String, CommandError> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| CommandError::new("RandomError", "the system's random source failed"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Whether a space-separated scope asks for `openid`.
pub fn asks_openid(scope: &str) -> bool {
    scope.split_whitespace().any(|s| s == "openid")
}

/// A scope with `launch` added (SMART's EHR launch asks for it), unless it is there.
pub fn with_launch_scope(scope: &str) -> String {
    if scope.split_whitespace().any(|s| s == "launch") {
        scope.to_string()
    } else if scope.trim().is_empty() {
        "launch".to_string()
    } else {
        format!("launch {}", scope.trim())
    }
}

/// The authorize URL: the endpoint with the request's parameters as its query.
pub fn authorize_url(endpoint: &str, params: &[(String, String)]) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let joint = if endpoint.contains('?') { '&' } else { '?' };
    format!("{endpoint}{joint}{query}")
}

/// The S256 challenge of a verifier.
pub fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// What a redirect back to the app carried.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Answer {
    /// A code, with the state that was sent.
    Code(String),
    /// An error from the server (`error`, `error_description`), with the right state.
    Refused(String, String),
    /// A state other than the one sent: possibly a forged redirect.
    WrongState(String),
    /// Neither code nor error.
    Empty,
}

impl Answer {
    /// Read a redirect's query, checking its state first.
    pub fn read(url: &url::Url, state: &str) -> Answer {
        let params: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        match (get("state"), get("error"), get("code")) {
            (got, _, _) if got.as_deref() != Some(state) => {
                Answer::WrongState(got.unwrap_or_default())
            }
            (_, Some(error), _) => {
                Answer::Refused(error, get("error_description").unwrap_or_default())
            }
            (_, None, Some(code)) => Answer::Code(code),
            _ => Answer::Empty,
        }
    }

    /// The code, or the error to stop with.
    pub fn into_code(self, state: &str) -> Result<String, CommandError> {
        match self {
            Answer::Code(code) => Ok(code),
            Answer::WrongState(got) => Err(CommandError::new("StateMismatch", format!("the redirect's state {got:?} is not the {state:?} that was sent"))
                .hint("never use a code whose state does not match: it may be a forged redirect; run `authorize` again")),
            Answer::Refused(error, description) => Err(CommandError::new("AuthorizeError", format!("the server answered {error}: {description}"))),
            Answer::Empty => Err(CommandError::new("AuthorizeError", "the redirect carried neither code nor error")),
        }
    }
}

pub(super) fn authorize(ctx: &mut Ctx, args: &Args) -> Result<(), CommandError> {
    if args.has("as") && args.has("listen") {
        return Err(CommandError::new(
            "BadFlag",
            "--as and --listen are two ways to finish the same step",
        )
        .hint("use one of them"));
    }
    if args.has("patient") && !args.has("as") {
        return Err(CommandError::new("BadFlag", "--patient goes with --as")
            .hint("authorize --as daniel-adams:demo-password --patient smart-1032702"));
    }
    if args.has("encounter") && !args.has("as") {
        return Err(CommandError::new("BadFlag", "--encounter goes with --as")
            .hint("authorize --scope \"launch/patient launch/encounter patient/*.rs\" --as daniel-adams:demo-password --encounter none"));
    }
    if args.has("patient") && args.has("launch") {
        return Err(
            CommandError::new("BadFlag", "--patient and --launch both choose the patient")
                .hint("an EHR launch brings its own patient: `launch --patient P` chooses it"),
        );
    }
    let launch =
        match args.value("launch") {
            None => None,
            Some("") => Some(ctx.var("launch").map_err(|e| {
                e.hint("run `launch` first (it binds $launch), or pass --launch ID")
            })?),
            Some(id) => Some(id.to_string()),
        };
    let endpoints = ctx.endpoints()?;
    let client_id = match args.value("client") {
        Some(id) => id.to_string(),
        None => ctx.var("client_id")?,
    };
    let redirect_uri = match args.value("redirect-uri") {
        Some(uri) => uri.to_string(),
        None => ctx
            .var("redirect_uri")
            .map_err(|e| e.hint("`register` binds redirect_uri, or pass --redirect-uri"))?,
    };
    let scope = args
        .value("scope")
        .map(str::to_string)
        .or_else(|| ctx.var_opt("scope"))
        .unwrap_or_else(|| DEFAULT_SCOPE.to_string());
    let state = args
        .value("state")
        .map(str::to_string)
        .unwrap_or_else(|| random_hex(1));
    let aud = args
        .value("aud")
        .map(str::to_string)
        .unwrap_or_else(|| endpoints.fhir.clone());
    // OpenID Connect Core §3.1.2.1: a nonce ties the id_token to this request. Sent whenever
    // openid is asked for (or --nonce is given); otherwise none, and a stale $nonce goes.
    let nonce = match args.value("nonce") {
        Some(n) => Some(n.to_string()),
        None if asks_openid(&scope) => Some(random_nonce()?),
        None => None,
    };
    let public = ctx.var_opt("client_secret").is_none();
    let mut params: Vec<(String, String)> = vec![
        ("response_type".into(), "code".into()),
        ("client_id".into(), client_id),
        ("redirect_uri".into(), redirect_uri.clone()),
        (
            "scope".into(),
            match &launch {
                Some(_) => with_launch_scope(&scope),
                None => scope,
            },
        ),
        ("state".into(), state.clone()),
        ("aud".into(), aud.clone()),
    ];
    if let Some(id) = &launch {
        params.push(("launch".into(), id.clone()));
    }
    match &nonce {
        Some(n) => {
            params.push(("nonce".into(), n.clone()));
            ctx.bind("nonce", n);
        }
        None => {
            ctx.state.vars.unset("nonce");
        }
    }
    if args.has("pkce") || public {
        let verifier = random_hex(2);
        params.push(("code_challenge".into(), s256(&verifier)));
        params.push(("code_challenge_method".into(), "S256".into()));
        ctx.bind("code_verifier", &verifier);
    } else {
        ctx.state.vars.unset("code_verifier");
    }
    ctx.bind("state", &state);
    ctx.bind("aud", &aud);
    ctx.state.vars.unset("code");
    let url = authorize_url(&endpoints.authorize, &params);
    ctx.emit(Output::Link {
        label: "Continue to authorization:".into(),
        url: url.clone(),
    });
    let code = if let Some(who) = args.value("as") {
        if !endpoints.smartnb_pages {
            return Err(CommandError::new("NotSmartnb", format!("--as fills in smartnb's own sign-in and consent pages, and {} is another server", endpoints.base))
                .hint("open the link in a browser and use --listen, or paste the code into `exchange CODE`"));
        }
        let (user, password) = match who.split_once(':') {
            Some((u, p)) => (u.to_string(), p.to_string()),
            None => {
                let prompt = format!("Password for {who}: ");
                let password = ctx.frontend.ask(&prompt, true).ok_or_else(|| {
                    CommandError::new("MissingArgument", format!("no password for {who}")).hint(
                        format!("write --as {who}:PASSWORD (the demo password is demo-password)"),
                    )
                })?;
                (who.to_string(), password)
            }
        };
        let request = participant::Participant {
            user: &user,
            password: &password,
            patient: args.value("patient"),
            encounter: args.value("encounter"),
            base: &endpoints.base,
        };
        participant::approve(ctx, &request, &url, &state)?
    } else if args.has("listen") {
        let timeout = match args.value("timeout") {
            Some(t) => t.parse::<u64>().map_err(|_| {
                CommandError::new(
                    "BadValue",
                    format!("--timeout {t:?} is not a number of seconds"),
                )
            })?,
            None => listen::DEFAULT_TIMEOUT,
        };
        // The EHR may open the app's launch URL instead of the person opening the link: the
        // request then goes on to authorize with the launch it brought.
        let ehr = ctx.var_opt("launch_uri").map(|launch_uri| listen::Ehr {
            launch_uri,
            fhir: endpoints.fhir.clone(),
            authorize: endpoints.authorize.clone(),
            params: params
                .iter()
                .filter(|(k, _)| k != "launch")
                .cloned()
                .collect(),
        });
        listen::catch(ctx, &redirect_uri, &state, timeout, ehr.as_ref())?
    } else {
        return Ok(());
    };
    ctx.bind("code", &code);
    ctx.emit(Output::Note(
        "Bound $code; `exchange` trades it for tokens.".into(),
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_and_random_values_have_pkce_shape() {
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let v = random_hex(2);
        assert_eq!(v.len(), 64);
        assert_ne!(v, random_hex(2));
    }

    #[test]
    fn the_launch_scope_is_added_once() {
        assert_eq!(
            with_launch_scope("openid fhirUser user/*.rs"),
            "launch openid fhirUser user/*.rs"
        );
        assert_eq!(
            with_launch_scope("patient/*.rs launch"),
            "patient/*.rs launch"
        );
        // launch/patient is a different scope: standalone launch context.
        assert_eq!(
            with_launch_scope("launch/patient patient/*.read"),
            "launch launch/patient patient/*.read"
        );
        assert_eq!(with_launch_scope("  "), "launch");
    }

    #[test]
    fn authorize_urls_escape_their_parameters() {
        let params = vec![
            ("scope".to_string(), "launch openid".to_string()),
            ("launch".to_string(), "ab12".to_string()),
            (
                "aud".to_string(),
                "http://localhost:9000/api/fhir".to_string(),
            ),
        ];
        assert_eq!(
            authorize_url("http://localhost:9000/oauth/authorize", &params),
            "http://localhost:9000/oauth/authorize?scope=launch+openid&launch=ab12&aud=http%3A%2F%2Flocalhost%3A9000%2Fapi%2Ffhir"
        );
        assert_eq!(
            authorize_url("https://ehr.example/auth?tenant=1", &params[1..2]),
            "https://ehr.example/auth?tenant=1&launch=ab12"
        );
    }

    #[test]
    fn nonces_are_fresh_base64url_and_only_for_openid() {
        let n = random_nonce().unwrap();
        assert_eq!(n.len(), 43);
        assert!(n
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_ne!(n, random_nonce().unwrap());
        assert!(asks_openid("openid fhirUser launch/patient"));
        assert!(asks_openid("launch/patient  openid"));
        assert!(!asks_openid("launch/patient patient/*.read openidx"));
        assert!(!asks_openid(""));
    }
}
