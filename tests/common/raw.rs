//! Raw HTTP/1.1 over a TCP socket, for requests an HTTP client library would tidy up first
//! (dot segments, bad percent-encoding, odd methods, bodies that are not what they claim).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;

/// One raw response.
#[derive(Debug)]
pub struct RawReply {
    /// Status code from the status line.
    pub status: u16,
    /// Header lines as (lower-case name, value).
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl RawReply {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON, if it is.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// A request with `Connection: close`: method, raw target, extra headers, body. Without a
/// Host among the headers, [`send`] names `localhost` with the server's port, as a client
/// library would.
pub fn request(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\nConnection: close\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" || method == "PUT" {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Send one request (with a Host header added when it has none) and read the response
/// until the server closes the connection.
pub async fn send(addr: SocketAddr, request: Vec<u8>) -> RawReply {
    send_exact(addr, with_host(request, addr.port())).await
}

/// Send these bytes as they are, Host or not.
pub async fn send_exact(addr: SocketAddr, request: Vec<u8>) -> RawReply {
    tokio::task::spawn_blocking(move || exchange(addr, &request))
        .await
        .expect("the raw exchange does not panic")
}

/// `Host: localhost:{port}` after the request line, unless the head has a Host already.
fn with_host(request: Vec<u8>, port: u16) -> Vec<u8> {
    let head_end = request
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(request.len());
    let head = String::from_utf8_lossy(&request[..head_end]);
    let has_host = head
        .split("\r\n")
        .skip(1)
        .any(|line| line.to_ascii_lowercase().starts_with("host:"));
    let Some(line_end) = request.windows(2).position(|w| w == b"\r\n") else {
        return request;
    };
    if has_host {
        return request;
    }
    let mut out = request[..line_end + 2].to_vec();
    out.extend_from_slice(format!("Host: localhost:{port}\r\n").as_bytes());
    out.extend_from_slice(&request[line_end + 2..]);
    out
}

fn exchange(addr: SocketAddr, request: &[u8]) -> RawReply {
    let mut stream = TcpStream::connect(addr).expect("connect to the test server");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("set a read timeout");
    stream.write_all(request).expect("send the request");
    let mut bytes = Vec::new();
    stream
        .read_to_end(&mut bytes)
        .expect("read the response to the end");
    parse(&bytes)
}

fn parse(bytes: &[u8]) -> RawReply {
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(bytes)));
    let head = String::from_utf8_lossy(&bytes[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &bytes[split + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    RawReply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else {
            return body;
        };
        let size_text = String::from_utf8_lossy(&rest[..end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or(0);
        if size == 0 || rest.len() < end + 2 + size {
            return body;
        }
        body.extend_from_slice(&rest[end + 2..end + 2 + size]);
        rest = &rest[(end + 4 + size).min(rest.len())..];
    }
}
