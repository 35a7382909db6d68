//! The helper commands' usage: one table that drives flag parsing, `help`, inspect and
//! completion, so they can never disagree.

/// One `--flag`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag {
    /// The name without dashes.
    pub name: &'static str,
    /// The value's placeholder, or `None` for a switch.
    pub value: Option<&'static str>,
    /// Whether it may be given more than once.
    pub repeats: bool,
    /// Whether its value may be left out (`--launch` alone, or `--launch ID`).
    pub optional: bool,
    /// One line of help.
    pub help: &'static str,
}

/// One helper command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandSpec {
    /// Its name.
    pub name: &'static str,
    /// `register [--name N] …`.
    pub usage: &'static str,
    /// What it does, in one line.
    pub summary: &'static str,
    /// Its flags.
    pub flags: &'static [Flag],
    /// Positional arguments accepted, at least and at most.
    pub positionals: (usize, usize),
    /// What a successful run binds.
    pub binds: &'static str,
}

const fn switch(name: &'static str, help: &'static str) -> Flag {
    Flag {
        name,
        value: None,
        repeats: false,
        optional: false,
        help,
    }
}

const fn valued(name: &'static str, value: &'static str, help: &'static str) -> Flag {
    Flag {
        name,
        value: Some(value),
        repeats: false,
        optional: false,
        help,
    }
}

const fn repeated(name: &'static str, value: &'static str, help: &'static str) -> Flag {
    Flag {
        name,
        value: Some(value),
        repeats: true,
        optional: false,
        help,
    }
}

const fn optional(name: &'static str, value: &'static str, help: &'static str) -> Flag {
    Flag {
        name,
        value: Some(value),
        repeats: false,
        optional: true,
        help,
    }
}

