//! Issuing approvals, codes and tokens: the one place where credentials are minted.

use crate::server::clock;
use crate::server::scopes::Scopes;
use crate::server::state::AppState;
use crate::server::store::{Approval, GrantKey, LaunchContext, Token};

use super::{new_secret, sha256, store_failed};
use crate::server::error::OAuthError;

/// Who approved which app to read which patient's records, for how long.
pub struct Grant<'a> {
    /// The app.
    pub client_id: &'a str,
    /// The participant who approved.
    pub username: &'a str,
    /// Whose records.
    pub patient_id: &'a str,
    /// The scopes approved.
    pub scope: &'a str,
    /// Unix time the approval ends ("share until").
    pub expires: i64,
}

impl Grant<'_> {
    /// This grant as an approval with the given id, given now.
    fn approval(&self, id: String) -> Approval {
        Approval {
            id,
            client_id: self.client_id.to_string(),
            username: self.username.to_string(),
            patient_id: self.patient_id.to_string(),
            scope: self.scope.to_string(),
            expires: self.expires,
            created: clock::now(),
        }
    }
}

/// Save a new approval (the debug endpoint's: each mint names its own expiry).
pub async fn approve(state: &AppState, grant: Grant<'_>) -> Result<Approval, OAuthError> {
    save(state, grant.approval(new_secret())).await
}

/// A participant's consent: approving the same app, patient and scope again renews the
/// live approval already given (same id, so its tokens live on, with the new "share
/// until") rather than adding a duplicate. The apps page lists each grant once, and a
/// participant who signs in to the same app over and over leaves one approval, not one
/// per sign-in. A different scope is a separate approval.
pub async fn consent(state: &AppState, grant: Grant<'_>) -> Result<Approval, OAuthError> {
    let mut approval = grant.approval(new_secret());
    let renewed = state
        .store
        .renewable_approval(&GrantKey::of(&approval), approval.created)
        .await
        .map_err(store_failed)?;
    if let Some(old) = renewed {
        approval.id = old.id;
    }
    save(state, approval).await
}

async fn save(state: &AppState, approval: Approval) -> Result<Approval, OAuthError> {
    state
        .store
        .insert_approval(approval.clone())
        .await
        .map_err(store_failed)?;
    Ok(approval)
}

/// Whether tokens from a grant of these scopes last only as long as the participant's
/// sign-in: `online_access` without `offline_access` (SMART App Launch: usable "for as long
/// as the end-user remains online").
pub fn bound_to_sign_in(scopes: &Scopes) -> bool {
    scopes.has("online_access") && !scopes.has("offline_access")
}

/// What a new token pair should look like.
pub struct TokenRequest<'a> {
    /// The approval it lives under.
    pub approval_id: &'a str,
    /// Its scopes.
    pub scope: &'a str,
    /// Seconds until the access token expires.
    pub lifetime: i64,
    /// Issue a refresh token even without offline_access/online_access (the seed's debug
    /// endpoint always did).
    pub force_refresh: bool,
    /// Whether the client may use refresh tokens at all (it registered the grant).
    pub refresh_allowed: bool,
    /// SHA-256 of the authorization code it is exchanged for, if any.
    pub from_code_sha256: Option<[u8; 32]>,
    /// SHA-256 of the browser session whose sign-in the refresh token lasts as long as.
    pub session_sha256: Option<[u8; 32]>,
    /// When the participant signed in for this grant (kept for refreshed id_tokens).
    pub auth_time: Option<i64>,
    /// The launch context the token response repeats.
    pub context: Option<LaunchContext>,
}

/// A token pair just minted: the values, which only the answer that hands them out
/// carries, and the record the store keeps (their hashes).
#[derive(Debug, Clone)]
pub struct Issued {
    /// The bearer token.
    pub access_token: String,
    /// The refresh token, if one was issued.
    pub refresh_token: Option<String>,
    /// What is stored.
    pub record: Token,
}

impl TokenRequest<'_> {
    /// Build the token pair, with fresh random values.
    pub fn build(&self) -> Issued {
        let now = clock::now();
        let scopes = Scopes::parse(self.scope).unwrap_or_default();
        let refresh = self.refresh_allowed
            && (self.force_refresh || scopes.has("offline_access") || scopes.has("online_access"));
        let access_token = new_secret();
        let refresh_token = refresh.then(new_secret);
        let record = Token {
            access_sha256: sha256(&access_token),
            refresh_sha256: refresh_token.as_deref().map(sha256),
            approval_id: self.approval_id.to_string(),
            scope: self.scope.to_string(),
            issued_at: now,
            access_expires: now.saturating_add(self.lifetime),
            from_code_sha256: self.from_code_sha256,
            session_sha256: self.session_sha256,
            auth_time: self.auth_time,
            context: self.context.clone(),
        };
        Issued {
            access_token,
            refresh_token,
            record,
        }
    }
}

/// Mint and save a token pair.
pub async fn issue(state: &AppState, request: TokenRequest<'_>) -> Result<Issued, OAuthError> {
    let issued = request.build();
    let saved = state
        .store
        .insert_token(issued.record.clone())
        .await
        .map_err(store_failed)?;
    if !saved {
        return Err(OAuthError::bad_request(
            "invalid_grant",
            "the authorization code was used again meanwhile; the tokens issued for it have been revoked",
        ));
    }
    Ok(issued)
}
