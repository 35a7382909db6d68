//! Connection limits: a request head must arrive whole within the header-read timeout and
//! fit the head-size cap, and only so many connections are open at once. Waits are reads
//! until the server closes the socket, under a generous overall deadline.

use std::time::Duration;

use smartnb::server::{self, Config, RunningServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Far longer than any timeout configured here: reaching it means the server held on.
const DEADLINE: Duration = Duration::from_secs(20);

async fn start(config: Config) -> RunningServer {
    server::spawn(Config { port: 0, ..config })
        .await
        .expect("the server starts")
}

/// Short timeout, small head cap, a generous connection cap.
fn tight() -> Config {
    Config {
        header_read_timeout: Duration::from_millis(300),
        max_head_bytes: 16 * 1024,
        ..Config::default()
    }
}

async fn connect(running: &RunningServer) -> TcpStream {
    TcpStream::connect(running.addr).await.expect("connect")
}

/// Everything the server sends until it closes (a reset counts as closed), or a panic when
/// it holds the connection past the deadline.
async fn read_until_closed(stream: &mut TcpStream, what: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    timeout(DEADLINE, async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what}: the server still holds the connection after {DEADLINE:?}"));
    bytes
}

fn status_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.split("\r\n").next().unwrap_or_default().to_string()
}

fn get(port: u16, connection: &str) -> String {
    format!(
        "GET /.well-known/smart-configuration HTTP/1.1\r\nHost: localhost:{port}\r\n\
         Connection: {connection}\r\n\r\n"
    )
}

#[tokio::test]
async fn an_unfinished_request_head_is_closed_after_the_header_timeout() {
    let running = start(tight()).await;
    let mut stream = connect(&running).await;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .expect("send half a head");
    let reply = read_until_closed(&mut stream, "unfinished head").await;
    assert!(
        !status_line(&reply).contains(" 200 "),
        "an unfinished head was answered: {:?}",
        String::from_utf8_lossy(&reply)
    );
    running.shutdown().await;
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_header_timeout() {
    let running = start(tight()).await;
    let mut stream = connect(&running).await;
    let port = running.addr.port();
    stream
        .write_all(get(port, "keep-alive").as_bytes())
        .await
        .expect("send a request");
    let reply = read_until_closed(&mut stream, "idle keep-alive").await;
    assert_eq!(status_line(&reply), "HTTP/1.1 200 OK");
    running.shutdown().await;
}

#[tokio::test]
async fn keep_alive_serves_several_requests_on_one_connection() {
    let running = start(Config::default()).await;
    let port = running.addr.port();
    let mut stream = connect(&running).await;
    let two = format!("{}{}", get(port, "keep-alive"), get(port, "close"));
    stream.write_all(two.as_bytes()).await.expect("send two");
    let reply = read_until_closed(&mut stream, "two requests").await;
    let text = String::from_utf8_lossy(&reply);
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 2, "{text}");
    running.shutdown().await;
}

