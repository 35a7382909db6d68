//! The five ZeroMQ sockets and the tasks around them: heartbeat echo, one reader per
//! ROUTER socket (shell, control, stdin), and one writer that sends every outgoing
//! message in order. A read error is logged and the loop goes on; only shutdown ends it.

use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jupyter_protocol::ConnectionInfo;
use jupyter_zmq_client::{
    create_kernel_control_connection, create_kernel_heartbeat_connection,
    create_kernel_iopub_connection, create_kernel_shell_connection, create_kernel_stdin_connection,
    Connection, KernelHeartbeatConnection, RouterRecvConnection,
};
use tokio::sync::mpsc::UnboundedReceiver;
use zeromq::{SocketRecv, SocketSend};

use super::control::Control;
use super::orphan;
use super::shell::Flow;
use super::stdin::{self, StdinEvents};
use super::wire::{decode, Outgoing, Request, Signatures};

/// Time for queued messages (the shutdown_reply above all) to leave before the process
/// exits: what libzmq's LINGER option does.
const LINGER: Duration = Duration::from_millis(100);

/// Pause after a failed read, so a socket that keeps failing cannot spin a core.
const BACKOFF: Duration = Duration::from_millis(10);

/// A socket that could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot bind the {channel} socket: {cause}")]
pub struct BindError {
    /// Which channel.
    pub channel: &'static str,
    /// Why.
    pub cause: jupyter_zmq_client::RuntimeError,
}

/// Where the socket side hands what it reads.
pub struct Handoff {
    /// Shell requests, to the session thread.
    pub shell: Sender<Request>,
    /// Control requests are served right here.
    pub control: Control,
    /// input_reply messages, to a waiting question.
    pub stdin: StdinEvents,
}

/// Bind the sockets and serve until shutdown.
pub async fn serve(
    info: &ConnectionInfo,
    handoff: Handoff,
    mut outgoing: UnboundedReceiver<Outgoing>,
) -> Result<(), BindError> {
    let session_id = uuid::Uuid::new_v4().to_string();
    let bind = |channel| move |cause| BindError { channel, cause };
    let heartbeat = create_kernel_heartbeat_connection(info)
        .await
        .map_err(bind("heartbeat"))?;
    let (mut shell_out, shell_in) = create_kernel_shell_connection(info, &session_id)
        .await
        .map_err(bind("shell"))?
        .split();
    let (mut control_out, control_in) = create_kernel_control_connection(info, &session_id)
        .await
        .map_err(bind("control"))?
        .split();
    let (mut stdin_out, stdin_in) = create_kernel_stdin_connection(info, &session_id)
        .await
        .map_err(bind("stdin"))?
        .split();
    let mut iopub = create_kernel_iopub_connection(info, &session_id)
        .await
        .map_err(bind("iopub"))?;
    tracing::info!(
        "listening on {}:{} (shell), control {}, stdin {}, iopub {}, heartbeat {}",
        info.ip,
        info.shell_port,
        info.control_port,
        info.stdin_port,
        info.iopub_port,
        info.hb_port
    );

    let seen = Arc::new(Mutex::new(Signatures::default()));
    tokio::spawn(echo(heartbeat));
    let Handoff {
        shell,
        control,
        stdin: stdin_events,
    } = handoff;
    {
        let control = control.clone();
        tokio::spawn(read("shell", shell_in, seen.clone(), move |request| {
            if shell.send(request).is_err() {
                tracing::error!("the session thread is gone; exiting");
                control.outbox().send(Outgoing::Exit);
            }
        }));
    }
    {
        let control = control.clone();
        tokio::spawn(read("control", control_in, seen.clone(), move |request| {
            let _: Flow = control.handle(&request);
        }));
    }
    tokio::spawn(read("stdin", stdin_in, seen, move |request| {
        if let Some(event) = stdin::event(&request) {
            let _ = stdin_events.send(event);
        }
    }));
    tokio::spawn(orphan::watch(control.outbox().clone()));
    tokio::spawn(async move {
        loop {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            // Jupyter interrupts kernels with interrupt_mode "signal" this way.
            tracing::info!("SIGINT: interrupting");
            control.interrupt();
        }
    });

    while let Some(message) = outgoing.recv().await {
        let (channel, sent) = match message {
            Outgoing::Shell(m) => ("shell", shell_out.send(m).await),
            Outgoing::Control(m) => ("control", control_out.send(m).await),
            Outgoing::Stdin(m) => ("stdin", stdin_out.send(m).await),
            Outgoing::Iopub(m) => ("iopub", iopub.send(m).await),
            Outgoing::Exit => break,
        };
        if let Err(e) = sent {
            tracing::warn!("{channel}: a message could not be sent: {e}");
        }
    }
    tokio::time::sleep(LINGER).await;
    Ok(())
}

/// Answer every heartbeat ping with the same bytes, whatever happens to one peer.
async fn echo(mut heartbeat: KernelHeartbeatConnection) {
    loop {
        match heartbeat.socket.recv().await {
            Ok(ping) => {
                if let Err(e) = heartbeat.socket.send(ping).await {
                    tracing::debug!("heartbeat: {e}");
                }
            }
            Err(e) => {
                tracing::debug!("heartbeat: {e}");
                tokio::time::sleep(BACKOFF).await;
            }
        }
    }
}

/// Read, verify and parse messages from one ROUTER socket forever, handing each on.
async fn read(
    channel: &'static str,
    mut connection: RouterRecvConnection,
    seen: Arc<Mutex<Signatures>>,
    mut hand_on: impl FnMut(Request),
) {
    let Connection { socket, mac, .. } = &mut connection;
    loop {
        let multipart = match socket.recv().await {
            Ok(multipart) => multipart,
            Err(e) => {
                tracing::warn!("{channel}: read failed: {e}");
                tokio::time::sleep(BACKOFF).await;
                continue;
            }
        };
        let decoded = match seen.lock() {
            Ok(mut seen) => decode(multipart, mac, &mut seen),
            Err(poisoned) => decode(multipart, mac, &mut poisoned.into_inner()),
        };
        match decoded {
            Ok(request) => {
                tracing::debug!("{channel}: {}", request.msg_type());
                hand_on(request);
            }
            Err(e) => tracing::warn!("{channel}: dropped a message: {e}"),
        }
    }
}
