//! The public keys a `private_key_jwt` client registers (RFC 7591 `jwks` or `jwks_uri`),
//! checked strictly at registration and read back when an assertion is verified.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::DecodingKey;
use serde_json::{Map, Value};

use super::limits::MAX_URI;

/// The most keys one client registers.
pub const MAX_KEYS: usize = 10;
/// The largest JWK Set kept, as JSON text.
pub const MAX_JWKS_BYTES: usize = 16 * 1024;
/// Assertion algorithms accepted (SMART asks for RS384 and ES384; RS256 and ES256 too).
pub const ALGORITHMS: &[&str] = &["RS384", "ES384", "RS256", "ES256"];

/// Members that only a private key has.
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Where a client's keys are.
#[derive(Debug, Clone, PartialEq)]
pub enum KeySource {
    /// Registered inline.
    Inline(JwkSet),
    /// Fetched from this URL.
    Uri(String),
}

/// The keys a client registered, from its stored metadata.
pub fn of_client(extra: &Map<String, Value>) -> Option<KeySource> {
    if let Some(uri) = extra.get("jwks_uri").and_then(Value::as_str) {
        return Some(KeySource::Uri(uri.to_string()));
    }
    let set = extra.get("jwks")?;
    serde_json::from_value(set.clone())
        .ok()
        .map(KeySource::Inline)
}

/// Check a registered `jwks` (a JWK Set of public keys); the problem, for
/// `invalid_client_metadata`.
pub fn check_jwks(value: &Value) -> Result<(), String> {
    let text = value.to_string();
    if text.len() > MAX_JWKS_BYTES {
        return Err(format!(
            "jwks is {} bytes of JSON; at most {MAX_JWKS_BYTES} are kept",
            text.len()
        ));
    }
    let keys = value
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("jwks must be a JWK Set: an object with a \"keys\" array")?;
    if keys.is_empty() {
        return Err("jwks holds no keys".into());
    }
    if keys.len() > MAX_KEYS {
        return Err(format!(
            "jwks holds {} keys; at most {MAX_KEYS}",
            keys.len()
        ));
    }
    let mut kids: Vec<&str> = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        check_key(key).map_err(|e| format!("jwks key {}: {e}", i + 1))?;
        match key.get("kid").and_then(Value::as_str) {
            Some(kid) if kids.contains(&kid) => {
                return Err(format!("jwks has two keys with kid {kid:?}; kids must differ"))
            }
            Some(kid) => kids.push(kid),
            None if keys.len() > 1 => {
                return Err(format!(
                    "jwks key {} has no kid; with several keys each needs one, so an assertion's kid can choose",
                    i + 1
                ))
            }
            None => {}
        }
    }
    Ok(())
}

/// One public key: RSA of 2048 bits or more, or EC on P-256 or P-384; no private members;
/// an `alg`, if given, that fits the key; usable for verification.
pub fn check_key(key: &Value) -> Result<(), String> {
    let object = key.as_object().ok_or("a key must be a JSON object")?;
    if let Some(private) = PRIVATE_MEMBERS.iter().find(|m| object.contains_key(**m)) {
        return Err(format!(
            "it has the private member {private:?}; register only the public key (never send a private key)"
        ));
    }
    let text = |name: &str| object.get(name).and_then(Value::as_str);
    let kty = text("kty").ok_or("kty is missing")?;
    let fitting: &[&str] = match kty {
        "RSA" => {
            let n = text("n").ok_or("an RSA key needs n")?;
            text("e").ok_or("an RSA key needs e")?;
            let modulus = URL_SAFE_NO_PAD
                .decode(n)
                .map_err(|_| "n is not base64url without padding")?;
            let bits = modulus
                .iter()
                .skip_while(|b| **b == 0)
                .count()
                .saturating_mul(8);
            if bits < 2048 {
                return Err(format!("the RSA key has {bits} bits; at least 2048 are required"));
            }
            &["RS256", "RS384"]
        }
        "EC" => match text("crv") {
            Some("P-256") => &["ES256"],
            Some("P-384") => &["ES384"],
            Some(other) => {
                return Err(format!("curve {other:?} is not accepted; use P-256 or P-384"))
            }
            None => return Err("an EC key needs crv".into()),
        },
        other => {
            return Err(format!(
                "kty {other:?} is not accepted; register an RSA (2048 bits or more) or EC (P-256, P-384) key"
            ))
        }
    };
    if let Some(alg) = text("alg") {
        if !fitting.contains(&alg) {
            return Err(format!(
                "alg {alg:?} does not fit this key; use {}",
                fitting.join(" or ")
            ));
        }
    }
    if text("use").is_some_and(|u| u != "sig") {
        return Err("use must be \"sig\" for a key that signs assertions".into());
    }
    let jwk: Jwk =
        serde_json::from_value(key.clone()).map_err(|e| format!("not a usable JWK: {e}"))?;
    DecodingKey::from_jwk(&jwk).map_err(|e| format!("not a usable public key: {e}"))?;
    Ok(())
}

