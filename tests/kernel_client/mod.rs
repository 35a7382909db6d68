//! A Jupyter client for the kernel tests: starts the built binary on a connection file
//! and speaks to it with jupyter-zmq-client's client sockets, reading replies as raw JSON
//! after checking the kernel's signature.
#![allow(dead_code)] // each test file uses its own share of these

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use jupyter_protocol::{
    ConnectionInfo, ExecuteRequest, JupyterMessage, KernelInfoRequest, ShutdownRequest, Transport,
    UnknownMessage,
};
use jupyter_zmq_client::{
    create_client_control_connection, create_client_iopub_connection,
    create_client_shell_connection_with_identity, create_client_stdin_connection_with_identity,
    peer_identity_for_session, ClientControlConnection, ClientIoPubConnection,
    ClientShellConnection, ClientStdinConnection, Connection, RawMessage,
};
use ring::hmac;
use serde_json::{json, Value};
use zeromq::{SocketRecv, ZmqMessage};

/// Every receive of a message that must come gives up after this long: generous, because
/// a Rust cell compiles for seconds, many more on a loaded two-core CI machine.
pub const TIMEOUT: Duration = Duration::from_secs(180);
/// How long to listen for a message that must not come.
pub const QUIET: Duration = Duration::from_millis(500);

/// One received message, as JSON.
#[derive(Debug, Clone)]
pub struct Msg {
    pub header: Value,
    pub parent: Value,
    pub content: Value,
}

impl Msg {
    pub fn msg_type(&self) -> &str {
        self.header["msg_type"].as_str().unwrap_or_default()
    }
    pub fn parent_id(&self) -> &str {
        self.parent["msg_id"].as_str().unwrap_or_default()
    }
}

/// Read one message, checking the kernel's signature; `None` on timeout.
pub async fn recv<S: SocketRecv>(conn: &mut Connection<S>, wait: Duration) -> Option<Msg> {
    let multipart = tokio::time::timeout(wait, conn.socket.recv()).await.ok()?;
    let raw = RawMessage::from_multipart(multipart.expect("recv"), &conn.mac)
        .expect("a message signed by the kernel");
    let part = |i: usize| serde_json::from_slice::<Value>(&raw.jparts[i]).expect("JSON");
    Some(Msg {
        header: part(0),
        parent: part(1),
        content: part(3),
    })
}

/// A running kernel process and a client connected to it.
pub struct Kernel {
    pub child: Option<Child>,
    pub file: PathBuf,
    pub info: ConnectionInfo,
    pub shell: ClientShellConnection,
    pub iopub: ClientIoPubConnection,
    pub control: ClientControlConnection,
    pub stdin: ClientStdinConnection,
}

impl Kernel {
    /// Start the binary on free ports and wait until it answers kernel_info and its iopub
    /// messages reach us.
    pub async fn start() -> Kernel {
        Kernel::start_with_key(&uuid::Uuid::new_v4().to_string()).await
    }

    /// Start with this key (empty: messages are not signed, as Jupyter specifies).
    pub async fn start_with_key(key: &str) -> Kernel {
        Kernel::start_with(key, |file| {
            Command::new(env!("CARGO_BIN_EXE_smartnb"))
                .args(["kernel", "--connection-file"])
                .arg(file)
                // As Jupyter starts it: without the library path `cargo test` sets.
                .env_remove("LD_LIBRARY_PATH")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .spawn()
                .expect("the smartnb binary starts")
        })
        .await
    }

    /// Start with this key, `launch` running the binary on the connection file.
    pub async fn start_with(key: &str, launch: impl FnOnce(&Path) -> Child) -> Kernel {
        let listeners: Vec<TcpListener> = (0..5)
            .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let port = |i: usize| listeners[i].local_addr().unwrap().port();
        let info = ConnectionInfo {
            ip: "127.0.0.1".into(),
            transport: Transport::TCP,
            shell_port: port(0),
            iopub_port: port(1),
            stdin_port: port(2),
            control_port: port(3),
            hb_port: port(4),
            key: key.to_string(),
            signature_scheme: "hmac-sha256".into(),
            kernel_name: Some("smartnb".into()),
        };
        let file =
            std::env::temp_dir().join(format!("smartnb-kernel-{}.json", uuid::Uuid::new_v4()));
        std::fs::write(&file, serde_json::to_string(&info).unwrap()).unwrap();
        drop(listeners);
        let child = launch(&file);

        let session = uuid::Uuid::new_v4().to_string();
        let identity = peer_identity_for_session(&session).unwrap();
        let connect = async {
            let shell =
                create_client_shell_connection_with_identity(&info, &session, identity.clone())
                    .await
                    .unwrap();
            let stdin = create_client_stdin_connection_with_identity(&info, &session, identity)
                .await
                .unwrap();
            let iopub = create_client_iopub_connection(&info, "", &session)
                .await
                .unwrap();
            let control = create_client_control_connection(&info, &session)
                .await
                .unwrap();
            (shell, stdin, iopub, control)
        };
        let (shell, stdin, iopub, control) = tokio::time::timeout(TIMEOUT, connect)
            .await
            .expect("the kernel binds its ports");
        let mut kernel = Kernel {
            child: Some(child),
            file,
            info,
            shell,
            iopub,
            control,
            stdin,
        };
        // As jupyter_client's wait_for_ready: kernel_info until the reply and an iopub
        // message for it arrive (a subscription takes a moment to reach the publisher).
        for _ in 0..20 {
            let id = kernel.send_shell(KernelInfoRequest {}.into()).await;
            let reply = kernel.reply(&id).await;
            assert_eq!(reply.msg_type(), "kernel_info_reply");
            if let Some(status) = recv(&mut kernel.iopub, QUIET).await {
                assert_eq!(status.msg_type(), "status");
                kernel.until_idle(&id).await;
                return kernel;
            }
        }
        panic!("no iopub message after 20 kernel_info requests");
    }