/// Every helper command, in the order `help` lists them.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "server",
        usage: "server [start|stop|status] [--port N] [--host H]",
        summary: "Start, stop or describe the embedded SMART server (it also starts on first use).",
        flags: &[valued("port", "N", "port to listen on (default 9000, or a free one if taken)"), valued("host", "H", "address to listen on (default 127.0.0.1)")],
        positionals: (0, 1),
        binds: "",
    },
    CommandSpec {
        name: "connect",
        usage: "connect [URL | embedded]",
        summary: "Target a remote SMART server by its base or FHIR URL (discovers its endpoints), or go back to the embedded one; with no URL, show the target.",
        flags: &[],
        positionals: (0, 1),
        binds: "",
    },
    CommandSpec {
        name: "register",
        usage: "register [--name N] [--redirect-uri U]... [--scope S] [--public | --auth private_key_jwt [--jwks J | --jwks-uri U]] [--launch-uri URL] | register --backend [--scope S]",
        summary: "Register a client (POST /oauth/register, RFC 7591). Defaults are the seed walkthrough's. --auth private_key_jwt registers the public keys ($jwks from `keys`) instead of getting a secret; --backend registers a backend service (client_credentials, private_key_jwt, system/ scopes, no redirect URI). --launch-uri makes it an EHR-launchable app (initiate_login_uri): the EHR opens that URL with iss and launch.",
        flags: &[
            valued("name", "N", "client_name (default \"SMART Test Client\"; \"SMART Backend Service\" with --backend)"),
            repeated("redirect-uri", "U", "a redirect URI (default http://localhost:9001/authorized)"),
            valued("scope", "S", "scopes (default \"launch/patient patient/*.read offline_access\"; \"system/*.rs\" with --backend)"),
            switch("public", "register a public client: no secret, PKCE required"),
            valued("auth", "METHOD", "token_endpoint_auth_method: private_key_jwt (keys), client_secret_basic, none"),
            valued("jwks", "J", "with private_key_jwt: the public JWK Set as JSON (default $jwks)"),
            valued("jwks-uri", "U", "with private_key_jwt: a URL serving the public JWK Set, instead of --jwks"),
            switch("backend", "a backend service: grant_types [client_credentials], private_key_jwt with $jwks, system/ scopes"),
            valued("launch-uri", "URL", "the app's launch URL, sent as initiate_login_uri (https, or http on localhost; e.g. http://localhost:9001/launch)"),
        ],
        positionals: (0, 0),
        binds: "client_id, client_secret, redirect_uri, scope, launch_uri (with --launch-uri), token_endpoint_auth_method (private_key_jwt)",
    },
    CommandSpec {
        name: "keys",
        usage: "keys [--alg ES384|RS384|ES256|RS256] | keys show",
        summary: "Make a key pair for a client that authenticates with signed assertions (private_key_jwt), kept in the session; the private key is never shown. Binds the public JWK Set (one key with kid, alg, use sig) as $jwks. `keys show` shows the public set.",
        flags: &[valued("alg", "ALG", "signing algorithm: ES384 (default, EC P-384), RS384 (RSA 2048), ES256, RS256")],
        positionals: (0, 1),
        binds: "jwks, kid",
    },
    CommandSpec {
        name: "token",
        usage: "token [--user U] [--patient P] [--lifetime 3h] [--approval-expires 180d|UNIX] [--scope S] [--client ID]",
        summary: "Mint tokens without the browser (POST /oauth/debug/token).",
        flags: &[
            valued("user", "U", "username (default daniel-adams)"),
            valued("patient", "P", "patient id (default: the user's own record, smart-1288992 for daniel-adams)"),
            valued("lifetime", "DURATION", "access token lifetime: 3600, 90m, 3h, 2d"),
            valued("approval-expires", "WHEN", "approval end: a duration from now (180d) or a Unix time"),
            valued("scope", "S", "scopes (default: the client's)"),
            valued("client", "ID", "client id (default $client_id)"),
        ],
        positionals: (0, 0),
        binds: "access_token, refresh_token",
    },
    CommandSpec {
        name: "introspect",
        usage: "introspect [TOKEN]",
        summary: "Look a token up (GET /oauth/debug/introspect); default $access_token.",
        flags: &[],
        positionals: (0, 1),
        binds: "",
    },
    CommandSpec {
        name: "fetch",
        usage: "fetch PATH [--no-auth] [--token T] [--open]",
        summary: "GET a FHIR path (Patient/smart-1288992, Observation?category=laboratory) or URL with the bearer token; a Bundle also shows as a table.",
        flags: &[
            switch("no-auth", "send no Authorization header"),
            valued("token", "T", "bearer token (default $access_token)"),
            switch("open", "use the open FHIR endpoint, no token"),
        ],
        positionals: (1, 1),
        binds: "",
    },
    CommandSpec {
        name: "launch",
        usage: "launch [--patient P] [--encounter E|auto] [--user U] [--intent I] [--context REF]... [--banner] [--client ID]",
        summary: "Mint an EHR launch, as the EHR does when someone opens an app from a chart (POST /oauth/debug/launch): binds $launch and $iss, and $launch_url (the URL the EHR would open) when the client registered a launch URL. `authorize --launch` then spends it.",
        flags: &[
            valued("patient", "P", "the patient in context (default smart-1288992)"),
            valued("encounter", "E", "an Encounter id of that patient, or auto for the most recent one (default: no encounter)"),
            valued("user", "U", "the EHR user who launches (default dr-carter)"),
            valued("intent", "I", "SMART intent, free text (e.g. reconcile-medications)"),
            repeated("context", "REF", "a fhirContext reference, Type/id (e.g. Observation/x)"),
            switch("banner", "need_patient_banner true: the app shows the patient banner (the EHR does not)"),
            valued("client", "ID", "bind the launch to this client (default $client_id when set)"),
        ],
        positionals: (0, 0),
        binds: "launch, iss, launch_url (when the client has a launch URL)",
    },
    CommandSpec {
        name: "authorize",
        usage: "authorize [--redirect-uri U] [--scope S] [--state S] [--aud A] [--pkce] [--nonce N] [--launch [ID]] [--as USER[:PASSWORD] [--patient P] [--encounter E] | --listen [--timeout S]]",
        summary: "Build the authorize link; --as approves as that participant through smartnb's own pages (the embedded server, or a smartnb serve reached with connect); --listen catches the browser's redirect, and also the EHR opening the app's launch URL ($launch_uri on the same host). --launch spends an EHR launch (launch= and the launch scope). A scope with openid also sends a random nonce (bound as $nonce); without openid no nonce is sent and $nonce is unbound.",
        flags: &[
            valued("redirect-uri", "U", "redirect URI (default $redirect_uri)"),
            valued("scope", "S", "scopes (default: the client's registration)"),
            valued("state", "S", "state (default: a fresh random value)"),
            valued("aud", "A", "audience (default: the target's FHIR base)"),
            switch("pkce", "send an S256 code challenge (automatic for public clients)"),
            valued("nonce", "N", "OpenID Connect nonce (default: a fresh random one when the scope has openid; given, it is sent even without openid)"),
            valued("client", "ID", "client id (default $client_id)"),
            optional("launch", "ID", "EHR launch: send launch=ID (default $launch) and add the launch scope"),
            valued("as", "USER[:PASSWORD]", "sign in and approve as this participant"),
            valued("patient", "P", "with --as: the patient to pick"),
            valued("encounter", "E", "with --as: the encounter to pick when a standalone launch/encounter asks (an id, or none; default the most recent)"),
            switch("listen", "wait for the browser's redirect on the redirect URI's port (and for the EHR's request to $launch_uri)"),
            valued("timeout", "SECONDS", "with --listen: how long to wait (default 300)"),
        ],
        positionals: (0, 0),
        binds: "state, aud, nonce (with openid), code_verifier, code; launch, iss (when the EHR opens the launch URL)",
    },
    CommandSpec {
        name: "exchange",
        usage: "exchange [CODE]",
        summary: "Exchange an authorization code for tokens (POST /oauth/token, authorization_code); default $code. An id_token in the answer is bound and its nonce compared with $nonce (a warning when it differs or is missing); an answer without one unbinds the previous $id_token. The launch context is bound too: $encounter, $fhir_context (the fhirContext array as JSON text) and $intent, each unbound when the answer has none. A client registered with keys sends a fresh signed assertion instead of a secret.",
        flags: &[],
        positionals: (0, 1),
        binds: "access_token, refresh_token, patient, id_token, encounter, fhir_context, intent, client_assertion",
    },
    CommandSpec {
        name: "refresh",
        usage: "refresh [TOKEN] [--scope S]",
        summary: "Get new tokens with a refresh token (POST /oauth/token, refresh_token); default $refresh_token. A new id_token (which carries no nonce) is bound; an answer without one unbinds the previous $id_token. The launch context the answer repeats is bound as by `exchange`. A client registered with keys sends a fresh signed assertion instead of a secret.",
        flags: &[valued("scope", "S", "narrow the new access token's scopes")],
        positionals: (0, 1),
        binds: "access_token, refresh_token, patient, id_token, encounter, fhir_context, intent, client_assertion",
    },
    CommandSpec {
        name: "backend",
        usage: "backend [--scope S] [--aud URL] [--expires SECONDS] [--replay]",
        summary: "Get a SMART Backend Services token: POST /oauth/token with grant_type client_credentials and an assertion signed by the session's key (iss = sub = $client_id, aud = the token endpoint, exp in 5 min, a fresh jti). --aud, --expires and --replay send a wrong, expired or used assertion, to see the server refuse it.",
        flags: &[
            valued("scope", "S", "system/ scopes (default: the registered ones, else \"system/*.rs\")"),
            valued("aud", "URL", "the assertion's aud (default: the token endpoint)"),
            valued("expires", "SECONDS", "exp this many seconds from now (default 300; negative: already expired)"),
            switch("replay", "send $client_assertion again, jti and all"),
        ],
        positionals: (0, 0),
        binds: "access_token, client_assertion",
    },
    CommandSpec {
        name: "assertion",
        usage: "assertion [JWT]",
        summary: "Decode the last client assertion sent (default $client_assertion): header and claims, times in words, and which key signed it.",
        flags: &[],
        positionals: (0, 1),
        binds: "response",
    },
    CommandSpec {
        name: "simulate",
        usage: "simulate FAULT [--times N] [--delay 2s] [--at authorize|token|fhir] [--client ID] | simulate | simulate clear",
        summary: "Make the server misbehave on purpose for one client (POST /oauth/debug/simulate), to test how an app handles it: the client's next requests get FAULT's answer (an expired token, invalid_grant, 429, 503, a slow answer, …) instead of the real one. `simulate` alone lists the client's queued faults, `simulate clear` removes them. A command whose answer was simulated says so beneath it: `simulated: FAULT (N more)`.",
        flags: &[
            valued("times", "N", "how many requests it answers (default 1; 0: until `simulate clear`)"),
            valued("delay", "DURATION", "slow only: how long the real answer waits: 500ms, 2s, 1.5s (default 2s, at most 60s)"),
            valued("at", "WHERE", "slow only: authorize, token or fhir (default: whichever request comes first)"),
            valued("client", "ID", "the client whose requests it answers (default $client_id)"),
        ],
        positionals: (0, 1),
        binds: "",
    },
    CommandSpec {
        name: "id-token",
        usage: "id-token [TOKEN]",
        summary: "Verify an id_token (default $id_token) as a relying party: discover the issuer's openid-configuration and JWKS, check signature, kid, alg RS256, iss, aud ($client_id), exp, iat, nonce ($nonce; none after a refresh) and read fhirUser with $access_token. Shows header and claims with times in words, then each check; fails when a check fails.",
        flags: &[],
        positionals: (0, 1),
        binds: "fhir_user, response",
    },
    CommandSpec {
        name: "http",
        usage: "http METHOD URL [--json J] [--form k=v]... [--header k:v]... [--basic ID:SECRET] [--bearer T] [--include]",
        summary: "Send any request; a URL starting with / is on the target server. --include also shows the answer's headers (Retry-After, WWW-Authenticate, …).",
        flags: &[
            valued("json", "J", "JSON body"),
            repeated("form", "k=v", "form field (sends application/x-www-form-urlencoded)"),
            repeated("header", "k:v", "request header"),
            valued("basic", "ID:SECRET", "HTTP Basic credentials"),
            valued("bearer", "T", "bearer token"),
            switch("include", "show the response headers too, between the status and the body"),
        ],
        positionals: (2, 2),
        binds: "",
    },
    CommandSpec {
        name: "vars",
        usage: "vars",
        summary: "Show the session's variables.",
        flags: &[],
        positionals: (0, 0),
        binds: "",
    },
    CommandSpec {
        name: "set",
        usage: "set NAME VALUE",
        summary: "Set a variable (use it as $NAME).",
        flags: &[],
        positionals: (2, 2),
        binds: "NAME",
    },
    CommandSpec {
        name: "unset",
        usage: "unset NAME",
        summary: "Forget a variable.",
        flags: &[],
        positionals: (1, 1),
        binds: "",
    },
    CommandSpec {
        name: "help",
        usage: "help [COMMAND]",
        summary: "List the commands, or show one command's usage.",
        flags: &[],
        positionals: (0, 1),
        binds: "",
    },
];

