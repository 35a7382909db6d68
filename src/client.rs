//! SmartClient: HTTP to a SMART server (embedded or remote), one method per endpoint.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::Method;
use serde_json::Value;

/// How long any request may take.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// A server's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// The body, parsed when it is JSON.
    pub body: Body,
    /// The `Location` header, for redirects.
    pub location: Option<String>,
    /// The `Smartnb-Simulated` header: the fault a smartnb server simulated on purpose for
    /// this answer, and how many more it will answer.
    pub simulated: Option<String>,
    /// Every response header, in the order received (names in lower case).
    pub headers: Vec<(String, String)>,
}

/// A response body.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// A JSON document.
    Json(Value),
    /// Anything else, as text.
    Text(String),
    /// Nothing.
    Empty,
}

impl Reply {
    /// The JSON body, if there is one.
    pub fn json(&self) -> Option<&Value> {
        match &self.body {
            Body::Json(v) => Some(v),
            _ => None,
        }
    }

    /// A string field of the JSON body.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.json()?.get(name)?.as_str()
    }

    /// Whether the status is 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing answered at that address.
    #[error("cannot reach {url}: {detail}")]
    Unreachable {
        /// Where the request went.
        url: String,
        /// The underlying reason.
        detail: String,
    },
    /// Something answered at that host, but nothing listens on the port.
    #[error("{url}: connection refused (nothing listens there)")]
    Refused {
        /// Where the request went.
        url: String,
    },
    /// The server took longer than the timeout.
    #[error("{url} did not answer within {} s", TIMEOUT.as_secs())]
    Timeout {
        /// Where the request went.
        url: String,
    },
    /// The URL could not be used.
    #[error("{0:?} is not a usable http(s) URL")]
    BadUrl(String),
    /// A header name or value is not valid HTTP.
    #[error("bad header {0:?}; write it as Name:value")]
    BadHeader(String),
}

/// How a client authenticates at the token endpoint.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientAuth {
    /// HTTP Basic with id and secret.
    Basic(String, String),
    /// No Authorization header (a public client sends client_id in the form).
    None,
}

/// One request, for `http` and the methods below.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// GET, POST, …
    pub method: String,
    /// Absolute URL.
    pub url: String,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// A JSON body.
    pub json: Option<Value>,
    /// A form body.
    pub form: Option<Vec<(String, String)>>,
    /// Basic credentials.
    pub basic: Option<(String, String)>,
    /// Bearer token.
    pub bearer: Option<String>,
}

/// HTTP to SMART servers, with a timeout on every request and redirects not followed (a
/// redirect is part of what the walkthrough shows).
#[derive(Clone)]
pub struct SmartClient {
    http: reqwest::Client,
}

impl SmartClient {
    /// A client with rustls, the standard timeout and no automatic redirects.
    pub fn new() -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("smartnb/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Unreachable {
                url: String::new(),
                detail: e.to_string(),
            })?;
        Ok(SmartClient { http })
    }

    /// GET with an optional bearer token.
    pub async fn get(&self, url: &str, bearer: Option<&str>) -> Result<Reply, ClientError> {
        self.send(Request {
            method: "GET".into(),
            url: url.into(),
            bearer: bearer.map(str::to_string),
            ..Default::default()
        })
        .await
    }

    /// POST a JSON body.
    pub async fn post_json(&self, url: &str, body: &Value) -> Result<Reply, ClientError> {
        self.send(Request {
            method: "POST".into(),
            url: url.into(),
            json: Some(body.clone()),
            ..Default::default()
        })
        .await
    }

    /// POST a form, authenticated as a client.
    pub async fn post_form(
        &self,
        url: &str,
        form: Vec<(String, String)>,
        auth: ClientAuth,
    ) -> Result<Reply, ClientError> {
        self.send(Request {
            method: "POST".into(),
            url: url.into(),
            form: Some(form),
            basic: match auth {
                ClientAuth::Basic(id, secret) => Some((id, secret)),
                ClientAuth::None => None,
            },
            ..Default::default()
        })
        .await
    }

    /// Send any request.
    pub async fn send(&self, request: Request) -> Result<Reply, ClientError> {
        let url = reqwest::Url::parse(&request.url)
            .map_err(|_| ClientError::BadUrl(request.url.clone()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ClientError::BadUrl(request.url));
        }
        let method = Method::from_bytes(request.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| ClientError::BadHeader(request.method.clone()))?;
        let mut headers = HeaderMap::new();
        for (name, value) in &request.headers {
            let bad = || ClientError::BadHeader(format!("{name}:{value}"));
            let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| bad())?;
            let value = HeaderValue::from_str(value.trim()).map_err(|_| bad())?;
            headers.append(name, value);
        }
        let mut builder = self.http.request(method, url);
        if let Some(token) = &request.bearer {
            let value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| ClientError::BadHeader("Authorization: Bearer …".into()))?;
            builder = builder.header(AUTHORIZATION, value);
        }
        if let Some((id, secret)) = &request.basic {
            builder = builder.basic_auth(id, Some(secret));
        }
        if let Some(json) = &request.json {
            builder = builder.json(json);
        }
        if let Some(form) = &request.form {
            let body = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form)
                .finish();
            builder = builder
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(body);
        }
        let response = builder
            .headers(headers)
            .send()
            .await
            .map_err(|e| classify(&request.url, e))?;
        reply(response).await.map_err(|e| classify(&request.url, e))
    }
}

async fn reply(response: reqwest::Response) -> Result<Reply, reqwest::Error> {
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let simulated = simulated_header(response.headers());
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let text = response.text().await?;
    let body = if text.trim().is_empty() {
        Body::Empty
    } else {
        match serde_json::from_str::<Value>(&text) {
            Ok(value) if value.is_object() || value.is_array() => Body::Json(value),
            _ => Body::Text(text),
        }
    };
    Ok(Reply {
        status,
        body,
        location,
        simulated,
        headers,
    })
}

/// The `Smartnb-Simulated` header's value, when an answer has one.
pub fn simulated_header(headers: &HeaderMap) -> Option<String> {
    headers
        .get(SIMULATED)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// The header a smartnb server puts on an answer it simulated a fault for.
pub const SIMULATED: &str = "smartnb-simulated";

fn classify(url: &str, error: reqwest::Error) -> ClientError {
    if error.is_timeout() {
        ClientError::Timeout {
            url: url.to_string(),
        }
    } else if refused(&error) {
        ClientError::Refused {
            url: url.to_string(),
        }
    } else {
        let mut detail = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(inner) = source {
            detail = format!("{detail}: {inner}");
            source = inner.source();
        }
        ClientError::Unreachable {
            url: url.to_string(),
            detail,
        }
    }
}

/// Whether a connection was refused (somewhere in the error's chain of causes).
fn refused(error: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        if let Some(io) = inner.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return true;
            }
        }
        source = inner.source();
    }
    false
}