    pub async fn send_shell(&mut self, message: JupyterMessage) -> String {
        let id = message.header.msg_id.clone();
        self.shell.send(message).await.unwrap();
        id
    }

    /// The shell reply to `id`, skipping replies to other requests.
    pub async fn reply(&mut self, id: &str) -> Msg {
        loop {
            let msg = recv(&mut self.shell, TIMEOUT).await.expect("a shell reply");
            if msg.parent_id() == id {
                return msg;
            }
        }
    }

    /// iopub messages for `id` from busy to idle (both included).
    pub async fn until_idle(&mut self, id: &str) -> Vec<Msg> {
        let mut seen = Vec::new();
        loop {
            let msg = recv(&mut self.iopub, TIMEOUT)
                .await
                .expect("iopub messages");
            if msg.parent_id() != id {
                continue;
            }
            let idle = msg.msg_type() == "status" && msg.content["execution_state"] == "idle";
            seen.push(msg);
            if idle {
                return seen;
            }
        }
    }

    /// Run a cell as a notebook does: its reply and the outputs between busy and idle.
    pub async fn execute(&mut self, code: &str) -> (Msg, Vec<Msg>) {
        self.execute_with(request(code)).await
    }

    pub async fn execute_with(&mut self, execute: ExecuteRequest) -> (Msg, Vec<Msg>) {
        let id = self.send_shell(execute.into()).await;
        let reply = self.reply(&id).await;
        let iopub = self.until_idle(&id).await;
        assert_eq!(iopub[0].content["execution_state"], "busy");
        let outputs = iopub
            .into_iter()
            .filter(|m| !matches!(m.msg_type(), "status" | "execute_input"))
            .collect();
        (reply, outputs)
    }

    /// A request on shell answered on shell (complete, inspect, history, ...).
    pub async fn ask(&mut self, message: JupyterMessage) -> Value {
        let id = self.send_shell(message).await;
        let reply = self.reply(&id).await;
        self.until_idle(&id).await;
        reply.content
    }

    /// `vars` as JSON (empty when there are none): the display_data that follows the table.
    pub async fn vars(&mut self) -> Value {
        let (_, outputs) = self.execute("vars").await;
        outputs
            .iter()
            .find(|m| {
                m.msg_type() == "display_data" && m.content["data"]["application/json"].is_object()
            })
            .map_or(json!({}), |m| m.content["data"]["application/json"].clone())
    }

    /// shutdown_request on control: the reply, then the process exits 0 having printed
    /// nothing on stdout.
    pub async fn shutdown(mut self) {
        let message: JupyterMessage = ShutdownRequest { restart: false }.into();
        let id = message.header.msg_id.clone();
        self.control.send(message).await.unwrap();
        let reply = loop {
            let reply = recv(&mut self.control, TIMEOUT)
                .await
                .expect("shutdown_reply");
            if reply.parent_id() == id {
                break reply;
            }
        };
        assert_eq!(reply.content["status"], "ok");
        let mut child = self.child.take().expect("a running kernel");
        let (status, stdout) = off_thread(move || {
            let status = child.wait().unwrap();
            let mut out = String::new();
            std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
            (status, out)
        })
        .expect("the kernel exits after shutdown");
        assert!(status.success(), "{status}");
        assert_eq!(stdout, "", "nothing but the protocol on stdout");
    }
}

impl Drop for Kernel {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.file);
    }
}

/// A signed message as a client would frame it, with `content` as given.
pub fn signed(key: &str, msg_type: &str, content: Value) -> (String, ZmqMessage) {
    let id = uuid::Uuid::new_v4().to_string();
    let header = json!({"msg_id": id, "username": "t", "session": "s", "msg_type": msg_type,
        "version": "5.3", "date": "2024-01-01T00:00:00Z"});
    let parts = [header, json!({}), json!({}), content]
        .iter()
        .map(|v| Bytes::from(serde_json::to_vec(v).unwrap()))
        .collect();
    (id, sign(key, parts))
}

/// Frames `parts` (header, parent, metadata, content) with their HMAC-SHA256 signature.
pub fn sign(key: &str, parts: Vec<Bytes>) -> ZmqMessage {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key.as_bytes());
    let mut ctx = hmac::Context::with_key(&key);
    parts.iter().for_each(|p| ctx.update(p));
    let signature: String = ctx
        .sign()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut frames = vec![Bytes::from_static(b"<IDS|MSG>"), Bytes::from(signature)];
    frames.extend(parts);
    ZmqMessage::try_from(frames).unwrap()
}

/// Run a blocking wait on a thread of its own; `None` after TIMEOUT. A detached thread,
/// unlike spawn_blocking, cannot keep a failed test from ending.
pub fn off_thread<T: Send + 'static>(wait: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(wait()));
    result.recv_timeout(TIMEOUT).ok()
}

pub fn request(code: &str) -> ExecuteRequest {
    ExecuteRequest {
        code: code.into(),
        silent: false,
        store_history: true,
        user_expressions: None,
        allow_stdin: false,
        stop_on_error: true,
    }
}

pub fn history(content: Value) -> JupyterMessage {
    UnknownMessage {
        msg_type: "history_request".into(),
        content,
    }
    .into()
}
