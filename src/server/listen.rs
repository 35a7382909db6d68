//! The accept loop: HTTP/1.1 connections with a header-read timeout, a cap on the request
//! head's size and a cap on how many connections are open at once, so nothing a client
//! sends before it is authenticated can hold memory without bound.
//!
//! Stopping comes in two kinds. `Stop::Now` stops accepting and closes every connection
//! once its in-flight request is answered. `Stop::Drain` is for a replica behind a proxy
//! that keeps connections to it alive: closing an idle kept-alive connection races with the
//! proxy sending its next request on it, and a POST lost that way comes back as the proxy's
//! 502 (a proxy does not resend a request it may have delivered). So a drain closes the
//! listening socket (new connections are refused, which a proxy retries elsewhere), leaves
//! open connections open, answers every request on them with `Connection: close`, and stops
//! once the proxy has closed or used up every one of them, or when the drain's time is up.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION};
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

/// How often a drain looks whether every connection has closed.
const DRAIN_POLL: Duration = Duration::from_millis(20);

/// How to stop serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Stop accepting and close every connection once its in-flight request is answered.
    Now,
    /// Stop accepting, keep open connections answering (each answer closing its
    /// connection) until none is left or this long has passed, then stop as `Now` does.
    Drain(Duration),
}

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

/// Serve `app` on `listener` until `shutdown` resolves, then stop as it says.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = Stop>,
) {
    let connections = Connections::new(app, limits);
    tokio::pin!(shutdown);
    let stop = loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            stop = &mut shutdown => break stop,
        };
        connections.open(stream, peer);
    };
    if let Stop::Drain(limit) = stop {
        connections.draining.store(true, Ordering::SeqCst);
        // Connections the kernel already completed are served, not reset by the close.
        while let Ok(Ok((stream, peer))) =
            tokio::time::timeout(Duration::ZERO, listener.accept()).await
        {
            connections.open(stream, peer);
        }
        drop(listener);
        let deadline = Instant::now() + limit;
        while connections.open_count() > 0 && Instant::now() < deadline {
            tokio::time::sleep(DRAIN_POLL).await;
        }
    } else {
        drop(listener);
    }
    connections.graceful.shutdown().await;
}

/// The open connections: how they are served, counted and told to stop.
struct Connections {
    app: Router,
    limits: ConnLimits,
    builder: http1::Builder,
    permits: Arc<Semaphore>,
    graceful: GracefulShutdown,
    /// Set once a drain began: every answer from then on closes its connection.
    draining: Arc<AtomicBool>,
}

impl Connections {
    fn new(app: Router, limits: ConnLimits) -> Self {
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_header_size(limits.max_head_bytes)
            .max_buf_size(limits.buffer_bytes())
            .keep_alive(true);
        Connections {
            app,
            limits,
            builder,
            permits: Arc::new(Semaphore::new(limits.max_connections)),
            graceful: GracefulShutdown::new(),
            draining: Arc::new(AtomicBool::new(false)),
        }
    }

    /// How many connections are open now.
    fn open_count(&self) -> usize {
        self.limits.max_connections - self.permits.available_permits()
    }

    /// Serve one accepted connection in a task of its own, or refuse it over the cap.
    fn open(&self, stream: TcpStream, peer: SocketAddr) {
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            refuse(&stream, self.limits.max_connections);
            return;
        };
        let _ = stream.set_nodelay(true);
        let router = TowerToHyperService::new(self.app.clone());
        let draining = self.draining.clone();
        // Handlers see the peer as axum's `ConnectInfo<SocketAddr>`.
        let service = service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let answer = hyper::service::Service::call(&router, request);
            let draining = draining.clone();
            async move {
                answer.await.map(|mut response| {
                    if draining.load(Ordering::SeqCst) {
                        response
                            .headers_mut()
                            .insert(CONNECTION, HeaderValue::from_static("close"));
                    }
                    response
                })
            }
        });
        let connection = self
            .graceful
            .watch(self.builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("connection from {peer} ended: {e}");
            }
            drop(permit);
        });
    }
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