/// Check a registered `jwks_uri`: an absolute http(s) URL with a host, no fragment.
pub fn check_jwks_uri(uri: &str) -> Result<(), String> {
    if uri.len() > MAX_URI {
        return Err(format!(
            "jwks_uri is {} bytes long; at most {MAX_URI}",
            uri.len()
        ));
    }
    let parsed = url::Url::parse(uri)
        .map_err(|e| format!("jwks_uri {uri:?} is not an absolute URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!(
            "jwks_uri {uri:?} must be an http:// or https:// URL with a host"
        ));
    }
    if parsed.fragment().is_some() {
        return Err("jwks_uri must not have a #fragment".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rsa_public(bits: usize) -> Value {
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits).unwrap();
        use rsa::traits::PublicKeyParts;
        json!({
            "kty": "RSA",
            "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
        })
    }

    fn ec_public() -> Value {
        let secret = p384::SecretKey::random(&mut rsa::rand_core::OsRng);
        serde_json::from_str(&secret.public_key().to_jwk_string()).unwrap()
    }

    #[test]
    fn public_rsa_and_ec_keys_pass_and_each_fault_is_named() {
        let rsa = rsa_public(2048);
        assert_eq!(check_key(&rsa), Ok(()));
        assert_eq!(check_key(&ec_public()), Ok(()));
        assert!(check_key(&rsa_public(1024))
            .unwrap_err()
            .contains("1024 bits"));
        let mut private = ec_public();
        private["d"] = json!("AAAA");
        assert!(check_key(&private).unwrap_err().contains("private member"));
        let mut curve = ec_public();
        curve["crv"] = json!("P-521");
        assert!(check_key(&curve).unwrap_err().contains("P-521"));
        let mut alg = rsa.clone();
        alg["alg"] = json!("ES384");
        assert!(check_key(&alg).unwrap_err().contains("does not fit"));
        assert!(check_key(&json!({"kty": "oct", "k": "c2VjcmV0"})).is_err());
    }

    #[test]
    fn sets_need_kids_when_they_hold_several_keys() {
        let (a, b) = (ec_public(), ec_public());
        assert_eq!(check_jwks(&json!({"keys": [a.clone()]})), Ok(()));
        assert!(check_jwks(&json!({"keys": [a.clone(), b.clone()]}))
            .unwrap_err()
            .contains("no kid"));
        let mut a1 = a.clone();
        a1["kid"] = json!("one");
        let mut b1 = b;
        b1["kid"] = json!("one");
        assert!(check_jwks(&json!({"keys": [a1.clone(), b1.clone()]}))
            .unwrap_err()
            .contains("two keys"));
        b1["kid"] = json!("two");
        assert_eq!(check_jwks(&json!({"keys": [a1, b1]})), Ok(()));
        assert!(check_jwks(&json!([a])).is_err());
        assert!(check_jwks(&json!({"keys": []})).is_err());
    }

    #[test]
    fn a_jwks_uri_is_an_absolute_http_url() {
        assert_eq!(check_jwks_uri("https://app.example/jwks.json"), Ok(()));
        assert_eq!(check_jwks_uri("http://127.0.0.1:8080/jwks"), Ok(()));
        for bad in [
            "/jwks",
            "ftp://x/jwks",
            "https://app.example/j#x",
            "file:///etc/passwd",
        ] {
            assert!(check_jwks_uri(bad).is_err(), "{bad}");
        }
    }
}