#[tokio::test]
async fn an_oversized_request_head_gets_431() {
    let running = start(Config {
        header_read_timeout: Duration::from_secs(60),
        ..tight()
    })
    .await;
    let port = running.addr.port();
    let mut stream = connect(&running).await;
    let cookie = "a".repeat(40 * 1024);
    let head = format!(
        "GET /.well-known/smart-configuration HTTP/1.1\r\nHost: localhost:{port}\r\n\
         Cookie: c={cookie}\r\nConnection: close\r\n\r\n"
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let reply = read_until_closed(&mut stream, "oversized head").await;
    let line = status_line(&reply);
    assert!(
        line.is_empty() || line.contains(" 431 "),
        "an over-long head was not refused: {line:?}"
    );
    // A head under the cap is still served.
    let mut stream = connect(&running).await;
    stream
        .write_all(get(port, "close").as_bytes())
        .await
        .expect("send");
    let reply = read_until_closed(&mut stream, "small head").await;
    assert_eq!(status_line(&reply), "HTTP/1.1 200 OK");
    running.shutdown().await;
}

#[tokio::test]
async fn an_unfinished_head_past_the_cap_is_closed_long_before_the_timeout() {
    // The header timeout is a minute: only the size cap can end this connection in time.
    let running = start(Config {
        header_read_timeout: Duration::from_secs(60),
        ..tight()
    })
    .await;
    let mut stream = connect(&running).await;
    let head = format!(
        "GET / HTTP/1.1\r\nHost: localhost\r\nCookie: c={}",
        "a".repeat(380 * 1024)
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let reply = read_until_closed(&mut stream, "unfinished over-long head").await;
    let line = status_line(&reply);
    assert!(
        line.is_empty() || line.contains(" 431 "),
        "unexpected answer {line:?}"
    );
    running.shutdown().await;
}

#[tokio::test]
async fn connections_beyond_the_cap_are_refused_until_one_closes() {
    let running = start(Config {
        header_read_timeout: Duration::from_secs(60),
        max_connections: 2,
        ..tight()
    })
    .await;
    let port = running.addr.port();
    // Two connections hold every permit with half a head each.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = connect(&running).await;
        stream
            .write_all(b"GET /.well-known/smart-configuration HTTP/1.1\r\n")
            .await
            .expect("send half a head");
        held.push(stream);
    }
    // A third is refused at once, whatever it sends.
    let mut extra = connect(&running).await;
    let _ = extra.write_all(get(port, "close").as_bytes()).await;
    let reply = read_until_closed(&mut extra, "connection over the cap").await;
    let line = status_line(&reply);
    assert!(
        line.is_empty() || line.contains(" 503 "),
        "a connection over the cap was served: {line:?}"
    );
    if !line.is_empty() {
        let text = String::from_utf8_lossy(&reply);
        assert!(text.contains("max_connections"), "{text}");
    }
    // The held ones are still open and are served when they finish their heads.
    for stream in &mut held {
        let rest = format!("Host: localhost:{port}\r\nConnection: close\r\n\r\n");
        stream
            .write_all(rest.as_bytes())
            .await
            .expect("finish head");
        let reply = read_until_closed(stream, "held connection").await;
        assert_eq!(status_line(&reply), "HTTP/1.1 200 OK");
    }
    drop(held);
    // Their permits come back as the server finishes them; a new connection is then served.
    // (The server closes the socket a moment before it releases the permit, so try again.)
    let served = timeout(DEADLINE, async {
        loop {
            let mut stream = connect(&running).await;
            let _ = stream.write_all(get(port, "close").as_bytes()).await;
            let reply = read_until_closed(&mut stream, "after the held ones closed").await;
            if status_line(&reply) == "HTTP/1.1 200 OK" {
                break;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(
        served.is_ok(),
        "no new connection was served after the held ones closed"
    );
    running.shutdown().await;
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_request_finish() {
    let running = start(Config::default()).await;
    let port = running.addr.port();
    let body = br#"{"client_name":"Slow","redirect_uris":["http://localhost:9001/authorized"],"scope":"launch/patient patient/*.read"}"#;
    let head = format!(
        "POST /oauth/register HTTP/1.1\r\nHost: localhost:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut stream = connect(&running).await;
    stream.write_all(head.as_bytes()).await.expect("send head");
    // `100 Continue` comes when the handler starts reading the body: the request is in flight.
    let mut interim = [0u8; 25];
    timeout(DEADLINE, stream.read_exact(&mut interim))
        .await
        .expect("100 Continue in time")
        .expect("read 100 Continue");
    assert!(
        interim.starts_with(b"HTTP/1.1 100 Continue"),
        "{:?}",
        String::from_utf8_lossy(&interim)
    );
    let stopping = tokio::spawn(running.shutdown());
    // Let the shutdown reach the connection before the body does.
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    stream.write_all(body).await.expect("send the body");
    let reply = read_until_closed(&mut stream, "in-flight request").await;
    assert_eq!(status_line(&reply), "HTTP/1.1 201 Created");
    timeout(DEADLINE, stopping)
        .await
        .expect("shutdown finishes")
        .expect("shutdown does not panic");
}

/// One whole response from a kept-alive connection: its head and a body of the length the
/// head gives.
async fn read_one_response(stream: &mut TcpStream) -> String {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    timeout(DEADLINE, async {
        loop {
            let text = String::from_utf8_lossy(&bytes).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().ok())?
                    })
                    .expect("a content-length");
                if bytes.len() >= end + 4 + length {
                    return text;
                }
            }
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "closed before a whole response: {text:?}");
            bytes.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .expect("a response in time")
}

fn closes(response: &str) -> bool {
    response
        .lines()
        .any(|l| l.eq_ignore_ascii_case("connection: close"))
}

#[tokio::test]
async fn a_drain_refuses_new_connections_and_closes_open_ones_after_their_next_answer() {
    let running = start(Config::default()).await;
    let addr = running.addr;
    let port = addr.port();
    let mut kept = connect(&running).await;
    kept.write_all(get(port, "keep-alive").as_bytes())
        .await
        .expect("send");
    let first = read_one_response(&mut kept).await;
    assert!(first.starts_with("HTTP/1.1 200 OK"), "{first}");
    assert!(!closes(&first), "closed before any drain: {first}");

    // A limit far beyond the deadline: the drain can only end because no connection is left.
    let draining = tokio::spawn(running.drain(Duration::from_secs(600)));
    timeout(DEADLINE, async {
        while TcpStream::connect(addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("new connections are refused once the drain began");
    assert!(
        !draining.is_finished(),
        "the drain ended with a kept-alive connection still open"
    );

    // The connection kept open before the drain is answered, and closed after the answer.
    kept.write_all(get(port, "keep-alive").as_bytes())
        .await
        .expect("send on the kept connection");
    let reply = read_until_closed(&mut kept, "a request during the drain").await;
    let reply = String::from_utf8_lossy(&reply).to_string();
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
    assert!(
        closes(&reply),
        "no Connection: close during the drain: {reply}"
    );
    timeout(DEADLINE, draining)
        .await
        .expect("the drain ends once its last connection closed")
        .expect("the drain does not panic");
}

#[tokio::test]
async fn a_drain_closes_a_connection_left_idle_when_its_time_is_up() {
    let running = start(Config::default()).await;
    let port = running.addr.port();
    let mut idle = connect(&running).await;
    idle.write_all(get(port, "keep-alive").as_bytes())
        .await
        .expect("send");
    read_one_response(&mut idle).await;
    let draining = tokio::spawn(running.drain(Duration::from_millis(200)));
    let rest = read_until_closed(&mut idle, "an idle connection past the drain").await;
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
    timeout(DEADLINE, draining)
        .await
        .expect("the drain ends at its limit")
        .expect("the drain does not panic");
}
