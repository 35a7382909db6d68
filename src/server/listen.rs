//! The accept loop: HTTP/1.1 connections with a header-read timeout, a cap on the request
//! head's size and a cap on how many connections are open at once, so nothing a client
//! sends before it is authenticated can hold memory without bound.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// hyper refuses a read buffer smaller than this.
const MIN_BUF: usize = 8 * 1024;

/// How long to wait before accepting again after `accept` failed (e.g. out of file handles).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What each connection may hold and how many may be open.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Time for a request head to arrive whole, counted from when the server starts waiting
    /// for it (on a kept-alive connection: from the end of the previous response).
    pub header_read_timeout: Duration,
    /// Largest request head (request line and headers) in bytes; a longer one gets 431.
    pub max_head_bytes: usize,
    /// Connections open at once; one more is answered 503 and closed.
    pub max_connections: usize,
}

impl ConnLimits {
    /// The size hyper's read (and write) buffer may grow to: the head cap, at least 8 KiB.
    pub fn buffer_bytes(&self) -> usize {
        self.max_head_bytes.max(MIN_BUF)
    }
}

/// Serve `app` on `listener` until `shutdown` resolves, then stop accepting and wait for the
/// open connections to finish their in-flight requests.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.max_head_bytes)
        .max_buf_size(limits.buffer_bytes())
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            refuse(&stream, limits.max_connections);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = TowerToHyperService::new(app.clone());
        // Handlers see the peer as axum's `ConnectInfo<SocketAddr>`.
        let service = service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            hyper::service::Service::call(&router, request)
        });
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("connection from {peer} ended: {e}");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Answer a connection over the cap with 503 if its send buffer takes it at once, and close.
fn refuse(stream: &TcpStream, max: usize) {
    let body = format!(
        "the server already has its limit of {max} connections open (max_connections); \
         try again when one closes\n"
    );
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain; \
         charset=utf-8\r\nRetry-After: 1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.try_write(response.as_bytes());
}
