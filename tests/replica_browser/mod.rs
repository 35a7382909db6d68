//! A browser whose every request may go to a different server: it keeps the session cookie
//! itself (one browser, many origins), follows no redirect on its own, and reads forms with
//! the portal module's parser, so a test can post a form drawn from one replica to another.
#![allow(dead_code)]

use std::sync::Mutex;

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use reqwest::StatusCode;
use url::Url;

use crate::portal::{Form, Page};

/// What a request was answered: a page, or a redirect's Location (absolute).
pub enum Answer {
    /// Not a redirect.
    Page(Page),
    /// A redirect to this URL.
    Redirect(StatusCode, Url),
}

impl Answer {
    /// The page; panics on a redirect.
    pub fn page(self) -> Page {
        match self {
            Answer::Page(page) => page,
            Answer::Redirect(status, to) => panic!("expected a page, got {status} to {to}"),
        }
    }

    /// Where it redirects; panics on a page.
    pub fn location(self) -> Url {
        match self {
            Answer::Redirect(_, to) => to,
            Answer::Page(page) => {
                panic!("expected a redirect, got {}: {}", page.status, page.text())
            }
        }
    }
}

/// One browser with one session cookie.
pub struct Browser {
    http: reqwest::Client,
    cookie: Mutex<Option<String>>,
}

impl Default for Browser {
    fn default() -> Self {
        Browser {
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .expect("an HTTP client"),
            cookie: Mutex::new(None),
        }
    }
}

impl Browser {
    /// The session cookie's value, if one was set.
    pub fn cookie(&self) -> Option<String> {
        self.cookie.lock().unwrap().clone()
    }

    async fn send(&self, request: reqwest::RequestBuilder, url: Url) -> Answer {
        let request = match self.cookie() {
            Some(value) => request.header(COOKIE, format!("smartnb_session={value}")),
            None => request,
        };
        let response = request.send().await.expect("the server answers");
        for set in response.headers().get_all(SET_COOKIE) {
            let text = set.to_str().unwrap_or_default();
            if let Some(rest) = text.strip_prefix("smartnb_session=") {
                let value = rest.split(';').next().unwrap_or_default();
                *self.cookie.lock().unwrap() = (!value.is_empty()).then(|| value.to_string());
            }
        }
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .expect("a Location");
            return Answer::Redirect(status, url.join(location).expect("a valid Location"));
        }
        let headers = response.headers().clone();
        let body = response.text().await.expect("a body");
        assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "a 500: {body}");
        Answer::Page(Page {
            status,
            url,
            headers,
            body,
        })
    }

    /// GET a path (with its query) on the server at `base`.
    pub async fn get(&self, base: &str, path: &str) -> Answer {
        let url = Url::parse(base).unwrap().join(path).expect("a valid path");
        self.send(self.http.get(url.clone()), url).await
    }

    /// Press a form's button, posting it to the same path on the server at `base`
    /// (whichever server drew the form).
    pub async fn submit(&self, base: &str, form: &Form, button: &str) -> Answer {
        let mut url = Url::parse(base).unwrap();
        url.set_path(form.action.path());
        url.set_query(form.action.query());
        let request = self.http.post(url.clone()).form(&form.pairs(button));
        self.send(request, url).await
    }
}

/// The path and query of a URL, to open it on another server.
pub fn path_of(url: &Url) -> String {
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_string(),
    }
}

mod across;
