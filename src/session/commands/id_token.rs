//! `id-token [TOKEN]`: verify an id_token as a relying party does: discover the issuer's
//! openid-configuration, fetch its JWKS, check signature and claims, and read `fhirUser`.

use jsonwebtoken::jwk::{Jwk, JwkSet};
use serde_json::{json, Map, Value};

use super::super::args::Args;
use super::super::context::{http_failure, Ctx};
use super::super::jwt::{self, Check, Decoded, Expect, NonceExpected, Verdict};
use super::super::output::{CommandError, Output, Table};
use super::super::target::Endpoints;
use super::super::{vars, when};
use super::fetch::human_name;
use crate::server::clock;

/// The resource types a `fhirUser` may name (SMART App Launch 2.2).
const USER_TYPES: &[&str] = &["Patient", "Practitioner", "RelatedPerson", "Person"];

pub(super) fn id_token(ctx: &mut Ctx, args: &Args) -> Result<(), CommandError> {
    let token = match args.positional(0) {
        Some(t) => t.trim().to_string(),
        None => ctx.var("id_token").map_err(|e| {
            e.hint("`exchange` binds $id_token when the scope had openid and fhirUser (or profile): authorize --scope \"openid fhirUser launch/patient patient/*.read\" --as daniel-adams:demo-password, then exchange")
        })?,
    };
    let decoded = jwt::decode_unverified(&token).map_err(|e| {
        CommandError::new("NotAJwt", format!("this is not an id_token: {e}"))
            .hint("give the id_token from a token response (`exchange` binds it as $id_token), not the access or refresh token")
    })?;
    let endpoints = ctx.endpoints()?;
    let iss = decoded
        .claims
        .get("iss")
        .and_then(Value::as_str)
        .map(str::to_string);
    let (issuer, config, from_target) = discover(ctx, &endpoints, iss.as_deref())?;
    let jwks_uri = config
        .get("jwks_uri")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            CommandError::new(
                "DiscoveryError",
                format!("{issuer}/.well-known/openid-configuration has no jwks_uri"),
            )
            .hint("the server does not publish its signing keys, so no id_token of it can be verified")
        })?
        .to_string();
    let jwks = fetch_jwks(ctx, &jwks_uri)?;
    let nonce = expected_nonce(ctx, &token);
    let client_id = ctx.var_opt("client_id");
    let now = clock::now();
    let mut checks = jwt::verify(
        &token,
        &decoded,
        &jwks,
        &Expect {
            issuer: &issuer,
            client_id: client_id.as_deref(),
            nonce,
            now,
        },
    );
    checks.insert(
        4,
        if from_target {
            Check::new("issuer is the target server", Verdict::Passed, &issuer)
        } else {
            Check::new(
                "issuer is the target server",
                Verdict::Failed,
                format!(
                    "{issuer} is not the target {}: `connect {issuer}` first to trust that issuer",
                    endpoints.base
                ),
            )
        },
    );
    checks.push(fhir_user(ctx, &decoded, &endpoints));

    ctx.emit(Output::Table(claims_table(&decoded, now, gloss)));
    ctx.emit(Output::Table(checks_table(&checks)));
    ctx.state.vars.set(
        "response",
        json!({"header": decoded.header, "claims": decoded.claims, "issuer": issuer, "jwks_uri": jwks_uri, "checks": checks}),
    );
    let line = summary(&checks)?;
    ctx.emit(Output::Text(line));
    Ok(())
}

