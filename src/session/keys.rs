//! The session's client key pair for `private_key_jwt` (SMART asymmetric client
//! authentication): generation, the public JWK Set, and signing client assertions
//! (RFC 7523 §3). Keys through RustCrypto (`p256`, `p384`, `rsa`), signatures through
//! `jsonwebtoken`; the private key never leaves this module.

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// How long an assertion the helpers sign is valid: the 5 minutes SMART allows at most.
pub const ASSERTION_LIFETIME: i64 = 300;

/// The `client_assertion_type` of a JWT assertion (RFC 7523 §2.2).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A signing algorithm the session can make keys for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlg {
    /// ECDSA on P-384 with SHA-384 (SMART's recommended default).
    Es384,
    /// RSASSA-PKCS1-v1_5 with SHA-384, a 2048-bit key.
    Rs384,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, a 2048-bit key.
    Rs256,
}

/// Every algorithm, in the order help lists them.
pub const ALGS: &[&str] = &["ES384", "RS384", "ES256", "RS256"];

impl KeyAlg {
    /// The algorithm named `ES384`, `RS384`, … (any case).
    pub fn parse(name: &str) -> Option<KeyAlg> {
        Some(match name.to_ascii_uppercase().as_str() {
            "ES384" => KeyAlg::Es384,
            "RS384" => KeyAlg::Rs384,
            "ES256" => KeyAlg::Es256,
            "RS256" => KeyAlg::Rs256,
            _ => return None,
        })
    }

    /// Its JOSE name.
    pub fn name(self) -> &'static str {
        match self {
            KeyAlg::Es384 => "ES384",
            KeyAlg::Rs384 => "RS384",
            KeyAlg::Es256 => "ES256",
            KeyAlg::Rs256 => "RS256",
        }
    }

    /// What kind of key it signs with, in words.
    pub fn key_kind(self) -> &'static str {
        match self {
            KeyAlg::Es384 => "EC P-384",
            KeyAlg::Es256 => "EC P-256",
            KeyAlg::Rs384 | KeyAlg::Rs256 => "RSA 2048-bit",
        }
    }

    fn jose(self) -> Algorithm {
        match self {
            KeyAlg::Es384 => Algorithm::ES384,
            KeyAlg::Rs384 => Algorithm::RS384,
            KeyAlg::Es256 => Algorithm::ES256,
            KeyAlg::Rs256 => Algorithm::RS256,
        }
    }
}

/// Why a key could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Generation or encoding failed.
    #[error("the key pair could not be made: {0}")]
    Generate(String),
    /// Signing failed.
    #[error("the assertion could not be signed: {0}")]
    Sign(String),
}

/// A key pair: the private half (only as a signing key) and the public JWK.
#[derive(Clone)]
pub struct ClientKey {
    alg: KeyAlg,
    kid: String,
    public: Value,
    signing: EncodingKey,
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private key, not even in a debug print.
        f.debug_struct("ClientKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn generate_error(e: impl std::fmt::Display) -> KeyError {
    KeyError::Generate(e.to_string())
}

impl ClientKey {
    /// A fresh key pair for `alg`.
    pub fn generate(alg: KeyAlg) -> Result<ClientKey, KeyError> {
        let (members, signing) = match alg {
            KeyAlg::Es384 => {
                let secret = p384::SecretKey::random(&mut rsa::rand_core::OsRng);
                ec_parts(&secret.public_key().to_jwk_string(), || {
                    use p384::pkcs8::EncodePrivateKey;
                    secret
                        .to_pkcs8_pem(p384::pkcs8::LineEnding::LF)
                        .map_err(generate_error)
                })?
            }
            KeyAlg::Es256 => {
                let secret = p256::SecretKey::random(&mut rsa::rand_core::OsRng);
                ec_parts(&secret.public_key().to_jwk_string(), || {
                    use p256::pkcs8::EncodePrivateKey;
                    secret
                        .to_pkcs8_pem(p256::pkcs8::LineEnding::LF)
                        .map_err(generate_error)
                })?
            }
            KeyAlg::Rs384 | KeyAlg::Rs256 => rsa_parts()?,
        };
        let kid = thumbprint(&members);
        let mut public = members;
        public["kid"] = json!(kid);
        public["alg"] = json!(alg.name());
        public["use"] = json!("sig");
        Ok(ClientKey {
            alg,
            kid,
            public,
            signing,
        })
    }

