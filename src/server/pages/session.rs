//! Browser sessions for the portal pages.
//!
//! Nothing is stored for a browser until it signs in. An anonymous browser gets a cookie
//! holding a random nonce, and the CSRF token its forms carry is an HMAC-SHA256 of that
//! nonce under a random key kept in the store (made by whichever server asks first, then
//! read back by every other sharing the store, never sent): checking a form recomputes it
//! and compares in constant time. So any number of visitors to the sign-in page cost no
//! memory and cannot push anyone's sign-in out, and a form drawn from one replica is good
//! on another. (With the in-memory state the key lives as long as the process.)
//!
//! A sign-in starts a stored session with a fresh cookie id (so an id planted before cannot
//! be ridden after) and a random CSRF token. The store keys sessions by the SHA-256 of
//! their id, and bounds them in all and per user (see [`Caps`]).

use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderValue};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use cookie::{Cookie, SameSite};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::OnceCell;

use crate::server::clock;
pub use crate::server::store::Caps;
use crate::server::store::{Store, StoreResult, StoredSession};

/// The session cookie's name.
pub const COOKIE: &str = "smartnb_session";
/// How long a session lasts without being renewed by a login, unless the server is told
/// otherwise (`smartnb serve --session-lifetime`).
pub const DEFAULT_LIFETIME: i64 = 12 * 3600;
/// Random bytes in a nonce or session id (43 characters of base64url).
const ID_BYTES: usize = 32;
/// What the anonymous CSRF HMAC covers besides the nonce, so it is good for nothing else.
const CSRF_LABEL: &[u8] = b"smartnb anonymous csrf\0";

/// One browser's session: signed in (stored), or anonymous (made from its cookie's nonce).
#[derive(Debug, Clone, PartialEq)]
pub struct BrowserSession {
    /// The cookie value: a signed-in session's id, or an anonymous browser's nonce.
    pub id: String,
    /// The token every form of this session carries.
    pub csrf: String,
    /// Who signed in, if anyone has.
    pub username: Option<String>,
    /// Unix time it started (for an anonymous browser, now).
    pub created: i64,
}

impl BrowserSession {
    /// Whether a submitted CSRF token is this session's (compared in constant time).
    pub fn csrf_matches(&self, given: Option<&str>) -> bool {
        given.is_some_and(|g| bool::from(g.as_bytes().ct_eq(self.csrf.as_bytes())))
    }

    /// SHA-256 of the cookie id: what the table is keyed by, and what other records may
    /// keep to ask `Sessions::is_signed_in` later.
    pub fn id_sha256(&self) -> [u8; 32] {
        sha256(&self.id)
    }
}

/// The signed-in sessions (in the store), and the key anonymous CSRF tokens are made with.
pub struct Sessions {
    lifetime: i64,
    caps: Caps,
    store: Arc<dyn Store>,
    csrf_key: OnceCell<hmac::Key>,
    random: SystemRandom,
}

impl Sessions {
    /// The sessions kept in `store`; each will last `lifetime` seconds (at least 1); default
    /// caps.
    pub fn new(store: Arc<dyn Store>, lifetime: i64) -> Sessions {
        Sessions::with_caps(store, lifetime, Caps::default())
    }

    /// The sessions kept in `store`, with these bounds on how many are kept.
    pub fn with_caps(store: Arc<dyn Store>, lifetime: i64, caps: Caps) -> Sessions {
        Sessions {
            lifetime: lifetime.max(1),
            caps,
            store,
            csrf_key: OnceCell::new(),
            random: SystemRandom::new(),
        }
    }

    /// The anonymous CSRF key: the store's, fetched once (every replica gets the same).
    async fn key(&self) -> StoreResult<&hmac::Key> {
        self.csrf_key
            .get_or_try_init(|| async {
                let candidate = random_bytes(&self.random);
                let key = self.store.anonymous_key(&candidate).await?;
                Ok(hmac::Key::new(hmac::HMAC_SHA256, &key))
            })
            .await
    }

    /// The live signed-in session with this id hash; `None` also when the store cannot be
    /// read (logged): the pages then ask to sign in, and that sign-in reports the trouble.
    async fn live(&self, id_sha256: &[u8; 32]) -> Option<StoredSession> {
        match self.store.session(id_sha256).await {
            Ok(found) => found.filter(|s| s.created + self.lifetime > clock::now()),
            Err(e) => {
                tracing::warn!("reading a browser session failed: {e}");
                None
            }
        }
    }

    /// The signed-in session the request's cookie names, if it is live.
    pub async fn current(&self, headers: &HeaderMap) -> Option<BrowserSession> {
        let id = cookie_value(headers)?;
        let entry = self.live(&sha256(&id)).await?;
        Some(BrowserSession {
            csrf: entry.csrf,
            username: Some(entry.username),
            created: entry.created,
            id,
        })
    }

