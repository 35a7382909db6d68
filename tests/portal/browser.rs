//! A participant's browser: a cookie jar, pages, forms, and redirects followed by hand so
//! the walk stops where the server hands the participant back to the app.

use std::sync::Arc;

use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::LOCATION;
use reqwest::redirect::Policy;
use reqwest::{Response, StatusCode};
use url::Url;

use super::api::TestServer;
use super::html::{Form, Page};

/// How many same-server redirects a walk may take before the test calls it a loop.
const MAX_HOPS: usize = 10;

/// One browser profile: its own cookies, so its own portal session.
pub struct Browser {
    http: reqwest::Client,
    jar: Arc<Jar>,
    base: Url,
}

/// Where a navigation ended.
#[derive(Debug)]
pub enum Landing {
    /// A page on the server.
    Page(Page),
    /// A redirect off the server: the app's redirect_uri receiving its answer.
    Away(Callback),
}

/// The redirect that hands the participant back to the app.
#[derive(Debug, Clone)]
pub struct Callback {
    /// The redirect's status.
    pub status: StatusCode,
    /// Where it points.
    pub url: Url,
}

impl Callback {
    /// A query parameter of the redirect, decoded.
    pub fn param(&self, name: &str) -> Option<String> {
        self.url
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// The authorization code, which the test expects.
    pub fn code(&self) -> String {
        self.param("code")
            .unwrap_or_else(|| panic!("no code in {}", self.url))
    }

    /// The URL without its query: where the app receives answers.
    pub fn target(&self) -> String {
        let mut url = self.url.clone();
        url.set_query(None);
        url.to_string()
    }
}

impl Landing {
    /// The page landed on (the test fails if the browser left the server).
    pub fn page(self) -> Page {
        match self {
            Landing::Page(page) => page,
            Landing::Away(callback) => panic!("expected a page, was sent to {}", callback.url),
        }
    }

    /// The redirect to the app (the test fails if the browser stayed on a page).
    pub fn callback(self) -> Callback {
        match self {
            Landing::Away(callback) => callback,
            Landing::Page(page) => panic!(
                "expected a redirect to the app, got {} {} saying: {}",
                page.status,
                page.url,
                page.text()
            ),
        }
    }
}

impl Browser {
    /// A fresh browser with no cookies, pointed at this server.
    pub fn new(server: &TestServer) -> Browser {
        let jar = Arc::new(Jar::default());
        let http = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(Policy::none())
            .build()
            .expect("an HTTP client");
        Browser {
            http,
            jar,
            base: Url::parse(&server.base_url).expect("a base URL"),
        }
    }

    /// The value of a cookie the browser would send to the server.
    pub fn cookie(&self, name: &str) -> Option<String> {
        let header = self.jar.cookies(&self.base)?;
        let text = header.to_str().ok()?.to_string();
        text.split(';')
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }

    /// Plant a cookie for the server, as an attacker who fixed it in advance would.
    pub fn plant_cookie(&self, name: &str, value: &str) {
        self.jar
            .add_cookie_str(&format!("{name}={value}; Path=/"), &self.base);
    }

    /// Type an address (absolute, or a path on the server) and follow where it leads.
    pub async fn open(&self, address: &str) -> Landing {
        let url = self.base.join(address).expect("a valid address");
        let response = self.http.get(url.clone()).send().await.expect("GET");
        self.follow(url, response).await
    }

    /// Press a form's button (by label; "" for its only one) and follow where it leads.
    pub async fn submit(&self, form: &Form, button: &str) -> Landing {
        let pairs = form.pairs(button);
        let mut url = form.action.clone();
        let request = if form.method == "post" {
            self.http.post(url.clone()).form(&pairs)
        } else {
            url.query_pairs_mut().clear().extend_pairs(&pairs);
            self.http.get(url.clone())
        };
        let response = request.send().await.expect("the form is submitted");
        self.follow(url, response).await
    }

    /// Follow redirects that stay on the server; stop at a page or at one that leaves.
    async fn follow(&self, mut url: Url, mut response: Response) -> Landing {
        for _ in 0..MAX_HOPS {
            let status = response.status();
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let Some(location) = location.filter(|_| status.is_redirection()) else {
                let headers = response.headers().clone();
                let body = response.text().await.expect("a page body");
                assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "a 500: {body}");
                return Landing::Page(Page {
                    status,
                    url,
                    headers,
                    body,
                });
            };
            let next = url.join(&location).expect("a valid Location");
            if next.origin() != self.base.origin() {
                return Landing::Away(Callback { status, url: next });
            }
            response = self.http.get(next.clone()).send().await.expect("GET");
            url = next;
        }
        panic!("more than {MAX_HOPS} redirects, the last to {url}");
    }

    /// Sign in on a login page with the shipped password.
    pub async fn sign_in(&self, login: Page, username: &str) -> Landing {
        let mut form = login.form("/login");
        form.fill("username", username);
        form.fill("password", super::flow::PASSWORD);
        self.submit(&form, "Sign in").await
    }
}