    /// Its algorithm.
    pub fn alg(&self) -> KeyAlg {
        self.alg
    }

    /// Its key id: the RFC 7638 thumbprint of the public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public JWK Set with this one key.
    pub fn jwks(&self) -> Value {
        json!({"keys": [self.public]})
    }

    /// Sign `claims` as a compact JWS with header {alg, kid, typ: JWT}.
    pub fn sign(&self, claims: &Value) -> Result<String, KeyError> {
        let mut header = Header::new(self.alg.jose());
        header.kid = Some(self.kid.clone());
        header.typ = Some("JWT".into());
        jsonwebtoken::encode(&header, claims, &self.signing)
            .map_err(|e| KeyError::Sign(e.to_string()))
    }
}

/// The public members (kty, crv, x, y) and signing key of an EC key pair.
fn ec_parts<P: AsRef<str>>(
    public_jwk: &str,
    private_pem: impl FnOnce() -> Result<P, KeyError>,
) -> Result<(Value, EncodingKey), KeyError> {
    let jwk: Value = serde_json::from_str(public_jwk).map_err(generate_error)?;
    let members = json!({"kty": jwk["kty"], "crv": jwk["crv"], "x": jwk["x"], "y": jwk["y"]});
    let pem = private_pem()?;
    let signing = EncodingKey::from_ec_pem(pem.as_ref().as_bytes()).map_err(generate_error)?;
    Ok((members, signing))
}

/// The public members (kty, n, e) and signing key of a fresh 2048-bit RSA key pair.
fn rsa_parts() -> Result<(Value, EncodingKey), KeyError> {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;
    let private =
        rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).map_err(generate_error)?;
    let members = json!({
        "kty": "RSA",
        "n": b64(&private.n().to_bytes_be()),
        "e": b64(&private.e().to_bytes_be()),
    });
    let pem = private
        .to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)
        .map_err(generate_error)?;
    let signing = EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(generate_error)?;
    Ok((members, signing))
}

/// RFC 7638: SHA-256 of the required members in lexicographic order, no whitespace.
pub fn thumbprint(members: &Value) -> String {
    let text = |name: &str| members[name].as_str().unwrap_or_default().to_string();
    let canonical = match members["kty"].as_str() {
        Some("EC") => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            text("crv"),
            text("x"),
            text("y")
        ),
        _ => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, text("e"), text("n")),
    };
    b64(&Sha256::digest(canonical.as_bytes()))
}

/// What an assertion says, before signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertionClaims {
    /// The client: both `iss` and `sub`.
    pub client_id: String,
    /// The token endpoint's URL.
    pub aud: String,
    /// Unix time of signing.
    pub iat: i64,
    /// Unix time it expires.
    pub exp: i64,
    /// A single-use id.
    pub jti: String,
}

impl AssertionClaims {
    /// The claims for `client_id` at `aud`, signed at `now`, valid for `lifetime` seconds
    /// (negative: already expired), with a fresh random `jti`.
    pub fn new(client_id: &str, aud: &str, now: i64, lifetime: i64) -> AssertionClaims {
        AssertionClaims {
            client_id: client_id.to_string(),
            aud: aud.to_string(),
            iat: now,
            exp: now.saturating_add(lifetime),
            jti: uuid::Uuid::new_v4().to_string(),
        }
    }