    /// The signed-in session, or else the anonymous browser its cookie's nonce makes;
    /// `None` without a well-formed cookie (or when the store cannot be read, logged).
    /// Nothing is stored.
    pub async fn visitor(&self, headers: &HeaderMap) -> Option<BrowserSession> {
        if let Some(session) = self.current(headers).await {
            return Some(session);
        }
        let nonce = cookie_value(headers).filter(|v| is_well_formed(v))?;
        match self.anonymous(nonce).await {
            Ok(session) => Some(session),
            Err(e) => {
                tracing::warn!("reading the anonymous CSRF key failed: {e}");
                None
            }
        }
    }

    /// The request's visitor, or a new anonymous browser with the cookie to set.
    pub async fn ensure(
        &self,
        headers: &HeaderMap,
        secure: bool,
    ) -> StoreResult<(BrowserSession, Option<HeaderValue>)> {
        if let Some(session) = self.visitor(headers).await {
            return Ok((session, None));
        }
        let session = self.anonymous(self.new_id()).await?;
        let cookie = set_cookie(&session, secure);
        Ok((session, Some(cookie)))
    }

    async fn anonymous(&self, nonce: String) -> StoreResult<BrowserSession> {
        let mut message = CSRF_LABEL.to_vec();
        message.extend_from_slice(nonce.as_bytes());
        let tag = hmac::sign(self.key().await?, &message);
        Ok(BrowserSession {
            id: nonce,
            csrf: URL_SAFE_NO_PAD.encode(tag.as_ref()),
            username: None,
            created: clock::now(),
        })
    }

    fn new_id(&self) -> String {
        URL_SAFE_NO_PAD.encode(random_bytes(&self.random))
    }

    /// Start a signed-in session for `username` (after a login).
    pub async fn start(&self, username: &str) -> StoreResult<BrowserSession> {
        let now = clock::now();
        let session = BrowserSession {
            id: self.new_id(),
            csrf: self.new_id(),
            username: Some(username.to_string()),
            created: now,
        };
        let stored = StoredSession {
            id_sha256: session.id_sha256(),
            username: username.to_string(),
            csrf: session.csrf.clone(),
            created: now,
        };
        self.store
            .insert_session(stored, self.caps, self.lifetime)
            .await?;
        Ok(session)
    }

    /// Whether a live signed-in session has a cookie id whose SHA-256 is `id_sha256` (false
    /// when the store cannot be read, logged).
    pub async fn is_signed_in(&self, id_sha256: &[u8; 32]) -> bool {
        self.live(id_sha256).await.is_some()
    }

    /// Seconds a session lasts after its sign-in.
    pub fn lifetime(&self) -> i64 {
        self.lifetime
    }

    /// How many signed-in sessions are kept (anonymous browsers are never kept).
    pub async fn len(&self) -> StoreResult<usize> {
        self.store.session_count(None).await
    }

    /// How many signed-in sessions of this user are kept.
    pub async fn len_for(&self, username: &str) -> StoreResult<usize> {
        self.store.session_count(Some(username)).await
    }

    /// Whether no session is kept.
    pub async fn is_empty(&self) -> StoreResult<bool> {
        Ok(self.len().await? == 0)
    }

    /// Keep a one-time message for the signed-in session `id`'s next page (post, redirect,
    /// then show: nothing in the URL that a link could forge). A store failure is logged:
    /// the message is only lost.
    pub async fn set_notice(&self, id: &str, notice: String) {
        if let Err(e) = self.store.set_notice(&sha256(id), &notice).await {
            tracing::warn!("keeping a notice for a browser session failed: {e}");
        }
    }

    /// The signed-in session's one-time message, if any; taken, so it shows once.
    pub async fn take_notice(&self, id: &str) -> Option<String> {
        self.store
            .take_notice(&sha256(id))
            .await
            .unwrap_or_else(|e| {
                tracing::warn!("taking a browser session's notice failed: {e}");
                None
            })
    }

    /// End a session (logout, or replaced at login); an anonymous id ends nothing.
    pub async fn end(&self, id: &str) -> StoreResult<()> {
        self.store.end_session(&sha256(id)).await.map(|_| ())
    }
}

