//! Reading an id_token: its header and claims without verification, then each check a
//! relying party makes (signature against a JWKS, alg, iss, aud, times, nonce), one by one
//! so a failure is a row that says why rather than a single "invalid token".

use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};

/// How far an `iat` may be ahead of this clock before it counts as "in the future".
pub const CLOCK_SKEW: i64 = 60;

/// A JWS's header and claims, decoded but not verified.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The JOSE header.
    pub header: Map<String, Value>,
    /// The payload's claims.
    pub claims: Map<String, Value>,
}

/// Why a token is not a readable JWT.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NotJwt {
    /// No dots: an opaque token.
    #[error("it has no dots, so it is an opaque token, not a JWT (an access or refresh token?)")]
    Opaque,
    /// Five parts: encrypted.
    #[error("it has five parts: an encrypted token (JWE), which cannot be read without the client's private key")]
    Encrypted,
    /// Some other number of parts.
    #[error("it has {0} dot-separated parts; a signed JWT has three (header.payload.signature)")]
    Parts(usize),
    /// A part that is not base64url.
    #[error("its {0} is not base64url")]
    Base64(&'static str),
    /// A part that is not a JSON object.
    #[error("its {0} is not a JSON object")]
    Json(&'static str),
}

/// Split a compact JWS and decode its header and payload.
pub fn decode_unverified(token: &str) -> Result<Decoded, NotJwt> {
    let parts: Vec<&str> = token.trim().split('.').collect();
    match parts.len() {
        3 => {}
        1 => return Err(NotJwt::Opaque),
        5 => return Err(NotJwt::Encrypted),
        n => return Err(NotJwt::Parts(n)),
    }
    let object = |part: &str, what: &'static str| -> Result<Map<String, Value>, NotJwt> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part.trim_end_matches('='))
            .map_err(|_| NotJwt::Base64(what))?;
        match serde_json::from_slice(&bytes) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(NotJwt::Json(what)),
        }
    };
    Ok(Decoded {
        header: object(parts[0], "header")?,
        claims: object(parts[1], "payload")?,
    })
}

/// Where a token came from, for the nonce check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NonceExpected {
    /// A code exchange whose authorize request sent this nonce.
    Sent(String),
    /// A code exchange whose authorize request sent none.
    NoneSent,
    /// A refresh (OpenID Connect Core §12.2: no nonce expected; one that is there must be
    /// the original authentication's, given here when known).
    Refresh(Option<String>),
    /// Not known (a token given by hand and no `$nonce`).
    Unknown,
}

/// What the token is checked against.
#[derive(Debug, Clone)]
pub struct Expect<'a> {
    /// The issuer from the discovery document.
    pub issuer: &'a str,
    /// Our client, when one is registered.
    pub client_id: Option<&'a str>,
    /// The nonce the token should carry.
    pub nonce: NonceExpected,
    /// Unix time now.
    pub now: i64,
}

/// A check's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// It held.
    Passed,
    /// It did not.
    Failed,
    /// It could not be made (said why); not counted as a failure.
    NotChecked,
}

impl Verdict {
    /// How the table shows it.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::Failed => "FAILED",
            Verdict::NotChecked => "not checked",
        }
    }
}

/// One check and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Check {
    /// What was checked.
    pub check: String,
    /// Whether it held.
    pub verdict: Verdict,
    /// Why, in a few words.
    pub detail: String,
}

impl Check {
    /// A check with its verdict.
    pub fn new(check: &str, verdict: Verdict, detail: impl Into<String>) -> Check {
        Check {
            check: check.to_string(),
            verdict,
            detail: detail.into(),
        }
    }

    fn holds(check: &str, ok: bool, passed: String, failed: String) -> Check {
        if ok {
            Check::new(check, Verdict::Passed, passed)
        } else {
            Check::new(check, Verdict::Failed, failed)
        }
    }
}

