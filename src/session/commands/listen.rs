//! `authorize --listen`: catch the browser's redirect on the redirect URI's own port
//! (tiny_http), check state, and thank the browser with a small page. When the client has a
//! launch URL on this machine, the EHR's request to it is caught too: its `iss` is checked
//! against the target, and the browser is sent on to authorize with the launch it brought.

use std::time::{Duration, Instant};

use url::Url;

use super::super::context::{interrupted, Ctx};
use super::super::output::{CommandError, Output};
use super::authorize::{authorize_url, with_launch_scope, Answer};

/// How long to wait for the browser by default, in seconds.
pub const DEFAULT_TIMEOUT: u64 = 300;

const DONE_PAGE: &str = "<!doctype html><meta charset=utf-8><title>smartnb</title><body style=\"font:16px system-ui;margin:3rem\"><h1>You can close this tab</h1><p>smartnb received the answer. Go back to smartnb (your terminal or notebook) to carry on.</p>";

/// What `--listen` needs to play the app under an EHR launch.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Ehr {
    /// The client's registered launch URL (`initiate_login_uri`).
    pub launch_uri: String,
    /// The FHIR base an EHR's `iss` must name: the target's.
    pub fhir: String,
    /// The authorization endpoint.
    pub authorize: String,
    /// The authorize request's parameters, without `launch`.
    pub params: Vec<(String, String)>,
}

/// Why an EHR's request to the launch URL was refused.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum LaunchRefusal {
    /// `iss` or `launch` is missing.
    Missing(&'static str),
    /// `iss` names another server than the one the session targets.
    OtherIssuer(String),
}

/// What one request to a listening port is.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Route {
    /// A path smartnb is not waiting on.
    Elsewhere,
    /// The redirect back from the authorization server.
    Redirect(Answer),
    /// The EHR opened the launch URL for the target server: go on to this authorize URL.
    Launch {
        /// The launch id.
        launch: String,
        /// The EHR's FHIR base.
        iss: String,
        /// Where to send the browser.
        authorize: String,
    },
    /// The EHR's request cannot be followed.
    BadLaunch(LaunchRefusal),
}

/// Where smartnb waits: the redirect URI, and the launch URL when there is one.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Waits<'a> {
    /// The redirect URI.
    pub redirect: Url,
    /// The state the authorize request sent.
    pub state: &'a str,
    /// The launch URL and what to do with a launch.
    pub ehr: Option<(Url, &'a Ehr)>,
}

/// The same URL without a trailing slash, for comparing FHIR bases.
fn trimmed(url: &str) -> &str {
    url.trim_end_matches('/')
}

impl Waits<'_> {
    /// Decide what a request (its path and query, as the browser sent it) arriving on `port`
    /// is for.
    pub fn route(&self, port: u16, target: &str) -> Route {
        let Ok(url) = Url::parse(&format!("http://localhost{target}")) else {
            return Route::Elsewhere;
        };
        let on = |u: &Url| u.port_or_known_default() == Some(port) && u.path() == url.path();
        let has = |name: &str| url.query_pairs().any(|(k, _)| k == name);
        if let Some((launch_uri, ehr)) = &self.ehr {
            // A launch URL that is also the redirect URI: a launch is the request with iss.
            let redirect_too = on(&self.redirect) && !has("iss") && !has("launch");
            if on(launch_uri) && !redirect_too {
                return launch_route(&url, ehr);
            }
        }
        if on(&self.redirect) {
            return Route::Redirect(Answer::read(&url, self.state));
        }
        Route::Elsewhere
    }
}

