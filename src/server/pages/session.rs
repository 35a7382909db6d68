//! Browser sessions for the portal pages: a cookie naming a server-side session that holds
//! the signed-in user and the CSRF token every form must echo.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use axum::http::{header, HeaderMap, HeaderValue};
use cookie::{Cookie, SameSite};
use subtle::ConstantTimeEq;

use crate::server::clock;

/// The session cookie's name.
pub const COOKIE: &str = "smartnb_session";
/// How long a session lasts without being renewed by a login, unless the server is told
/// otherwise (`smartnb serve --session-lifetime`).
pub const DEFAULT_LIFETIME: i64 = 12 * 3600;
/// Beyond this many sessions, expired ones are swept and then the oldest dropped.
const CAPACITY: usize = 100_000;

/// One browser's session.
#[derive(Debug, Clone, PartialEq)]
pub struct BrowserSession {
    /// The cookie value.
    pub id: String,
    /// The token every form of this session carries.
    pub csrf: String,
    /// Who signed in, if anyone has.
    pub username: Option<String>,
    /// Unix time it started.
    pub created: i64,
}

impl BrowserSession {
    /// Whether a submitted CSRF token is this session's (compared in constant time).
    pub fn csrf_matches(&self, given: Option<&str>) -> bool {
        given.is_some_and(|g| bool::from(g.as_bytes().ct_eq(self.csrf.as_bytes())))
    }
}

/// Every live session.
pub struct Sessions {
    lifetime: i64,
    table: Mutex<Table>,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions::new(DEFAULT_LIFETIME)
    }
}

/// Sessions by id, and their ids in the order they started: the oldest is found in O(1)
/// when the table is full (a scan of 100,000 sessions on every sign-in made the server's
/// throughput collapse once a long load test filled it).
#[derive(Default)]
struct Table {
    map: HashMap<String, BrowserSession>,
    order: VecDeque<(i64, String)>,
}

impl Table {
    /// Drop sessions from the front of the order: expired ones, then the oldest while full.
    fn make_room(&mut self, now: i64, lifetime: i64) {
        while let Some((created, id)) = self.order.front() {
            let expired = *created + lifetime <= now;
            if !expired && self.map.len() < CAPACITY {
                break;
            }
            if self.map.get(id).is_some_and(|s| s.created == *created) {
                self.map.remove(id);
            }
            self.order.pop_front();
        }
        // Ended sessions leave their ids in the order; keep it within twice the live ones.
        if self.order.len() > 2 * self.map.len() + 1024 {
            let map = &self.map;
            self.order
                .retain(|(created, id)| map.get(id).is_some_and(|s| s.created == *created));
        }
    }
}

impl Sessions {
    /// No sessions yet; each will last `lifetime` seconds (at least 1).
    pub fn new(lifetime: i64) -> Sessions {
        Sessions {
            lifetime: lifetime.max(1),
            table: Mutex::default(),
        }
    }

    /// The session the request's cookie names, if it is live.
    pub fn current(&self, headers: &HeaderMap) -> Option<BrowserSession> {
        let id = cookie_value(headers)?;
        let table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        table
            .map
            .get(&id)
            .filter(|s| s.created + self.lifetime > clock::now())
            .cloned()
    }

    /// Start a new session (anonymous, or signed in after a login).
    pub fn start(&self, username: Option<String>) -> BrowserSession {
        let now = clock::now();
        let session = BrowserSession {
            id: uuid::Uuid::new_v4().simple().to_string(),
            csrf: uuid::Uuid::new_v4().simple().to_string(),
            username,
            created: now,
        };
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        table.make_room(now, self.lifetime);
        table.order.push_back((now, session.id.clone()));
        table.map.insert(session.id.clone(), session.clone());
        session
    }

    /// Forget sessions past their lifetime at Unix time `now`; how many.
    pub fn sweep(&self, now: i64) -> usize {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let before = table.map.len();
        let lifetime = self.lifetime;
        table.map.retain(|_, s| s.created + lifetime > now);
        let Table { map, order } = &mut *table;
        order.retain(|(created, id)| map.get(id).is_some_and(|s| s.created == *created));
        before - map.len()
    }