/// Every check of `token` (decoded as `decoded`) against the issuer's keys and `expect`,
/// in the order a relying party makes them.
pub fn verify(token: &str, decoded: &Decoded, jwks: &JwkSet, expect: &Expect) -> Vec<Check> {
    let text = |map: &Map<String, Value>, key: &str| {
        map.get(key).and_then(Value::as_str).map(str::to_string)
    };
    let alg = text(&decoded.header, "alg").unwrap_or_default();
    let kid = text(&decoded.header, "kid");
    let mut checks = vec![Check::holds(
        "alg is RS256",
        alg == "RS256",
        "RS256".into(),
        if alg.is_empty() {
            "the header has no alg".into()
        } else {
            format!("alg is {alg:?}; only RS256 is accepted (none and HMAC are refused)")
        },
    )];
    let key = kid.as_deref().and_then(|k| jwks.find(k));
    checks.push(match (&kid, key) {
        (Some(k), Some(_)) => Check::new("kid found in JWKS", Verdict::Passed, k.clone()),
        (Some(k), None) => Check::new(
            "kid found in JWKS",
            Verdict::Failed,
            format!("no key {k:?} among the JWKS's {} keys", jwks.keys.len()),
        ),
        (None, _) => Check::new(
            "kid found in JWKS",
            Verdict::Failed,
            "the header has no kid",
        ),
    });
    checks.push(signature(token, &alg, key));
    let iss = text(&decoded.claims, "iss");
    checks.push(Check::holds(
        "iss is the issuer",
        iss.as_deref() == Some(expect.issuer),
        expect.issuer.to_string(),
        match iss {
            Some(iss) => format!("{iss:?}, but the issuer is {:?}", expect.issuer),
            None => "no iss claim".into(),
        },
    ));
    checks.push(audience(&decoded.claims, expect.client_id));
    checks.push(match text(&decoded.claims, "sub") {
        Some(sub) if !sub.is_empty() && sub.len() <= 255 => {
            Check::new("sub is present", Verdict::Passed, sub)
        }
        Some(sub) => Check::new(
            "sub is present",
            Verdict::Failed,
            format!("sub has {} characters; it must have 1 to 255", sub.len()),
        ),
        None => Check::new("sub is present", Verdict::Failed, "no sub claim"),
    });
    let time = |name: &str| decoded.claims.get(name).and_then(Value::as_i64);
    checks.push(match time("exp") {
        Some(exp) => Check::holds(
            "not expired",
            exp > expect.now,
            super::when::claim_words("exp", exp, expect.now).unwrap_or_default(),
            super::when::claim_words("exp", exp, expect.now).unwrap_or_default(),
        ),
        None => Check::new("not expired", Verdict::Failed, "no exp claim (a number)"),
    });
    checks.push(match time("iat") {
        Some(iat) => Check::holds(
            "iat is not in the future",
            iat <= expect.now + CLOCK_SKEW,
            super::when::claim_words("iat", iat, expect.now).unwrap_or_default(),
            format!(
                "{}: ahead of this clock by more than {CLOCK_SKEW} s",
                super::when::claim_words("iat", iat, expect.now).unwrap_or_default()
            ),
        ),
        None => Check::new(
            "iat is not in the future",
            Verdict::Failed,
            "no iat claim (a number)",
        ),
    });
    checks.push(nonce(text(&decoded.claims, "nonce"), &expect.nonce));
    checks
}

fn signature(token: &str, alg: &str, key: Option<&jsonwebtoken::jwk::Jwk>) -> Check {
    const NAME: &str = "signature verifies";
    if alg != "RS256" {
        return Check::new(
            NAME,
            Verdict::Failed,
            format!("not verified: alg {alg:?} is refused"),
        );
    }
    let Some(jwk) = key else {
        return Check::new(NAME, Verdict::Failed, "not verified: no key for this kid");
    };
    let Some((message, sig)) = token.trim().rsplit_once('.') else {
        return Check::new(NAME, Verdict::Failed, "no signature part");
    };
    let result = DecodingKey::from_jwk(jwk).and_then(|key| {
        jsonwebtoken::crypto::verify(sig, message.as_bytes(), &key, Algorithm::RS256)
    });
    match result {
        Ok(true) => Check::new(NAME, Verdict::Passed, "RS256 with the JWKS key"),
        Ok(false) => Check::new(
            NAME,
            Verdict::Failed,
            "the signature does not match: the token was altered or signed by another key",
        ),
        Err(e) => Check::new(
            NAME,
            Verdict::Failed,
            format!("the JWKS key cannot verify RS256: {e}"),
        ),
    }
}