    /// As the JWT payload.
    pub fn to_json(&self) -> Value {
        json!({
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.aud,
            "iat": self.iat,
            "exp": self.exp,
            "jti": self.jti,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::jwt::decode_unverified;
    use jsonwebtoken::jwk::Jwk;
    use jsonwebtoken::{DecodingKey, Validation};

    /// Verify `token` with the public JWK alone, as a server would.
    fn verify(token: &str, jwk: &Value, alg: Algorithm) -> Value {
        let jwk: Jwk = serde_json::from_value(jwk.clone()).unwrap();
        let key = DecodingKey::from_jwk(&jwk).unwrap();
        let mut validation = Validation::new(alg);
        validation.set_audience(&["http://localhost:9000/oauth/token"]);
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        jsonwebtoken::decode::<Value>(token, &key, &validation)
            .unwrap()
            .claims
    }

    fn sign_and_check(alg: KeyAlg, kty: &str) {
        let key = ClientKey::generate(alg).unwrap();
        let set = key.jwks();
        let keys = set["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 1);
        let jwk = &keys[0];
        assert_eq!(jwk["kty"], kty);
        assert_eq!(jwk["alg"], alg.name());
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["kid"], key.kid());
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(jwk.get(private).is_none(), "{private} in the public JWK");
        }
        assert_eq!(thumbprint(jwk), key.kid());
        let claims =
            AssertionClaims::new("client-1", "http://localhost:9000/oauth/token", 1_000, 300);
        let now = crate::server::clock::now();
        let live = AssertionClaims {
            iat: now,
            exp: now + 300,
            ..claims
        };
        let token = key.sign(&live.to_json()).unwrap();
        let decoded = decode_unverified(&token).unwrap();
        assert_eq!(decoded.header["alg"], alg.name());
        assert_eq!(decoded.header["kid"], key.kid());
        assert_eq!(decoded.header["typ"], "JWT");
        let verified = verify(&token, jwk, alg.jose());
        assert_eq!(verified, live.to_json());
    }

    #[test]
    fn ec_keys_sign_assertions_their_public_jwk_verifies() {
        sign_and_check(KeyAlg::Es384, "EC");
        sign_and_check(KeyAlg::Es256, "EC");
        let key = ClientKey::generate(KeyAlg::Es384).unwrap();
        assert_eq!(key.jwks()["keys"][0]["crv"], "P-384");
        // 48-byte coordinates.
        assert_eq!(key.jwks()["keys"][0]["x"].as_str().unwrap().len(), 64);
    }

    #[test]
    fn rsa_keys_sign_assertions_their_public_jwk_verifies() {
        sign_and_check(KeyAlg::Rs384, "RSA");
        let key = ClientKey::generate(KeyAlg::Rs384).unwrap();
        let n = key.jwks()["keys"][0]["n"].as_str().unwrap().len();
        assert_eq!(n, 342, "a 2048-bit modulus is 342 base64url characters");
    }

    #[test]
    fn fresh_keys_differ_and_debug_hides_the_private_key() {
        let a = ClientKey::generate(KeyAlg::Es256).unwrap();
        let b = ClientKey::generate(KeyAlg::Es256).unwrap();
        assert_ne!(a.kid(), b.kid());
        let shown = format!("{a:?}");
        assert!(shown.contains(a.kid()) && !shown.contains("signing"));
    }

    #[test]
    fn thumbprints_follow_rfc_7638() {
        // RFC 7638 §3.1's example key and its thumbprint.
        let members = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            thumbprint(&members),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn assertion_claims_name_the_client_twice_and_expire() {
        let a = AssertionClaims::new("c-1", "http://h/oauth/token", 1_700_000_000, 300);
        let b = AssertionClaims::new("c-1", "http://h/oauth/token", 1_700_000_000, -120);
        let json = a.to_json();
        assert_eq!(json["iss"], "c-1");
        assert_eq!(json["sub"], "c-1");
        assert_eq!(json["aud"], "http://h/oauth/token");
        assert_eq!(json["exp"], 1_700_000_300);
        assert_eq!(b.exp, 1_700_000_000 - 120);
        assert_ne!(a.jti, b.jti);
        assert_eq!(KeyAlg::parse("es384"), Some(KeyAlg::Es384));
        assert_eq!(KeyAlg::parse("HS256"), None);
    }
}
