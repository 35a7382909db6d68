//! One keep-alive HTTP/1.1 connection per virtual client, straight on hyper: the load
//! generator should spend its CPU on the flow, not on a client library's conveniences.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST, LOCATION, SET_COOKIE};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The TCP connection could not be made.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// Where.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// hyper failed to send or receive.
    #[error("HTTP exchange failed: {0}")]
    Exchange(#[from] hyper::Error),
    /// A request could not be built (a bad header value).
    #[error("request could not be built: {0}")]
    Build(#[from] hyper::http::Error),
}

/// A response with its body read.
#[derive(Debug)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The Location header, if any.
    pub location: Option<String>,
    /// Every Set-Cookie header.
    pub set_cookies: Vec<String>,
    /// The Content-Type header.
    pub content_type: String,
    /// The body.
    pub body: Bytes,
}

impl Reply {
    /// The body as text (empty when it is not UTF-8).
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap_or_default()
    }
}

/// A connection to the server that reconnects when the server closed it.
pub struct Conn {
    addr: SocketAddr,
    host: HeaderValue,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    /// A connection to `addr`, announcing `host` (made on first use).
    pub fn new(addr: SocketAddr, host: &str) -> Result<Conn, HttpError> {
        Ok(Conn {
            addr,
            host: HeaderValue::from_str(host).map_err(hyper::http::Error::from)?,
            sender: None,
        })
    }

    async fn sender(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, HttpError> {
        let reusable = match &mut self.sender {
            Some(sender) => sender.ready().await.is_ok(),
            None => false,
        };
        let sender = match self.sender.take() {
            Some(sender) if reusable => sender,
            _ => {
                let stream =
                    TcpStream::connect(self.addr)
                        .await
                        .map_err(|source| HttpError::Connect {
                            addr: self.addr,
                            source,
                        })?;
                let _ = stream.set_nodelay(true);
                let (sender, connection) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
                tokio::spawn(connection);
                sender
            }
        };
        Ok(self.sender.insert(sender))
    }

    /// Send one request on the connection and read the whole answer.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: Option<(&'static str, String)>,
    ) -> Result<Reply, HttpError> {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.host.clone());
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        let payload = match body {
            Some((content_type, text)) => {
                builder = builder.header(CONTENT_TYPE, content_type);
                Bytes::from(text)
            }
            None => Bytes::new(),
        };
        let request = builder.body(Full::new(payload))?;
        let response = self.sender().await?.send_request(request).await?;
        let status = response.status();
        let header = |name: &HeaderName| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let location = header(&LOCATION);
        let content_type = header(&CONTENT_TYPE).unwrap_or_default();
        let set_cookies = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect();
        let body = response.into_body().collect().await?.to_bytes();
        Ok(Reply {
            status,
            location,
            set_cookies,
            content_type,
            body,
        })
    }
}