/// The spec of a command by name.
pub fn spec(name: &str) -> Option<&'static CommandSpec> {
    COMMANDS.iter().find(|c| c.name == name)
}

/// Full help for one command: usage, summary, flags, and what it binds.
pub fn help_text(spec: &CommandSpec) -> String {
    let mut text = format!("{}\n\n{}\n", spec.usage, spec.summary);
    if !spec.flags.is_empty() {
        text.push('\n');
        let width = spec
            .flags
            .iter()
            .map(|f| flag_label(f).len())
            .max()
            .unwrap_or(0);
        for flag in spec.flags {
            text.push_str(&format!("  {:width$}  {}\n", flag_label(flag), flag.help));
        }
    }
    if !spec.binds.is_empty() {
        text.push_str(&format!("\nBinds: {}\n", spec.binds));
    }
    if spec.name == "simulate" {
        text.push_str(&faults_text());
    }
    text
}

/// The faults `simulate` takes: name, which requests, what the client gets.
fn faults_text() -> String {
    let width = super::faults::names().map(str::len).max().unwrap_or(0);
    let at = super::faults::FAULTS
        .iter()
        .map(|f| f.at.len())
        .max()
        .unwrap_or(0);
    let mut text = String::from("\nFaults (the request they answer, and what the client gets):\n");
    for fault in super::faults::FAULTS {
        text.push_str(&format!(
            "  {:width$}  {:at$}  {}\n",
            fault.name, fault.at, fault.answer
        ));
    }
    text
}