fn launch_route(url: &Url, ehr: &Ehr) -> Route {
    let get = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .filter(|v| !v.is_empty())
    };
    let Some(iss) = get("iss") else {
        return Route::BadLaunch(LaunchRefusal::Missing("iss"));
    };
    let Some(launch) = get("launch") else {
        return Route::BadLaunch(LaunchRefusal::Missing("launch"));
    };
    // SMART App Launch: an app follows a launch only from a FHIR server it knows; here that
    // is the target, so a launch naming another server is refused.
    if trimmed(&iss) != trimmed(&ehr.fhir) {
        return Route::BadLaunch(LaunchRefusal::OtherIssuer(iss));
    }
    let mut params: Vec<(String, String)> = ehr
        .params
        .iter()
        .filter(|(k, _)| k != "launch")
        .map(|(k, v)| match k.as_str() {
            "scope" => (k.clone(), with_launch_scope(v)),
            _ => (k.clone(), v.clone()),
        })
        .collect();
    params.push(("launch".into(), launch.clone()));
    Route::Launch {
        authorize: authorize_url(&ehr.authorize, &params),
        launch,
        iss,
    }
}

fn page(status: u16, body: &str) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let header = tiny_http::Header::from_bytes("Content-Type", "text/html; charset=utf-8")
        .expect("static header");
    tiny_http::Response::from_string(body)
        .with_status_code(status)
        .with_header(header)
}

fn redirect(location: &str) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let escaped = location.replace('&', "&amp;").replace('"', "&quot;");
    let response = page(
        302,
        &format!("<!doctype html><meta charset=utf-8><title>smartnb</title><p><a href=\"{escaped}\">Continue to authorization</a></p>"),
    );
    match tiny_http::Header::from_bytes("Location", location) {
        Ok(header) => response.with_header(header),
        Err(()) => response,
    }
}

/// Whether smartnb can listen on a URL: http on a loopback host.
fn listenable(url: &Url) -> bool {
    url.scheme() == "http" && matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
}

