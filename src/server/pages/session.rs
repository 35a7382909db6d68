//! Browser sessions for the portal pages: a cookie naming a server-side session that holds
//! the signed-in user and the CSRF token every form must echo.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::{header, HeaderMap, HeaderValue};
use cookie::{Cookie, SameSite};
use subtle::ConstantTimeEq;

use crate::server::clock;

/// The session cookie's name.
pub const COOKIE: &str = "smartnb_session";
/// How long a session lasts without being renewed by a login.
const LIFETIME: i64 = 12 * 3600;
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
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, BrowserSession>>,
}

impl Sessions {
    /// The session the request's cookie names, if it is live.
    pub fn current(&self, headers: &HeaderMap) -> Option<BrowserSession> {
        let id = cookie_value(headers)?;
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&id)
            .filter(|s| s.created + LIFETIME > clock::now())
            .cloned()
    }

    /// Start a new session (anonymous, or signed in after a login).
    pub fn start(&self, username: Option<String>) -> BrowserSession {
        let session = BrowserSession {
            id: uuid::Uuid::new_v4().simple().to_string(),
            csrf: uuid::Uuid::new_v4().simple().to_string(),
            username,
            created: clock::now(),
        };
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= CAPACITY {
            let cutoff = clock::now() - LIFETIME;
            map.retain(|_, s| s.created > cutoff);
            if map.len() >= CAPACITY {
                if let Some(oldest) = map.values().min_by_key(|s| s.created).map(|s| s.id.clone()) {
                    map.remove(&oldest);
                }
            }
        }
        map.insert(session.id.clone(), session.clone());
        session
    }

    /// Forget sessions past their lifetime at Unix time `now`; how many.
    pub fn sweep(&self, now: i64) -> usize {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let before = map.len();
        map.retain(|_, s| s.created + LIFETIME > now);
        before - map.len()
    }

    /// How many sessions are kept.
    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no session is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// End a session (logout, or replaced at login so its id cannot be fixed in advance).
    pub fn end(&self, id: &str) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
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

/// `Set-Cookie` that deletes the session cookie.
pub fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("smartnb_session=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0")
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
    fn the_cookie_is_http_only_and_lax() {
        let s = Sessions::default().start(None);
        let value = set_cookie(&s, false);
        let text = value.to_str().unwrap();
        assert!(
            text.contains("HttpOnly") && text.contains("SameSite=Lax") && !text.contains("Secure")
        );
    }
}