fn flag_label(flag: &Flag) -> String {
    match flag.value {
        Some(v) if flag.optional => format!("--{} [{v}]", flag.name),
        Some(v) => format!("--{} {v}", flag.name),
        None => format!("--{}", flag.name),
    }
}

/// The closest known name to a misspelling, if any is close enough.
pub fn did_you_mean<'a>(
    wrong: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(wrong, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_helper_has_a_spec_and_help() {
        for name in super::super::parse::HELPERS {
            let s = spec(name).unwrap_or_else(|| panic!("no spec for {name}"));
            assert!(help_text(s).starts_with(name));
        }
        assert_eq!(COMMANDS.len(), super::super::parse::HELPERS.len());
    }

    #[test]
    fn simulate_help_lists_every_fault() {
        let help = help_text(spec("simulate").unwrap());
        for name in super::super::faults::names() {
            assert!(help.contains(&format!("  {name} ")), "{name}: {help}");
        }
        assert!(help.contains("--delay DURATION") && help.contains("429 OperationOutcome"));
    }

    #[test]
    fn misspellings_find_their_command() {
        let names = COMMANDS.iter().map(|c| c.name);
        assert_eq!(did_you_mean("regster", names.clone()), Some("register"));
        assert_eq!(did_you_mean("fetc", names.clone()), Some("fetch"));
        assert_eq!(did_you_mean("xyzzy", names), None);
    }
}