fn audience(claims: &Map<String, Value>, client_id: Option<&str>) -> Check {
    const NAME: &str = "aud is our client";
    let Some(client_id) = client_id else {
        return Check::new(
            NAME,
            Verdict::NotChecked,
            "no $client_id to compare with (run `register`)",
        );
    };
    let auds: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => return Check::new(NAME, Verdict::Failed, "no aud claim"),
    };
    if !auds.contains(&client_id) {
        return Check::new(
            NAME,
            Verdict::Failed,
            format!("aud is {}, not {client_id:?}", auds.join(", ")),
        );
    }
    // OpenID Connect Core §3.1.3.7: with several audiences, azp names the one it was for.
    let azp = claims.get("azp").and_then(Value::as_str);
    if auds.len() > 1 && azp != Some(client_id) {
        return Check::new(
            NAME,
            Verdict::Failed,
            format!("several audiences and azp is {azp:?}, not {client_id:?}"),
        );
    }
    Check::new(NAME, Verdict::Passed, client_id)
}

fn nonce(got: Option<String>, expected: &NonceExpected) -> Check {
    const NAME: &str = "nonce matches";
    match (got, expected) {
        (Some(got), NonceExpected::Sent(sent)) => Check::holds(
            NAME,
            &got == sent,
            format!("{got} ($nonce)"),
            format!("{got:?}, but $nonce is {sent:?}: this token answers another request"),
        ),
        (None, NonceExpected::Sent(sent)) => Check::new(
            NAME,
            Verdict::Failed,
            format!("no nonce claim, but the authorize request sent {sent:?}"),
        ),
        (None, NonceExpected::Refresh(_)) => Check::new(
            NAME,
            Verdict::Passed,
            "no nonce: an id_token from a refresh carries none (OpenID Connect Core §12.2)",
        ),
        (None, NonceExpected::NoneSent) => Check::new(
            NAME,
            Verdict::Passed,
            "no nonce was sent and none came back",
        ),
        (Some(got), NonceExpected::NoneSent) => Check::new(
            NAME,
            Verdict::Failed,
            format!("nonce {got:?}, but the authorize request sent none"),
        ),
        (Some(got), NonceExpected::Refresh(original)) => Check::holds(
            NAME,
            original.as_ref() == Some(&got),
            format!("{got}, the original sign-in's (a refreshed id_token should carry none, OpenID Connect Core §12.2)"),
            format!("nonce {got:?} in an id_token from a refresh: it should carry none, and never another than the original sign-in's (OpenID Connect Core §12.2)"),
        ),
        (got, NonceExpected::Unknown) => Check::new(
            NAME,
            Verdict::NotChecked,
            match got {
                Some(got) => format!("nonce {got:?}, and no $nonce to compare with"),
                None => "no nonce claim, and no $nonce to compare with".into(),
            },
        ),
    }
}

