//! The RSA keys id_tokens are signed with: made on first need (or by
//! `--rotate-signing-key`), kept in the store so a restart and every replica on one
//! database sign with the same key, and published as a JWK Set.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::EncodingKey;
use rsa::pkcs1::{EncodeRsaPrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::RwLock;

use crate::server::clock;
use crate::server::store::{SigningKey, Store, StoreError};

/// Bits of every key made here (SMART and OpenID Connect ask for RS256 with 2048 or more).
pub const KEY_BITS: usize = 2048;

/// Why no key could be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Making or reading a key failed.
    #[error("the id_token signing key could not be made or read: {0}")]
    Key(String),
}

/// The key that signs now.
#[derive(Clone)]
pub struct Signer {
    /// Its generation in the store.
    pub generation: i64,
    /// Its `kid`.
    pub kid: String,
    /// The private key, ready for jsonwebtoken.
    pub key: EncodingKey,
}

/// The signing key in use, cached from the store.
#[derive(Default)]
pub struct KeyRing {
    current: RwLock<Option<Signer>>,
}

impl KeyRing {
    /// The key to sign with: the newest in the store, made and saved first when there is
    /// none.
    pub async fn signer(&self, store: &dyn Store) -> Result<Signer, KeyError> {
        if let Some(signer) = self.current.read().await.clone() {
            return Ok(signer);
        }
        let mut slot = self.current.write().await;
        if let Some(signer) = slot.clone() {
            return Ok(signer);
        }
        let signer = match newest(store).await? {
            Some(found) => found,
            None => add_generation(store, 1).await?,
        };
        *slot = Some(signer.clone());
        Ok(signer)
    }

    /// Read the newest key again, so a rotation by another replica takes effect here
    /// (called at every sweep).
    pub async fn reload(&self, store: &dyn Store) -> Result<(), KeyError> {
        if let Some(found) = newest(store).await? {
            *self.current.write().await = Some(found);
        }
        Ok(())
    }

    /// Make a new key and sign with it from now on; the older ones stay published until
    /// what they signed has expired. Returns the new key's `kid`.
    pub async fn rotate(&self, store: &dyn Store) -> Result<String, KeyError> {
        let mut slot = self.current.write().await;
        let next = store
            .signing_keys()
            .await?
            .last()
            .map_or(1, |k| k.generation + 1);
        let signer = add_generation(store, next).await?;
        let kid = signer.kid.clone();
        *slot = Some(signer);
        Ok(kid)
    }

    /// The JWK Set of every key still published (making the first key if there is none, so
    /// the set is never empty).
    pub async fn jwks(&self, store: &dyn Store) -> Result<Value, KeyError> {
        self.signer(store).await?;
        let keys = store
            .signing_keys()
            .await?
            .iter()
            .rev()
            .filter_map(|k| serde_json::from_str::<Value>(&k.public_jwk).ok())
            .collect::<Vec<_>>();
        Ok(json!({ "keys": keys }))
    }
}

/// The newest key in the store, if any.
async fn newest(store: &dyn Store) -> Result<Option<Signer>, KeyError> {
    store
        .signing_keys()
        .await?
        .last()
        .map(signer_of)
        .transpose()
}

fn signer_of(key: &SigningKey) -> Result<Signer, KeyError> {
    let encoding = EncodingKey::from_rsa_pem(key.private_pem.as_bytes())
        .map_err(|e| KeyError::Key(format!("stored key {} is unreadable: {e}", key.kid)))?;
    Ok(Signer {
        generation: key.generation,
        kid: key.kid.clone(),
        key: encoding,
    })
}

/// Make a key of this generation and save it; when another server saved that generation
/// first, use the newest key in the store instead.
async fn add_generation(store: &dyn Store, generation: i64) -> Result<Signer, KeyError> {
    let key = tokio::task::spawn_blocking(move || generate(generation))
        .await
        .map_err(|e| KeyError::Key(e.to_string()))??;
    if store.add_signing_key(key.clone()).await? {
        return signer_of(&key);
    }
    newest(store)
        .await?
        .ok_or_else(|| KeyError::Key("another server's key vanished".to_string()))
}

/// A fresh RSA key pair as the store keeps it.
pub fn generate(generation: i64) -> Result<SigningKey, KeyError> {
    let private = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, KEY_BITS)
        .map_err(|e| KeyError::Key(e.to_string()))?;
    let pem = private
        .to_pkcs1_pem(LineEnding::LF)
        .map_err(|e| KeyError::Key(e.to_string()))?;
    let n = URL_SAFE_NO_PAD.encode(private.n().to_bytes_be());
    let e = URL_SAFE_NO_PAD.encode(private.e().to_bytes_be());
    let kid = thumbprint(&n, &e);
    let jwk = json!({
        "kty": "RSA",
        "use": "sig",
        "alg": "RS256",
        "kid": kid,
        "n": n,
        "e": e,
    });
    Ok(SigningKey {
        generation,
        kid,
        private_pem: pem.to_string(),
        public_jwk: jwk.to_string(),
        created: clock::now(),
        retired: None,
    })
}

/// RFC 7638 JWK thumbprint of an RSA public key: SHA-256 over the required members in
/// lexicographic order, without whitespace, base64url.
pub fn thumbprint(n: &str, e: &str) -> String {
    // serde_json writes object members in key order ("e", "kty", "n") with no whitespace.
    let canonical = json!({ "e": e, "kty": "RSA", "n": n }).to_string();
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_matches_rfc7638_section_3_1() {
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        assert_eq!(
            thumbprint(n, "AQAB"),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn a_generated_key_signs_and_its_jwk_verifies() {
        let key = generate(1).unwrap();
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_str(&key.public_jwk).unwrap();
        let signer = signer_of(&key).unwrap();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(signer.kid.clone());
        let token = jsonwebtoken::encode(
            &header,
            &json!({"sub": "x", "exp": 4102444800i64}),
            &signer.key,
        )
        .unwrap();
        let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.validate_aud = false;
        let data = jsonwebtoken::decode::<Value>(&token, &decoding, &validation).unwrap();
        assert_eq!(data.claims["sub"], "x");
        assert_eq!(jwk.common.key_id.as_deref(), Some(key.kid.as_str()));
        assert!(
            !key.public_jwk.contains("\"d\""),
            "the JWK carries no private part"
        );
    }
}
