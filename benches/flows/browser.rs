//! A participant's browser over one connection: it keeps the portal's cookies, follows the
//! portal's redirects, and stops when a redirect leaves for the app.

use cookie::Cookie;
use hyper::header::{HeaderValue, COOKIE};
use hyper::Method;

use crate::flow::FlowError;
use crate::http::{Conn, Reply};

/// Where a request ended after the portal's redirects.
#[derive(Debug)]
pub enum Landing {
    /// A page of the portal.
    Page(Reply),
    /// A redirect to somewhere else: the app's redirect URI with the answer.
    Away(String),
}

/// Cookies and redirects for one participant; a new `Browser` is a fresh browser.
pub struct Browser<'a> {
    conn: &'a mut Conn,
    base: &'a str,
    cookies: Vec<(String, String)>,
}

const MAX_REDIRECTS: usize = 10;

impl<'a> Browser<'a> {
    /// A browser with no cookies, talking to the portal at `base` over `conn`.
    pub fn new(conn: &'a mut Conn, base: &'a str) -> Browser<'a> {
        Browser {
            conn,
            base,
            cookies: Vec::new(),
        }
    }

    /// Open a link (an absolute URL on the portal, or a path).
    pub async fn open(&mut self, link: &str) -> Result<Landing, FlowError> {
        let path = self.own_path(link).ok_or_else(|| FlowError::Unexpected {
            step: "open",
            detail: format!("{link} is not on the portal"),
        })?;
        self.follow(Method::GET, path, None).await
    }

    /// Submit a form body to a path on the portal.
    pub async fn post(&mut self, path: &str, body: String) -> Result<Landing, FlowError> {
        self.follow(Method::POST, path.to_string(), Some(body))
            .await
    }

    fn own_path(&self, link: &str) -> Option<String> {
        if link.starts_with('/') {
            return Some(link.to_string());
        }
        link.strip_prefix(self.base)
            .filter(|rest| rest.starts_with('/'))
            .map(str::to_string)
    }

    async fn follow(
        &mut self,
        mut method: Method,
        mut path: String,
        mut body: Option<String>,
    ) -> Result<Landing, FlowError> {
        for _ in 0..MAX_REDIRECTS {
            let headers = match self.cookie_header() {
                Some(value) => vec![(COOKIE, value)],
                None => Vec::new(),
            };
            let form = body
                .take()
                .map(|b| ("application/x-www-form-urlencoded", b));
            let reply = self.conn.send(method, &path, &headers, form).await?;
            self.remember(&reply.set_cookies);
            FlowError::check_5xx(&reply)?;
            let Some(location) = reply
                .location
                .clone()
                .filter(|_| reply.status.is_redirection())
            else {
                return Ok(Landing::Page(reply));
            };
            match self.own_path(&location) {
                Some(next) => {
                    method = Method::GET;
                    path = next;
                }
                None => return Ok(Landing::Away(location)),
            }
        }
        Err(FlowError::Unexpected {
            step: "redirects",
            detail: format!("more than {MAX_REDIRECTS} redirects"),
        })
    }

    fn remember(&mut self, set_cookies: &[String]) {
        for text in set_cookies {
            let Ok(cookie) = Cookie::parse(text.as_str()) else {
                continue;
            };
            self.cookies.retain(|(name, _)| name != cookie.name());
            let deleted = cookie.value().is_empty()
                || cookie
                    .max_age()
                    .is_some_and(|age| age.is_zero() || age.is_negative());
            if !deleted {
                self.cookies
                    .push((cookie.name().to_string(), cookie.value().to_string()));
            }
        }
    }

    fn cookie_header(&self) -> Option<HeaderValue> {
        if self.cookies.is_empty() {
            return None;
        }
        let text: Vec<String> = self
            .cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        HeaderValue::from_str(&text.join("; ")).ok()
    }

    /// The connection, for the app's own requests between pages.
    pub fn conn(&mut self) -> &mut Conn {
        self.conn
    }
}
