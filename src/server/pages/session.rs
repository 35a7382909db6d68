//! Browser sessions for the portal pages.
//!
//! Nothing is stored for a browser until it signs in. An anonymous browser gets a cookie
//! holding a random nonce, and the CSRF token its forms carry is an HMAC-SHA256 of that
//! nonce under a random key made when the process starts (never stored or sent): checking
//! a form recomputes it and compares in constant time. So any number of visitors to the
//! sign-in page cost no memory and cannot push anyone's sign-in out of the table. The key
//! being per process, an anonymous form is valid only on the replica that drew it (and not
//! after a restart: the form says it expired and a reload fixes it).
//!
//! A sign-in starts a stored session with a fresh cookie id (so an id planted before cannot
//! be ridden after) and a random CSRF token. The table keys sessions by the SHA-256 of
//! their id, and is bounded in all and per user (see `table::Caps`).

mod table;

use std::sync::Mutex;

use axum::http::{header, HeaderMap, HeaderValue};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use cookie::{Cookie, SameSite};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::server::clock;
pub use table::Caps;
use table::Table;

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

/// The signed-in sessions, and the key anonymous CSRF tokens are made with.
pub struct Sessions {
    lifetime: i64,
    csrf_key: hmac::Key,
    random: SystemRandom,
    table: Mutex<Table>,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions::new(DEFAULT_LIFETIME)
    }
}

impl Sessions {
    /// No sessions yet; each will last `lifetime` seconds (at least 1); default caps.
    pub fn new(lifetime: i64) -> Sessions {
        Sessions::with_caps(lifetime, Caps::default())
    }