/// The issuer and its discovery document: the target's (at its base URL), or else the
/// id_token's own `iss`'s, saying so; and whether it is the target's.
fn discover(
    ctx: &mut Ctx,
    endpoints: &Endpoints,
    iss: Option<&str>,
) -> Result<(String, Value, bool), CommandError> {
    let target = fetch_configuration(ctx, &endpoints.base)?;
    let target_issuer = target
        .as_ref()
        .and_then(|doc| doc.get("issuer"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let other = iss
        .filter(|i| i.starts_with("http://") || i.starts_with("https://"))
        .filter(|i| target_issuer.as_deref() != Some(*i) && *i != endpoints.base);
    if let Some(iss) = other {
        if let Some(doc) = fetch_configuration(ctx, iss)? {
            let why = match &target_issuer {
                Some(t) => format!("not the target's issuer {t}"),
                None => format!("and {} has no openid-configuration", endpoints.base),
            };
            ctx.emit(Output::Note(format!(
                "The id_token's iss is {iss}, {why}: verifying with {iss}'s own discovery document and keys."
            )));
            return Ok((issuer_of(&doc, iss, ctx), doc, false));
        }
    }
    match target {
        Some(doc) => Ok((issuer_of(&doc, &endpoints.base, ctx), doc, true)),
        None => Err(CommandError::new(
            "DiscoveryError",
            format!(
                "{}/.well-known/openid-configuration answered no discovery document",
                endpoints.base
            ),
        )
        .hint("the target server is not an OpenID Provider; `connect` to one that is (its smart-configuration lists the capability sso-openid-connect)")),
    }
}

/// The document's `issuer` (or the URL it came from, when it names none).
fn issuer_of(doc: &Value, fetched_from: &str, ctx: &mut Ctx) -> String {
    match doc.get("issuer").and_then(Value::as_str) {
        Some(issuer) => {
            if issuer != fetched_from.trim_end_matches('/') {
                ctx.emit(Output::Note(format!("The discovery document at {fetched_from} names the issuer {issuer}; OpenID Connect Discovery §4.3 wants them equal.")));
            }
            issuer.to_string()
        }
        None => fetched_from.trim_end_matches('/').to_string(),
    }
}

/// GET `{issuer}/.well-known/openid-configuration`: the document, or `None` when there is
/// none (a network failure is an error).
fn fetch_configuration(ctx: &mut Ctx, issuer: &str) -> Result<Option<Value>, CommandError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let client = ctx.state.client.clone();
    let reply = ctx
        .request(client.get(&url, None))
        .map_err(|e| e.hint(format!("{url} could not be reached; check the network and that the server runs (`connect` shows the target)")))?;
    Ok(reply
        .json()
        .filter(|doc| reply.ok() && doc.is_object())
        .cloned())
}

/// The issuer's public keys; keys of a kind this build cannot read are left out, with a note.
fn fetch_jwks(ctx: &mut Ctx, uri: &str) -> Result<JwkSet, CommandError> {
    let client = ctx.state.client.clone();
    let reply = ctx.request(client.get(uri, None))?;
    if !reply.ok() {
        return Err(http_failure(&reply, &format!("fetching the JWKS at {uri}"))
            .hint("the discovery document's jwks_uri must serve the issuer's public keys"));
    }
    let Some(items) = reply
        .json()
        .and_then(|j| j.get("keys"))
        .and_then(Value::as_array)
    else {
        return Err(CommandError::new(
            "JwksError",
            format!("{uri} is not a JWK Set (a JSON object with a \"keys\" array)"),
        )
        .hint("check the jwks_uri in the issuer's openid-configuration"));
    };
    let keys: Vec<Jwk> = items
        .iter()
        .filter_map(|k| serde_json::from_value(k.clone()).ok())
        .collect();
    if keys.len() < items.len() {
        ctx.emit(Output::Note(format!(
            "{} of the JWKS's {} keys could not be read and were left out.",
            items.len() - keys.len(),
            items.len()
        )));
    }
    Ok(JwkSet { keys })
}

/// The nonce the token should carry: the grant's when it is the token `exchange`/`refresh`
/// bound, else `$nonce`.
fn expected_nonce(ctx: &Ctx, token: &str) -> NonceExpected {
    match &ctx.state.id_token_grant {
        Some(grant) if grant.token == token => grant.nonce.clone(),
        _ => match ctx.var_opt("nonce") {
            Some(n) => NonceExpected::Sent(n),
            None => NonceExpected::Unknown,
        },
    }
}

/// Read `fhirUser` with `$access_token` and name the resource. The token goes only to the
/// target's FHIR base, never to a URL a token names elsewhere.
fn fhir_user(ctx: &mut Ctx, decoded: &Decoded, endpoints: &Endpoints) -> Check {
    const NAME: &str = "fhirUser resolves";
    let Some(reference) = decoded.claims.get("fhirUser").and_then(Value::as_str) else {
        ctx.state.vars.unset("fhir_user");
        return Check::new(
            NAME,
            Verdict::NotChecked,
            "no fhirUser claim (the scope had no fhirUser)",
        );
    };
    let base = format!("{}/", endpoints.fhir);
    let (url, relative) = if reference.starts_with("http://") || reference.starts_with("https://") {
        (reference.to_string(), false)
    } else {
        (format!("{base}{}", reference.trim_start_matches('/')), true)
    };
    ctx.bind("fhir_user", &url);
    let Some(path) = url.strip_prefix(&base) else {
        return Check::new(
            NAME,
            Verdict::Failed,
            format!(
                "{url} is not on the target's FHIR base {}; $access_token is not sent elsewhere",
                endpoints.fhir
            ),
        );
    };
    let Some(access_token) = ctx.var_opt("access_token") else {
        return Check::new(
            NAME,
            Verdict::NotChecked,
            "no $access_token to read it with",
        );
    };
    let client = ctx.state.client.clone();
    let reply = match ctx.request(client.get(&url, Some(&access_token))) {
        Ok(reply) => reply,
        Err(e) => return Check::new(NAME, Verdict::Failed, e.message),
    };
    if !reply.ok() {
        return Check::new(
            NAME,
            Verdict::Failed,
            http_failure(&reply, &format!("GET {path}")).message,
        );
    }
    let resource = reply.json().cloned().unwrap_or(Value::Null);
    let kind = resource["resourceType"].as_str().unwrap_or_default();
    let id = resource["id"].as_str().unwrap_or_default();
    let named = format!("{kind}/{id}");
    if !USER_TYPES.contains(&kind) || path.trim_end_matches('/') != named {
        return Check::new(
            NAME,
            Verdict::Failed,
            format!(
                "{path} answered {named:?}, not a {} with that id",
                USER_TYPES.join("/")
            ),
        );
    }
    let note = if relative {
        " (a relative reference, read on the FHIR base; SMART wants it absolute)"
    } else {
        ""
    };
    Check::new(
        NAME,
        Verdict::Passed,
        format!("{named}: {}{note}", human_name(&resource)),
    )
}

/// What a claim or header parameter is, for the table.
fn gloss(name: &str) -> &'static str {
    match name {
        "alg" => "signature algorithm",
        "kid" => "which of the issuer's keys signed it",
        "typ" => "token type",
        "iss" => "issuer",
        "sub" => "the user, as the issuer names them",
        "aud" => "the client it was issued to",
        "azp" => "the client it was issued to, among several audiences",
        "nonce" => "ties it to one authorize request",
        "fhirUser" => "the user as a FHIR resource",
        "profile" => "the user as a FHIR resource (the legacy profile scope)",
        "name" => "display name",
        "at_hash" => "hash of the access token issued with it",
        _ => "",
    }
}