/// How many checks failed.
pub fn failures(checks: &[Check]) -> usize {
    checks
        .iter()
        .filter(|c| c.verdict == Verdict::Failed)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;
    use serde_json::json;
    use std::sync::OnceLock;

    const NOW: i64 = 1_700_000_000;
    const ISSUER: &str = "http://localhost:9000";
    const CLIENT: &str = "client-1";

    /// One key pair for every test: its PEM and its JWKS (kid "k1").
    fn keys() -> &'static (String, JwkSet) {
        static KEYS: OnceLock<(String, JwkSet)> = OnceLock::new();
        KEYS.get_or_init(|| {
            let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
            let pem = private
                .to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)
                .unwrap()
                .to_string();
            let b64 =
                |bytes: Vec<u8>| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
            let jwks = serde_json::from_value(json!({"keys": [{
                "kty": "RSA", "use": "sig", "alg": "RS256", "kid": "k1",
                "n": b64(private.n().to_bytes_be()), "e": b64(private.e().to_bytes_be()),
            }]}))
            .unwrap();
            (pem, jwks)
        })
    }

    fn claims() -> Value {
        json!({"iss": ISSUER, "sub": "daniel-adams", "aud": CLIENT, "exp": NOW + 3599,
               "iat": NOW - 60, "auth_time": NOW - 120, "nonce": "n-1",
               "fhirUser": format!("{ISSUER}/api/fhir/Patient/smart-1288992")})
    }

    fn sign(claims: &Value, kid: &str) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.into());
        header.typ = Some("JWT".into());
        let key = EncodingKey::from_rsa_pem(keys().0.as_bytes()).unwrap();
        encode(&header, claims, &key).unwrap()
    }

    fn expect(nonce: NonceExpected) -> Expect<'static> {
        Expect {
            issuer: ISSUER,
            client_id: Some(CLIENT),
            nonce,
            now: NOW,
        }
    }

    fn run(token: &str, nonce: NonceExpected) -> Vec<Check> {
        let decoded = decode_unverified(token).unwrap();
        verify(token, &decoded, &keys().1, &expect(nonce))
    }

    /// The names of the checks that failed.
    fn failed(checks: &[Check]) -> Vec<&str> {
        checks
            .iter()
            .filter(|c| c.verdict == Verdict::Failed)
            .map(|c| c.check.as_str())
            .collect()
    }

    fn sent() -> NonceExpected {
        NonceExpected::Sent("n-1".into())
    }

    #[test]
    fn a_good_token_passes_every_check() {
        let checks = run(&sign(&claims(), "k1"), sent());
        assert_eq!(failed(&checks), Vec::<&str>::new(), "{checks:#?}");
        assert_eq!(failures(&checks), 0);
        assert!(checks.iter().all(|c| c.verdict == Verdict::Passed));
        assert_eq!(checks.len(), 9);
    }

    #[test]
    fn a_tampered_payload_or_signature_fails_the_signature_only() {
        let token = sign(&claims(), "k1");
        let (head, rest) = token.split_once('.').unwrap();
        let (_, signature) = rest.split_once('.').unwrap();
        let mut other = claims();
        other["sub"] = json!("joseph-ross");
        let forged_payload = sign(&other, "k1");
        let forged_payload = forged_payload.split('.').nth(1).unwrap();
        let forged = format!("{head}.{forged_payload}.{signature}");
        assert_eq!(failed(&run(&forged, sent())), ["signature verifies"]);

        let mut bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(signature)
            .unwrap();
        bytes[10] ^= 1;
        let flipped = format!(
            "{}.{}",
            token.rsplit_once('.').unwrap().0,
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        );
        let checks = run(&flipped, sent());
        assert_eq!(failed(&checks), ["signature verifies"]);
        assert!(checks[2].detail.contains("altered"), "{checks:#?}");
    }

    #[test]
    fn wrong_aud_iss_and_times_each_fail_their_own_check() {
        let mut c = claims();
        c["aud"] = json!("someone-else");
        assert_eq!(failed(&run(&sign(&c, "k1"), sent())), ["aud is our client"]);
        c["aud"] = json!([CLIENT, "someone-else"]);
        assert_eq!(failed(&run(&sign(&c, "k1"), sent())), ["aud is our client"]);
        c["azp"] = json!(CLIENT);
        assert!(failed(&run(&sign(&c, "k1"), sent())).is_empty());

        let mut c = claims();
        c["exp"] = json!(NOW - 120);
        let checks = run(&sign(&c, "k1"), sent());
        assert_eq!(failed(&checks), ["not expired"]);
        assert_eq!(checks[6].detail, "expired 2 min ago");

        let mut c = claims();
        c["iat"] = json!(NOW + 3600);
        assert_eq!(
            failed(&run(&sign(&c, "k1"), sent())),
            ["iat is not in the future"]
        );
        c["iat"] = json!(NOW + CLOCK_SKEW);
        assert!(failed(&run(&sign(&c, "k1"), sent())).is_empty());

        let mut c = claims();
        c["iss"] = json!("http://evil.example");
        assert_eq!(failed(&run(&sign(&c, "k1"), sent())), ["iss is the issuer"]);
        c.as_object_mut().unwrap().remove("iss");
        c.as_object_mut().unwrap().remove("exp");
        assert_eq!(
            failed(&run(&sign(&c, "k1"), sent())),
            ["iss is the issuer", "not expired"]
        );
    }

    #[test]
    fn nonces_match_the_request_or_fail() {
        let token = sign(&claims(), "k1");
        let checks = run(&token, NonceExpected::Sent("n-2".into()));
        assert_eq!(failed(&checks), ["nonce matches"]);
        assert!(checks[8].detail.contains("another request"));
        assert_eq!(
            failed(&run(&token, NonceExpected::NoneSent)),
            ["nonce matches"]
        );
        assert_eq!(
            run(&token, NonceExpected::Unknown)[8].verdict,
            Verdict::NotChecked
        );
        assert!(failed(&run(&token, NonceExpected::Refresh(Some("n-1".into())))).is_empty());
        assert_eq!(
            failed(&run(&token, NonceExpected::Refresh(None))),
            ["nonce matches"]
        );

        let mut c = claims();
        c.as_object_mut().unwrap().remove("nonce");
        let bare = sign(&c, "k1");
        assert_eq!(failed(&run(&bare, sent())), ["nonce matches"]);
        let checks = run(&bare, NonceExpected::Refresh(Some("n-1".into())));
        assert!(failed(&checks).is_empty());
        assert!(checks[8].detail.contains("§12.2"));
        assert!(failed(&run(&bare, NonceExpected::NoneSent)).is_empty());
    }

    #[test]
    fn an_unknown_or_missing_kid_finds_no_key() {
        let checks = run(&sign(&claims(), "k2"), sent());
        assert_eq!(failed(&checks), ["kid found in JWKS", "signature verifies"]);
        assert!(checks[1].detail.contains("\"k2\""));
        let key = EncodingKey::from_rsa_pem(keys().0.as_bytes()).unwrap();
        let no_kid = encode(&Header::new(Algorithm::RS256), &claims(), &key).unwrap();
        assert_eq!(
            failed(&run(&no_kid, sent())),
            ["kid found in JWKS", "signature verifies"]
        );
    }

    #[test]
    fn alg_none_and_hmac_are_refused() {
        let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let none = format!(
            "{}.{}.",
            b64(json!({"alg": "none", "kid": "k1", "typ": "JWT"})),
            b64(claims())
        );
        let checks = run(&none, sent());
        assert_eq!(failed(&checks), ["alg is RS256", "signature verifies"]);
        assert!(checks[2].detail.contains("refused"));

        // HS256 keyed with the public modulus: the classic confusion attack.
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        let n = keys().1.keys[0].clone();
        let secret = serde_json::to_vec(&n).unwrap();
        let hmac = encode(&header, &claims(), &EncodingKey::from_secret(&secret)).unwrap();
        assert_eq!(
            failed(&run(&hmac, sent())),
            ["alg is RS256", "signature verifies"]
        );
    }

    #[test]
    fn tokens_that_are_not_jwts_say_what_they_are() {
        assert_eq!(decode_unverified("abc123"), Err(NotJwt::Opaque));
        assert_eq!(decode_unverified("a.b.c.d.e"), Err(NotJwt::Encrypted));
        assert_eq!(decode_unverified("a.b"), Err(NotJwt::Parts(2)));
        assert_eq!(decode_unverified("!!.e30.x"), Err(NotJwt::Base64("header")));
        assert_eq!(decode_unverified("e30.W10.x"), Err(NotJwt::Json("payload")));
        let d = decode_unverified(&sign(&claims(), "k1")).unwrap();
        assert_eq!(d.header["kid"], "k1");
        assert_eq!(d.claims["sub"], "daniel-adams");
    }
}
