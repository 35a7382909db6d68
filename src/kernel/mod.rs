//! The Jupyter front end: the protocol layer only (as xeus's xkernel_core), with the
//! session as the interpreter.
//!
//! Threads: the socket side (one tokio current-thread runtime: heartbeat, readers, the
//! writer, the control channel) and the session thread (shell requests, one at a time).
//! A running cell therefore never blocks interrupt_request or shutdown_request.

pub mod connection;
mod control;
mod execute;
pub mod handlers;
pub mod history;
pub mod install;
pub mod installed;
mod orphan;
mod shell;
mod sockets;
mod stdin;
mod stop_on_error;
pub mod wire;

use std::path::Path;

use crate::session::{RustStart, Session, SessionError, SessionOptions};

/// Why the kernel could not run.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// The connection file is missing or wrong.
    #[error(transparent)]
    Connection(#[from] connection::ConnectionError),
    /// The session could not start.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// A port in the connection file could not be bound.
    #[error(transparent)]
    Bind(#[from] sockets::BindError),
    /// A thread or the async runtime could not start.
    #[error("the kernel could not start: {0}")]
    Start(std::io::Error),
}

/// Serve the kernel described by `connection_file` until a shutdown_request; the
/// embedded server starts with `server` (its `--state`, for one).
pub fn run(connection_file: &Path, server: crate::server::Config) -> Result<(), KernelError> {
    let info = connection::read(connection_file)?;
    // The Rust evaluator starts only when Rust is needed, or a queued cell is Rust (the
    // shell loop looks ahead): a kernel that runs helper cells only never pays for it.
    let session = Session::new(SessionOptions {
        server,
        rust: RustStart::OnFirstUse,
        ..SessionOptions::default()
    })?;
    let interrupter = session.interrupter();

    let (outgoing, outgoing_rx) = tokio::sync::mpsc::unbounded_channel();
    let outbox = wire::Outbox::new(outgoing);
    let (shell, shell_rx) = std::sync::mpsc::channel();
    let (stdin_events, stdin_rx) = std::sync::mpsc::channel();

    let stdin = stdin::Stdin::new(outbox.clone(), stdin_rx);
    let stop = stop_on_error::StopOnError::new(stop_on_error::window_from_env());
    let shell_loop = shell::ShellLoop::new(session, outbox.clone(), stdin, shell_rx, stop);
    std::thread::Builder::new()
        .name("smartnb-session".into())
        .spawn(move || shell_loop.run())
        .map_err(KernelError::Start)?;

    let handoff = sockets::Handoff {
        shell,
        control: control::Control::new(outbox, interrupter, stdin_events.clone()),
        stdin: stdin_events,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(KernelError::Start)?;
    runtime.block_on(sockets::serve(&info, handoff, outgoing_rx))?;
    Ok(())
}