/// A JWT's header and claims as rows: part, name, value, and what it means (times in words,
/// other names through `gloss`).
pub(super) fn claims_table(decoded: &Decoded, now: i64, gloss: fn(&str) -> &'static str) -> Table {
    let rows = |part: &str, map: &Map<String, Value>| -> Vec<Vec<String>> {
        map.iter()
            .map(|(name, value)| {
                let meaning = match value.as_i64().and_then(|t| when::claim_words(name, t, now)) {
                    Some(words) => format!("{}, {words}", when::utc(value.as_i64().unwrap_or(0))),
                    None => gloss(name).to_string(),
                };
                vec![part.into(), name.clone(), vars::as_text(value), meaning]
            })
            .collect()
    };
    let mut all = rows("header", &decoded.header);
    all.extend(rows("claim", &decoded.claims));
    Table {
        columns: vec![
            "part".into(),
            "name".into(),
            "value".into(),
            "meaning".into(),
        ],
        rows: all,
        json: Some(json!({"header": decoded.header, "claims": decoded.claims})),
    }
}

fn checks_table(checks: &[Check]) -> Table {
    Table {
        columns: vec!["check".into(), "result".into(), "detail".into()],
        rows: checks
            .iter()
            .map(|c| vec![c.check.clone(), c.verdict.word().into(), c.detail.clone()])
            .collect(),
        json: serde_json::to_value(checks).ok(),
    }
}

/// "All 11 checks passed.", or the error that says how many failed and which.
fn summary(checks: &[Check]) -> Result<String, CommandError> {
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| c.verdict == Verdict::Failed)
        .map(|c| c.check.as_str())
        .collect();
    let unchecked = checks
        .iter()
        .filter(|c| c.verdict == Verdict::NotChecked)
        .count();
    let made = checks.len() - unchecked;
    let aside = match unchecked {
        0 => String::new(),
        n => format!(" ({n} not checked)"),
    };
    if failed.is_empty() {
        return Ok(format!("All {made} checks passed{aside}."));
    }
    Err(CommandError::new(
        "IdTokenInvalid",
        format!(
            "{} of {made} checks failed{aside}: {}",
            failed.len(),
            failed.join(", ")
        ),
    )
    .hint("do not trust this id_token; the table says why each check failed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_counts_failures_and_leaves_out_what_was_not_checked() {
        let mut checks = vec![
            Check::new("a", Verdict::Passed, ""),
            Check::new("b", Verdict::NotChecked, ""),
        ];
        assert_eq!(
            summary(&checks).unwrap(),
            "All 1 checks passed (1 not checked)."
        );
        checks.push(Check::new("c", Verdict::Failed, ""));
        checks.push(Check::new("d", Verdict::Failed, ""));
        let e = summary(&checks).unwrap_err();
        assert_eq!(e.kind, "IdTokenInvalid");
        assert_eq!(e.message, "2 of 3 checks failed (1 not checked): c, d");
    }

    #[test]
    fn time_claims_read_in_words_and_others_are_glossed() {
        let now = 1_700_000_000;
        let decoded = Decoded {
            header: serde_json::from_value(json!({"alg": "RS256"})).unwrap(),
            claims: serde_json::from_value(json!({"exp": now + 3599, "sub": "x"})).unwrap(),
        };
        let t = claims_table(&decoded, now, gloss);
        assert_eq!(t.rows[0], ["header", "alg", "RS256", "signature algorithm"]);
        assert_eq!(t.rows[1][3], "2023-11-14 23:13:19 UTC, expires in 59 min");
        assert_eq!(t.rows[2][1], "sub");
    }
}
