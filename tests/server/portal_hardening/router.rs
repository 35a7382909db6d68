//! The whole router over a state the test can look into (how many sessions it holds, how
//! many password checks it ran), driven request by request with `oneshot`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use smartnb::server::pages::session::{Caps, Sessions};
use smartnb::server::store::MemoryStore;
use smartnb::server::{self, AppState, Config};
use tower::ServiceExt;

/// The base URL the state believes it has.
pub const BASE: &str = "http://localhost:9000";
/// The shipped demo password.
pub const PASSWORD: &str = "demo-password";

/// One answer, read whole.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    /// The Location header, as bytes turned to text.
    pub fn location(&self) -> Option<String> {
        self.headers
            .get(header::LOCATION)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }

    /// The session cookie this answer sets, `name=value`.
    pub fn cookie(&self) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("smartnb_session=") && !c.contains("Max-Age=0"))
            .and_then(|c| c.split(';').next())
            .map(str::to_string)
    }

    /// The value of a hidden form field, as written in the page.
    pub fn hidden(&self, name: &str) -> Option<String> {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&marker)? + marker.len();
        let len = self.body[start..].find('"')?;
        Some(self.body[start..start + len].to_string())
    }

    /// The text of the page's error box.
    pub fn alert(&self) -> Option<String> {
        let start = self.body.find("role=\"alert\">")? + "role=\"alert\">".len();
        let len = self.body[start..].find("</div>")?;
        Some(self.body[start..start + len].to_string())
    }
}

/// A state and its router.
pub struct Portal {
    pub state: Arc<AppState>,
    router: axum::Router,
}

impl Portal {
    /// The default state.
    pub fn new() -> Portal {
        Portal::with_caps_of(Caps::default())
    }

    /// A state whose sessions are bounded by these caps.
    pub fn with_caps(total: usize, per_user: usize) -> Portal {
        Portal::with_caps_of(Caps { total, per_user })
    }

    fn with_caps_of(caps: Caps) -> Portal {
        let addr = SocketAddr::from(([127, 0, 0, 1], 9000));
        let store = Arc::new(MemoryStore::new());
        let mut state = AppState::new(Config::default(), BASE.to_string(), addr, store.clone());
        state.sessions = Sessions::with_caps(
            store,
            smartnb::server::pages::session::DEFAULT_LIFETIME,
            caps,
        );
        let state = Arc::new(state);
        Portal {
            router: server::router(state.clone()),
            state,
        }
    }

    async fn send(&self, request: Request<Body>) -> Answer {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .unwrap_or_else(|never| match never {});
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("a readable body");
        let body = String::from_utf8_lossy(&body).into_owned();
        assert!(!status.is_server_error(), "{status}: {body}");
        Answer {
            status,
            headers,
            body,
        }
    }

    /// GET a path (raw target, as sent on the wire), with a cookie or none.
    pub async fn get(&self, target: &str, cookie: Option<&str>) -> Answer {
        let mut request = Request::get(target).header(header::HOST, "localhost:9000");
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        self.send(request.body(Body::empty()).expect("a request"))
            .await
    }

    /// POST a form, with a cookie or none.
    pub async fn post(&self, path: &str, cookie: Option<&str>, pairs: &[(&str, &str)]) -> Answer {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        let mut request = Request::post(path)
            .header(header::HOST, "localhost:9000")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        self.send(request.body(Body::from(body)).expect("a request"))
            .await
    }

    /// A fresh browser at GET /login: its cookie and the form's CSRF token.
    pub async fn anonymous(&self) -> (String, String) {
        let login = self.get("/login", None).await;
        assert_eq!(login.status, StatusCode::OK, "{}", login.body);
        let cookie = login.cookie().expect("an anonymous browser gets a cookie");
        let csrf = login.hidden("csrf").expect("the form's CSRF token");
        (cookie, csrf)
    }

    /// POST /login from an anonymous browser.
    pub async fn try_sign_in(&self, username: &str, password: &str) -> Answer {
        let (cookie, csrf) = self.anonymous().await;
        self.sign_in_from(&cookie, &csrf, username, password).await
    }

    /// POST /login with this cookie and CSRF token.
    pub async fn sign_in_from(
        &self,
        cookie: &str,
        csrf: &str,
        username: &str,
        password: &str,
    ) -> Answer {
        self.post(
            "/login",
            Some(cookie),
            &[
                ("csrf", csrf),
                ("username", username),
                ("password", password),
            ],
        )
        .await
    }

    /// Sign in with the demo password; the signed-in session's cookie.
    pub async fn sign_in(&self, username: &str) -> String {
        let answer = self.try_sign_in(username, PASSWORD).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        answer.cookie().expect("a signed-in session cookie")
    }

    /// Whether this cookie's browser is signed in: /apps shows the list rather than
    /// sending it to sign in.
    pub async fn signed_in(&self, cookie: &str) -> bool {
        self.get("/apps", Some(cookie)).await.status == StatusCode::OK
    }
}