    /// How many sessions are kept.
    pub fn len(&self) -> usize {
        self.table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map
            .len()
    }

    /// Whether no session is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// End a session (logout, or replaced at login so its id cannot be fixed in advance).
    pub fn end(&self, id: &str) {
        self.table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map
            .remove(id);
    }

    /// The request's live session, or a new anonymous one with the cookie to set.
    pub fn ensure(
        &self,
        headers: &HeaderMap,
        secure: bool,
    ) -> (BrowserSession, Option<HeaderValue>) {
        match self.current(headers) {
            Some(session) => (session, None),
            None => {
                let session = self.start(None);
                let cookie = set_cookie(&session, secure);
                (session, Some(cookie))
            }
        }
    }
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

// Provisional: the rewrite of this file on another branch brings the real one.
impl Sessions {
    /// Whether the session whose id has this SHA-256 is live and signed in.
    pub fn is_signed_in(&self, id_sha256: &[u8; 32]) -> bool {
        use sha2::{Digest, Sha256};
        let now = clock::now();
        let table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        table.map.values().any(|s| {
            s.username.is_some()
                && s.created + self.lifetime > now
                && Sha256::digest(s.id.as_bytes()).as_slice() == id_sha256.as_slice()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_finds_its_session_and_csrf_is_checked() {
        let sessions = Sessions::default();
        let s = sessions.start(Some("daniel-adams".into()));
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("other=1; {COOKIE}={}", s.id)).unwrap(),
        );
        let found = sessions.current(&headers).unwrap();
        assert_eq!(found.username.as_deref(), Some("daniel-adams"));
        assert!(found.csrf_matches(Some(&s.csrf)));
        assert!(!found.csrf_matches(Some("x")));
        assert!(!found.csrf_matches(None));
        sessions.end(&s.id);
        assert!(sessions.current(&headers).is_none());
    }

    #[test]
    fn a_full_table_drops_the_oldest_and_expired_sessions_go_first() {
        let mut table = Table::default();
        let session = |id: &str, created: i64| BrowserSession {
            id: id.into(),
            csrf: String::new(),
            username: None,
            created,
        };
        for (id, created) in [("old", 100), ("ended", 200), ("live", 300)] {
            table.order.push_back((created, id.into()));
            table.map.insert(id.into(), session(id, created));
        }
        table.map.remove("ended");
        table.make_room(300, DEFAULT_LIFETIME);
        assert_eq!(table.map.len(), 2, "nothing expired, room left");
        table.make_room(100 + DEFAULT_LIFETIME, DEFAULT_LIFETIME);
        assert!(!table.map.contains_key("old"), "expired");
        assert!(table.map.contains_key("live"));
        assert_eq!(table.order.len(), 2, "an ended id waits for its turn");
        for n in 0..CAPACITY {
            let id = format!("s{n}");
            table.order.push_back((400, id.clone()));
            table.map.insert(id.clone(), session(&id, 400));
        }
        table.make_room(400, DEFAULT_LIFETIME);
        assert_eq!(table.map.len(), CAPACITY - 1, "full: the oldest made room");
        assert!(!table.map.contains_key("live") && !table.map.contains_key("s0"));
        assert!(table.map.contains_key("s1"));
    }

    #[test]
    fn a_shorter_lifetime_is_what_the_sweep_goes_by() {
        let sessions = Sessions::new(5);
        let s = sessions.start(Some("daniel-adams".into()));
        assert_eq!(sessions.sweep(s.created + 4), 0);
        assert_eq!(sessions.sweep(s.created + 5), 1);
        assert!(sessions.is_empty());
    }

    #[test]
    fn the_cookie_is_http_only_and_lax() {
        let s = Sessions::default().start(None);
        let value = set_cookie(&s, false);
        let text = value.to_str().unwrap();
        assert!(
            text.contains("HttpOnly") && text.contains("SameSite=Lax") && !text.contains("Secure")
        );
    }
}