    /// No sessions yet, with these bounds on how many signed-in sessions are kept.
    pub fn with_caps(lifetime: i64, caps: Caps) -> Sessions {
        let random = SystemRandom::new();
        let csrf_key = hmac::Key::new(hmac::HMAC_SHA256, &random_bytes(&random));
        Sessions {
            lifetime: lifetime.max(1),
            csrf_key,
            random,
            table: Mutex::new(Table::new(caps)),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The signed-in session the request's cookie names, if it is live.
    pub fn current(&self, headers: &HeaderMap) -> Option<BrowserSession> {
        let id = cookie_value(headers)?;
        let table = self.table();
        let entry = table
            .get(&sha256(&id))
            .filter(|e| e.created + self.lifetime > clock::now())?;
        Some(BrowserSession {
            csrf: entry.csrf.clone(),
            username: Some(entry.username.clone()),
            created: entry.created,
            id,
        })
    }

    /// The signed-in session, or else the anonymous browser its cookie's nonce makes;
    /// `None` without a well-formed cookie. Nothing is stored.
    pub fn visitor(&self, headers: &HeaderMap) -> Option<BrowserSession> {
        if let Some(session) = self.current(headers) {
            return Some(session);
        }
        cookie_value(headers)
            .filter(|v| is_well_formed(v))
            .map(|nonce| self.anonymous(nonce))
    }

    /// The request's visitor, or a new anonymous browser with the cookie to set.
    pub fn ensure(
        &self,
        headers: &HeaderMap,
        secure: bool,
    ) -> (BrowserSession, Option<HeaderValue>) {
        match self.visitor(headers) {
            Some(session) => (session, None),
            None => {
                let session = self.anonymous(self.new_id());
                let cookie = set_cookie(&session, secure);
                (session, Some(cookie))
            }
        }
    }

    fn anonymous(&self, nonce: String) -> BrowserSession {
        let mut message = CSRF_LABEL.to_vec();
        message.extend_from_slice(nonce.as_bytes());
        let tag = hmac::sign(&self.csrf_key, &message);
        BrowserSession {
            id: nonce,
            csrf: URL_SAFE_NO_PAD.encode(tag.as_ref()),
            username: None,
            created: clock::now(),
        }
    }

    fn new_id(&self) -> String {
        URL_SAFE_NO_PAD.encode(random_bytes(&self.random))
    }

    /// Start a signed-in session for `username` (after a login).
    pub fn start(&self, username: &str) -> BrowserSession {
        let now = clock::now();
        let session = BrowserSession {
            id: self.new_id(),
            csrf: self.new_id(),
            username: Some(username.to_string()),
            created: now,
        };
        self.table().insert(
            session.id_sha256(),
            username,
            session.csrf.clone(),
            now,
            self.lifetime,
        );
        session
    }

    /// Whether a live signed-in session has a cookie id whose SHA-256 is `id_sha256`.
    pub fn is_signed_in(&self, id_sha256: &[u8; 32]) -> bool {
        self.table()
            .get(id_sha256)
            .is_some_and(|e| e.created + self.lifetime > clock::now())
    }

    /// Forget sessions past their lifetime at Unix time `now`; how many.
    pub fn sweep(&self, now: i64) -> usize {
        self.table().sweep(now, self.lifetime)
    }

    /// How many signed-in sessions are kept (anonymous browsers are never kept).
    pub fn len(&self) -> usize {
        self.table().len()
    }

    /// How many signed-in sessions of this user are kept.
    pub fn len_for(&self, username: &str) -> usize {
        self.table().len_for(username)
    }

    /// Whether no session is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keep a one-time message for the signed-in session `id`'s next page (post, redirect,
    /// then show: nothing in the URL that a link could forge).
    pub fn set_notice(&self, id: &str, notice: String) {
        if let Some(entry) = self.table().get_mut(&sha256(id)) {
            entry.notice = Some(notice);
        }
    }

    /// The signed-in session's one-time message, if any; taken, so it shows once.
    pub fn take_notice(&self, id: &str) -> Option<String> {
        self.table()
            .get_mut(&sha256(id))
            .and_then(|entry| entry.notice.take())
    }

    /// End a session (logout, or replaced at login); an anonymous id ends nothing.
    pub fn end(&self, id: &str) {
        self.table().remove(&sha256(id));
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

    fn with_cookie(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("other=1; {COOKIE}={value}")).unwrap(),
        );
        headers
    }

    #[test]
    fn a_cookie_finds_its_session_and_csrf_is_checked() {
        let sessions = Sessions::default();
        let s = sessions.start("daniel-adams");
        let headers = with_cookie(&s.id);
        let found = sessions.current(&headers).unwrap();
        assert_eq!(found.username.as_deref(), Some("daniel-adams"));
        assert!(found.csrf_matches(Some(&s.csrf)));
        assert!(!found.csrf_matches(Some("x")));
        assert!(!found.csrf_matches(None));
        assert!(sessions.is_signed_in(&s.id_sha256()));
        sessions.end(&s.id);
        assert!(sessions.current(&headers).is_none());
        assert!(!sessions.is_signed_in(&s.id_sha256()));
    }

    #[test]
    fn anonymous_browsers_are_not_stored_and_their_tokens_are_their_own() {
        let sessions = Sessions::default();
        let (first, cookie) = sessions.ensure(&HeaderMap::new(), false);
        assert!(cookie.is_some() && first.username.is_none());
        assert_eq!(sessions.len(), 0);
        let again = sessions.visitor(&with_cookie(&first.id)).unwrap();
        assert_eq!((&again.id, &again.csrf), (&first.id, &first.csrf));
        let (other, _) = sessions.ensure(&HeaderMap::new(), false);
        assert_ne!(other.csrf, first.csrf);
        assert!(!again.csrf_matches(Some(&other.csrf)));
        // Another process (replica, restart) makes other tokens for the same nonce.
        let elsewhere = Sessions::default()
            .visitor(&with_cookie(&first.id))
            .unwrap();
        assert_ne!(elsewhere.csrf, first.csrf);
        // Junk in the cookie is no visitor; the table keeps nothing of it.
        assert!(sessions.visitor(&with_cookie("x")).is_none());
        assert!(sessions.current(&with_cookie(&first.id)).is_none());
        assert!(!sessions.is_signed_in(&first.id_sha256()));
        assert_eq!(sessions.len(), 0);
    }

    #[test]
    fn the_table_holds_hashes_of_ids_not_ids() {
        let sessions = Sessions::default();
        let s = sessions.start("joseph-ross");
        let table = sessions.table();
        assert!(table.get(&sha256(&s.id)).is_some());
        let mut raw = [0u8; 32];
        raw[..32].copy_from_slice(&s.id.as_bytes()[..32]);
        assert!(table.get(&raw).is_none());
    }

    #[test]
    fn a_shorter_lifetime_is_what_the_sweep_goes_by() {
        let sessions = Sessions::new(5);
        let s = sessions.start("daniel-adams");
        assert_eq!(sessions.sweep(s.created + 4), 0);
        assert_eq!(sessions.sweep(s.created + 5), 1);
        assert!(sessions.is_empty());
    }

    #[test]
    fn the_cookie_is_http_only_and_lax() {
        let (s, _) = Sessions::default().ensure(&HeaderMap::new(), false);
        let value = set_cookie(&s, false);
        let text = value.to_str().unwrap();
        assert!(
            text.contains("HttpOnly") && text.contains("SameSite=Lax") && !text.contains("Secure")
        );
    }
}