fn listen_on(url: &Url) -> Result<(u16, tiny_http::Server), CommandError> {
    let port = url.port_or_known_default().unwrap_or(80);
    let host = if url.host_str() == Some("[::1]") {
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
    Ok((port, server))
}

/// Wait for the redirect; the code.
pub(super) fn catch(
    ctx: &mut Ctx,
    redirect_uri: &str,
    state: &str,
    timeout: u64,
    ehr: Option<&Ehr>,
) -> Result<String, CommandError> {
    let where_to = Url::parse(redirect_uri)
        .map_err(|_| CommandError::new("BadValue", format!("{redirect_uri:?} is not a URL")))?;
    if !listenable(&where_to) {
        return Err(CommandError::new("CannotListen", format!("--listen can only catch redirects to http://localhost…, not {redirect_uri}"))
            .hint("register a redirect URI such as http://localhost:9001/authorized (`register --redirect-uri …`), or paste the code into `exchange CODE`"));
    }
    let launch = match ehr {
        Some(ehr) => match Url::parse(&ehr.launch_uri) {
            Ok(url) if listenable(&url) => Some((url, ehr)),
            _ => {
                ctx.emit(Output::Note(format!(
                    "The launch URL {} is not http on this machine: only the redirect is caught.",
                    ehr.launch_uri
                )));
                None
            }
        },
        None => None,
    };
    // Watch for interrupts before the port opens: once it accepts connections, the
    // person (or a test) may interrupt, and a watch taken later would miss it.
    let interrupts = ctx.state.interrupter.watch();
    let mut servers = vec![listen_on(&where_to)?];
    if let Some((url, _)) = &launch {
        if url.port_or_known_default() != where_to.port_or_known_default() {
            servers.push(listen_on(url)?);
        }
    }
    let waits = Waits {
        redirect: where_to,
        state,
        ehr: launch,
    };
    let text = match &waits.ehr {
        Some((url, _)) => format!(
            "Open the link above in a browser, or launch the app from the EHR (it opens {url}). Waiting up to {timeout} s for the browser to come back to {redirect_uri} (interrupt to stop)…"
        ),
        None => format!(
            "Open the link above in a browser. Waiting up to {timeout} s for it to come back to {redirect_uri} (interrupt to stop)…"
        ),
    };
    ctx.emit(Output::Text(text));
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let slice = Duration::from_millis(100 / servers.len() as u64);
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
        for (port, server) in &servers {
            let Ok(Some(request)) = server.recv_timeout(slice) else {
                continue;
            };
            match waits.route(*port, request.url()) {
                Route::Elsewhere => {
                    let _ = request.respond(page(404, "<h1>Not here</h1><p>smartnb is waiting for the authorization redirect elsewhere on this port.</p>"));
                }
                Route::Launch {
                    launch,
                    iss,
                    authorize,
                } => {
                    let _ = request.respond(redirect(&authorize));
                    ctx.bind("launch", &launch);
                    ctx.bind("iss", &iss);
                    ctx.emit(Output::Text(format!(
                        "The EHR opened the launch URL: iss {iss} is the target's FHIR base; launch {launch}. Sent the browser on to authorize:"
                    )));
                    ctx.emit(Output::Link {
                        label: "Authorization for the EHR launch:".into(),
                        url: authorize,
                    });
                }
                Route::BadLaunch(refusal) => {
                    let (body, error) = refusal_of(&refusal, &waits);
                    let _ = request.respond(page(400, &body));
                    return Err(error);
                }
                Route::Redirect(answer) => {
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
        }
    }
}

/// The browser's page and the cell's error for a refused launch.
fn refusal_of(refusal: &LaunchRefusal, waits: &Waits) -> (String, CommandError) {
    let fhir = waits
        .ehr
        .as_ref()
        .map(|(_, e)| e.fhir.as_str())
        .unwrap_or_default();
    match refusal {
        LaunchRefusal::Missing(what) => (
            format!("<h1>Not a launch</h1><p>The request to the launch URL has no <code>{what}</code>.</p>"),
            CommandError::new("BadLaunch", format!("the EHR's request to the launch URL has no {what}"))
                .hint("an EHR opens the launch URL with ?iss=FHIR_BASE&launch=ID; `launch` shows such a URL as $launch_url"),
        ),
        LaunchRefusal::OtherIssuer(iss) => {
            let escaped = iss.replace('&', "&amp;").replace('<', "&lt;");
            (
                format!("<h1>Unknown EHR</h1><p>This launch comes from {escaped}, not from the server smartnb works with. It was not followed.</p>"),
                CommandError::new("WrongIssuer", format!("the launch names iss {iss:?}, not the target's FHIR base {fhir:?}; it was not followed"))
                    .hint("an app follows launches only from the FHIR server it trusts: `connect` to that server first, then `authorize --listen` again"),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    use super::*;

    fn ehr() -> Ehr {
        Ehr {
            launch_uri: "http://localhost:9001/launch".into(),
            fhir: "http://localhost:9000/api/fhir".into(),
            authorize: "http://localhost:9000/oauth/authorize".into(),
            params: vec![
                ("response_type".into(), "code".into()),
                ("scope".into(), "openid fhirUser user/*.rs".into()),
                ("state".into(), "s-1".into()),
            ],
        }
    }

    fn waits(ehr: &Ehr) -> Waits<'_> {
        Waits {
            redirect: Url::parse("http://localhost:9001/authorized").unwrap(),
            state: "s-1",
            ehr: Some((Url::parse(&ehr.launch_uri).unwrap(), ehr)),
        }
    }

    #[test]
    fn the_ehrs_request_goes_on_to_authorize_with_its_launch() {
        let ehr = ehr();
        let route = waits(&ehr).route(
            9001,
            "/launch?iss=http%3A%2F%2Flocalhost%3A9000%2Fapi%2Ffhir%2F&launch=ab12",
        );
        let Route::Launch {
            launch,
            iss,
            authorize,
        } = route
        else {
            panic!("not a launch: {route:?}");
        };
        assert_eq!(launch, "ab12");
        assert_eq!(iss, "http://localhost:9000/api/fhir/");
        let url = Url::parse(&authorize).unwrap();
        assert_eq!(url.path(), "/oauth/authorize");
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert!(pairs.contains(&("launch".into(), "ab12".into())));
        assert!(pairs.contains(&("scope".into(), "launch openid fhirUser user/*.rs".into())));
        assert!(pairs.contains(&("state".into(), "s-1".into())));
    }

    #[test]
    fn a_launch_from_another_server_or_without_its_values_is_refused() {
        let ehr = ehr();
        let w = waits(&ehr);
        assert_eq!(
            w.route(
                9001,
                "/launch?iss=https%3A%2F%2Fevil.example%2Ffhir&launch=x"
            ),
            Route::BadLaunch(LaunchRefusal::OtherIssuer(
                "https://evil.example/fhir".into()
            ))
        );
        assert_eq!(
            w.route(9001, "/launch?launch=x"),
            Route::BadLaunch(LaunchRefusal::Missing("iss"))
        );
        assert_eq!(
            w.route(9001, "/launch?iss=http://localhost:9000/api/fhir&launch="),
            Route::BadLaunch(LaunchRefusal::Missing("launch"))
        );
        let (page, error) = refusal_of(
            &LaunchRefusal::OtherIssuer("https://evil.example/<x>".into()),
            &w,
        );
        assert!(page.contains("&lt;x>") && !page.contains("<x>"), "{page}");
        assert_eq!(error.kind, "WrongIssuer");
        assert!(error.message.contains("http://localhost:9000/api/fhir"));
    }

    #[test]
    fn redirects_and_other_paths_are_told_apart() {
        let ehr = ehr();
        let w = waits(&ehr);
        assert_eq!(
            w.route(9001, "/authorized?code=c&state=s-1"),
            Route::Redirect(Answer::Code("c".into()))
        );
        assert_eq!(w.route(9001, "/favicon.ico"), Route::Elsewhere);
        // The launch URL's path on another port is not the launch URL.
        assert_eq!(
            w.route(9002, "/launch?iss=http://localhost:9000/api/fhir&launch=x"),
            Route::Elsewhere
        );
        let plain = Waits { ehr: None, ..w };
        assert_eq!(
            plain.route(9001, "/launch?iss=http://localhost:9000/api/fhir&launch=x"),
            Route::Elsewhere
        );
    }

    #[test]
    fn one_url_for_launch_and_redirect_is_told_apart_by_its_query() {
        let ehr = Ehr {
            launch_uri: "http://localhost:9001/app".into(),
            ..ehr()
        };
        let w = Waits {
            redirect: Url::parse("http://localhost:9001/app").unwrap(),
            ..waits(&ehr)
        };
        assert!(matches!(
            w.route(9001, "/app?iss=http://localhost:9000/api/fhir&launch=l"),
            Route::Launch { .. }
        ));
        assert_eq!(
            w.route(9001, "/app?code=c&state=s-1"),
            Route::Redirect(Answer::Code("c".into()))
        );
    }

    #[test]
    fn the_browser_gets_a_302_to_authorize_over_http() {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let port = server.server_addr().to_ip().unwrap().port();
        let ehr = Ehr {
            launch_uri: format!("http://localhost:{port}/launch"),
            ..ehr()
        };
        let w = Waits {
            redirect: Url::parse(&format!("http://localhost:{port}/authorized")).unwrap(),
            ..waits(&ehr)
        };
        let browser = std::thread::spawn(move || {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
            write!(stream, "GET /launch?iss=http%3A%2F%2Flocalhost%3A9000%2Fapi%2Ffhir&launch=ab12 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).unwrap();
            answer
        });
        let request = server.recv().unwrap();
        let Route::Launch { authorize, .. } = w.route(port, request.url()) else {
            panic!("not a launch");
        };
        request.respond(redirect(&authorize)).unwrap();
        let answer = browser.join().unwrap();
        assert!(answer.starts_with("HTTP/1.1 302"), "{answer}");
        let location = answer
            .lines()
            .find_map(|l| l.strip_prefix("Location: "))
            .unwrap_or_else(|| panic!("no Location: {answer}"));
        assert_eq!(location, authorize);
        assert!(location.contains("launch=ab12"));
    }
}
