//! Minting the OpenID Connect id_token a token response carries when the grant asks who
//! the participant is (`openid` with `fhirUser` or `profile`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, Header};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::server::scopes::Scopes;
use crate::server::state::AppState;
use crate::server::store::{Approval, Token};

use super::keys::KeyError;

/// Whether a token of these scopes comes with an id_token.
pub fn is_wanted(scopes: &Scopes) -> bool {
    scopes.grants_identity()
}

/// The claims of an id_token (OpenID Connect Core §2, SMART App Launch 2.2 "Scopes for
/// requesting identity data").
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Claims {
    /// The issuer: this server's base URL.
    pub iss: String,
    /// The participant's user name: stable, readable, short.
    pub sub: String,
    /// The client the token was issued to.
    pub aud: String,
    /// Unix time it expires (with the access token).
    pub exp: i64,
    /// Unix time it was issued.
    pub iat: i64,
    /// Unix time the participant signed in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// The authorize request's nonce, in the id_token of the code exchange only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The participant as an absolute FHIR resource URL, when `fhirUser` was granted.
    #[serde(rename = "fhirUser", skip_serializing_if = "Option::is_none")]
    pub fhir_user: Option<String>,
    /// The same URL, for the legacy `profile` scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The participant's display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The access token's hash (OpenID Connect Core §3.1.3.6, optional in the code flow):
    /// a client that checks it learns the id_token and access token were issued together.
    pub at_hash: String,
}

/// `at_hash`: base64url of the left half of the access token's SHA-256 (RS256's hash).
pub fn at_hash(access_token: &str) -> String {
    let digest = Sha256::digest(access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

/// Who a grant's participant is, as the id_token and introspection state it.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// `sub`.
    pub sub: String,
    /// `fhirUser`, absolute.
    pub fhir_user: Option<String>,
    /// The display name.
    pub name: Option<String>,
}

/// The identity behind an approval.
pub fn identity(state: &AppState, approval: &Approval) -> Identity {
    let user = state.users.get(&approval.username);
    Identity {
        sub: approval.username.clone(),
        fhir_user: user
            .and_then(|u| u.fhir_user(&approval.patient_id))
            .map(|reference| format!("{}/{reference}", state.fhir_base())),
        name: user.map(|u| u.display_name.clone()),
    }
}

/// The claims for a token just issued under this approval (`access_token` is its bearer
/// value). `nonce` is the authorize request's, for a code exchange; a refreshed id_token
/// carries none (OpenID Connect Core §12.2).
pub fn claims(
    state: &AppState,
    approval: &Approval,
    token: &Token,
    access_token: &str,
    nonce: Option<&str>,
) -> Claims {
    let scopes = Scopes::parse(&token.scope).unwrap_or_default();
    let who = identity(state, approval);
    Claims {
        iss: state.base_url.clone(),
        sub: who.sub,
        aud: approval.client_id.clone(),
        exp: token.access_expires,
        iat: token.issued_at,
        auth_time: token.auth_time,
        nonce: nonce.map(str::to_string),
        profile: scopes
            .has("profile")
            .then(|| who.fhir_user.clone())
            .flatten(),
        fhir_user: scopes.has("fhirUser").then_some(who.fhir_user).flatten(),
        name: who.name,
        at_hash: at_hash(access_token),
    }
}

/// Sign the claims with the current key: RS256, with `kid` and `typ: JWT`.
pub async fn sign(state: &AppState, claims: &Claims) -> Result<String, KeyError> {
    let signer = state.keys.signer(state.store.as_ref()).await?;
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(signer.kid);
    header.typ = Some("JWT".to_string());
    jsonwebtoken::encode(&header, claims, &signer.key).map_err(|e| KeyError::Key(e.to_string()))
}