fn sha256(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// Fresh random bytes; should the system's source fail, uuid's (also the OS's) instead.
fn random_bytes(random: &SystemRandom) -> [u8; ID_BYTES] {
    let mut bytes = [0u8; ID_BYTES];
    if random.fill(&mut bytes).is_err() {
        for chunk in bytes.chunks_mut(16) {
            let id = uuid::Uuid::new_v4();
            chunk.copy_from_slice(&id.as_bytes()[..chunk.len()]);
        }
    }
    bytes
}

/// Whether a cookie value has the shape of an id this server makes.
fn is_well_formed(value: &str) -> bool {
    value.len() == URL_SAFE_NO_PAD.encode([0u8; ID_BYTES]).len()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `Set-Cookie` for a session: HttpOnly, SameSite=Lax, Path=/, Secure on https.
pub fn set_cookie(session: &BrowserSession, secure: bool) -> HeaderValue {
    let cookie = Cookie::build((COOKIE, session.id.clone()))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .secure(secure)
        .build();
    HeaderValue::from_str(&cookie.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `Set-Cookie` that deletes the session cookie, with the attributes `set_cookie` gives it.
pub fn clear_cookie(secure: bool) -> HeaderValue {
    let mut cookie = Cookie::build((COOKIE, ""))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .secure(secure)
        .build();
    cookie.make_removal();
    HeaderValue::from_str(&cookie.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == COOKIE)
        .map(|c| c.value().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::store::{MemoryStore, Retention, SessionState};

    fn with_cookie(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("other=1; {COOKIE}={value}")).unwrap(),
        );
        headers
    }

    fn sessions() -> Sessions {
        Sessions::new(Arc::new(MemoryStore::new()), DEFAULT_LIFETIME)
    }

    #[tokio::test]
    async fn a_cookie_finds_its_session_and_csrf_is_checked() {
        let sessions = sessions();
        let s = sessions.start("daniel-adams").await.unwrap();
        let headers = with_cookie(&s.id);
        let found = sessions.current(&headers).await.unwrap();
        assert_eq!(found.username.as_deref(), Some("daniel-adams"));
        assert!(found.csrf_matches(Some(&s.csrf)));
        assert!(!found.csrf_matches(Some("x")));
        assert!(!found.csrf_matches(None));
        assert!(sessions.is_signed_in(&s.id_sha256()).await);
        sessions.end(&s.id).await.unwrap();
        assert!(sessions.current(&headers).await.is_none());
        assert!(!sessions.is_signed_in(&s.id_sha256()).await);
    }

    #[tokio::test]
    async fn anonymous_browsers_are_not_stored_and_their_tokens_are_their_own() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let sessions = Sessions::new(store.clone(), DEFAULT_LIFETIME);
        let (first, cookie) = sessions.ensure(&HeaderMap::new(), false).await.unwrap();
        assert!(cookie.is_some() && first.username.is_none());
        assert_eq!(sessions.len().await.unwrap(), 0);
        let again = sessions.visitor(&with_cookie(&first.id)).await.unwrap();
        assert_eq!((&again.id, &again.csrf), (&first.id, &first.csrf));
        let (other, _) = sessions.ensure(&HeaderMap::new(), false).await.unwrap();
        assert_ne!(other.csrf, first.csrf);
        assert!(!again.csrf_matches(Some(&other.csrf)));
        // Another server on the same store (a replica) makes the same token for the nonce.
        let replica = Sessions::new(store, DEFAULT_LIFETIME);
        let there = replica.visitor(&with_cookie(&first.id)).await.unwrap();
        assert_eq!(there.csrf, first.csrf);
        // Another store (a restarted in-memory server) makes other tokens.
        let elsewhere = self::sessions()
            .visitor(&with_cookie(&first.id))
            .await
            .unwrap();
        assert_ne!(elsewhere.csrf, first.csrf);
        // Junk in the cookie is no visitor; the store keeps nothing of it.
        assert!(sessions.visitor(&with_cookie("x")).await.is_none());
        assert!(sessions.current(&with_cookie(&first.id)).await.is_none());
        assert!(!sessions.is_signed_in(&first.id_sha256()).await);
        assert_eq!(sessions.len().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn the_store_holds_hashes_of_ids_not_ids() {
        let store = Arc::new(MemoryStore::new());
        let sessions = Sessions::new(store.clone(), DEFAULT_LIFETIME);
        let s = sessions.start("joseph-ross").await.unwrap();
        assert!(store.session(&sha256(&s.id)).await.unwrap().is_some());
        let mut raw = [0u8; 32];
        raw.copy_from_slice(&s.id.as_bytes()[..32]);
        assert!(store.session(&raw).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_shorter_lifetime_is_what_the_sweep_goes_by() {
        let store = Arc::new(MemoryStore::new());
        let sessions = Sessions::new(store.clone(), 5);
        let s = sessions.start("daniel-adams").await.unwrap();
        let retention = Retention {
            code_memory: 0,
            client_idle: None,
            signing_key_memory: 0,
            launch_memory: 0,
            session_lifetime: sessions.lifetime(),
            failure_window: 0,
        };
        let swept = |now| {
            let store = store.clone();
            async move { store.sweep(now, retention).await.unwrap().sessions }
        };
        assert_eq!(swept(s.created + 4).await, 0);
        assert_eq!(swept(s.created + 5).await, 1);
        assert!(sessions.is_empty().await.unwrap());
    }

    #[tokio::test]
    async fn the_cookie_is_http_only_and_lax() {
        let (s, _) = sessions().ensure(&HeaderMap::new(), false).await.unwrap();
        let value = set_cookie(&s, false);
        let text = value.to_str().unwrap();
        assert!(
            text.contains("HttpOnly") && text.contains("SameSite=Lax") && !text.contains("Secure")
        );
    }
}
