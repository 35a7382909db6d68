//! `authorize --listen`: catch the browser's redirect on the redirect URI's own port
//! (tiny_http), check state, and thank the browser with a small page.

use std::time::{Duration, Instant};

use super::super::context::{interrupted, Ctx};
use super::super::output::{CommandError, Output};
use super::authorize::Answer;

/// How long to wait for the browser by default, in seconds.
pub const DEFAULT_TIMEOUT: u64 = 300;

const DONE_PAGE: &str = "<!doctype html><meta charset=utf-8><title>smartnb</title><body style=\"font:16px system-ui;margin:3rem\"><h1>You can close this tab</h1><p>smartnb received the answer and is back in your notebook.</p>";

fn page(status: u16, body: &str) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let header = tiny_http::Header::from_bytes("Content-Type", "text/html; charset=utf-8")
        .expect("static header");
    tiny_http::Response::from_string(body)
        .with_status_code(status)
        .with_header(header)
}

/// Wait for the redirect; the code.
pub(super) fn catch(
    ctx: &mut Ctx,
    redirect_uri: &str,
    state: &str,
    timeout: u64,
) -> Result<String, CommandError> {
    let where_to = url::Url::parse(redirect_uri)
        .map_err(|_| CommandError::new("BadValue", format!("{redirect_uri:?} is not a URL")))?;
    let local = matches!(
        where_to.host_str(),
        Some("localhost" | "127.0.0.1" | "[::1]")
    );
    if where_to.scheme() != "http" || !local {
        return Err(CommandError::new("CannotListen", format!("--listen can only catch redirects to http://localhost…, not {redirect_uri}"))
            .hint("register a redirect URI such as http://localhost:9001/authorized (`register --redirect-uri …`), or paste the code into `exchange CODE`"));
    }
    // Watch for interrupts before the port opens: once it accepts connections, the
    // person (or a test) may interrupt, and a watch taken later would miss it.
    let interrupts = ctx.state.interrupter.watch();
    let port = where_to.port_or_known_default().unwrap_or(80);
    let host = if where_to.host_str() == Some("[::1]") {
        "::1"
    } else {
        "127.0.0.1"
    };
    let server = tiny_http::Server::http((host, port)).map_err(|e| {
        CommandError::new(
            "CannotListen",
            format!("cannot listen on {host}:{port}: {e}"),
        )
        .hint("another program uses that port; register another redirect URI")
    })?;
    ctx.emit(Output::Text(format!(
        "Open the link above in a browser. Waiting up to {timeout} s for it to come back to {redirect_uri} (interrupt to stop)…"
    )));
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let expected_path = where_to.path().to_string();
    loop {
        if interrupts.has_changed().unwrap_or(false) {
            return Err(interrupted());
        }
        if Instant::now() >= deadline {
            return Err(CommandError::new(
                "Timeout",
                format!("no browser came back within {timeout} s"),
            )
            .hint("run `authorize --listen` again, with --timeout SECONDS for longer"));
        }
        let Ok(Some(request)) = server.recv_timeout(Duration::from_millis(100)) else {
            continue;
        };
        let url = match url::Url::parse(&format!("http://localhost{}", request.url())) {
            Ok(u) => u,
            Err(_) => continue,
        };
        if url.path() != expected_path {
            let _ = request.respond(page(404, "<h1>Not here</h1><p>smartnb is waiting for the authorization redirect elsewhere on this port.</p>"));
            continue;
        }
        let answer = Answer::read(&url, state);
        let (status, body) = match &answer {
            Answer::WrongState(_) => (400, "<h1>State mismatch</h1><p>This answer does not belong to the request smartnb sent. It was ignored.</p>"),
            Answer::Empty => (400, "<h1>No code</h1><p>The redirect carried neither a code nor an error.</p>"),
            Answer::Code(_) | Answer::Refused(..) => (200, DONE_PAGE),
        };
        let _ = request.respond(page(status, body));
        let code = answer.into_code(state)?;
        ctx.emit(Output::Text(format!(
            "Received the code; state {state:?} matches"
        )));
        return Ok(code);
    }
}
