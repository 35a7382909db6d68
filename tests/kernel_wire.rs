//! The kernel over ZeroMQ, as a Jupyter client sees it: the built binary is started with a
//! connection file and driven with jupyter-zmq-client's client sockets. Replies are read
//! as raw JSON (after checking the kernel's signature) so the tests see the wire format.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use jupyter_protocol::{
    CompleteRequest, ConnectionInfo, ExecuteRequest, InputReply, InspectRequest, InterruptRequest,
    IsCompleteRequest, JupyterMessage, KernelInfoRequest, ReplyStatus, ShutdownRequest, Transport,
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
use zeromq::{SocketRecv, SocketSend, ZmqMessage};

/// Every receive gives up after this long.
const TIMEOUT: Duration = Duration::from_secs(10);
/// How long to listen for a message that must not come.
const QUIET: Duration = Duration::from_millis(500);

/// One received message, as JSON.
#[derive(Debug, Clone)]
struct Msg {
    header: Value,
    parent: Value,
    content: Value,
}

impl Msg {
    fn msg_type(&self) -> &str {
        self.header["msg_type"].as_str().unwrap_or_default()
    }
    fn parent_id(&self) -> &str {
        self.parent["msg_id"].as_str().unwrap_or_default()
    }
}

/// Read one message, checking the kernel's signature; `None` on timeout.
async fn recv<S: SocketRecv>(conn: &mut Connection<S>, wait: Duration) -> Option<Msg> {
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
struct Kernel {
    child: Option<Child>,
    file: PathBuf,
    key: String,
    shell: ClientShellConnection,
    iopub: ClientIoPubConnection,
    control: ClientControlConnection,
    stdin: ClientStdinConnection,
}

impl Kernel {
    /// Start the binary on free ports and wait until it answers kernel_info and its iopub
    /// messages reach us.
    async fn start() -> Kernel {
        Kernel::start_with_key(&uuid::Uuid::new_v4().to_string()).await
    }

    /// Start with this key (empty: messages are not signed, as Jupyter specifies).
    async fn start_with_key(key: &str) -> Kernel {
        Kernel::start_with(key, |file| {
            Command::new(env!("CARGO_BIN_EXE_smartnb"))
                .args(["kernel", "--connection-file"])
                .arg(file)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .spawn()
                .expect("the smartnb binary starts")
        })
        .await
    }

    /// Start with this key, `launch` running the binary on the connection file.
    async fn start_with(key: &str, launch: impl FnOnce(&Path) -> Child) -> Kernel {
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
            key: info.key,
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

    async fn send_shell(&mut self, message: JupyterMessage) -> String {
        let id = message.header.msg_id.clone();
        self.shell.send(message).await.unwrap();
        id
    }

    /// The shell reply to `id`, skipping replies to other requests.
    async fn reply(&mut self, id: &str) -> Msg {
        loop {
            let msg = recv(&mut self.shell, TIMEOUT).await.expect("a shell reply");
            if msg.parent_id() == id {
                return msg;
            }
        }
    }

    /// iopub messages for `id` from busy to idle (both included).
    async fn until_idle(&mut self, id: &str) -> Vec<Msg> {
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
    async fn execute(&mut self, code: &str) -> (Msg, Vec<Msg>) {
        self.execute_with(request(code)).await
    }

    async fn execute_with(&mut self, execute: ExecuteRequest) -> (Msg, Vec<Msg>) {
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
    async fn ask(&mut self, message: JupyterMessage) -> Value {
        let id = self.send_shell(message).await;
        let reply = self.reply(&id).await;
        self.until_idle(&id).await;
        reply.content
    }

    /// `vars` as JSON (empty when there are none).
    async fn vars(&mut self) -> Value {
        let (_, outputs) = self.execute("vars").await;
        outputs
            .iter()
            .find(|m| m.msg_type() == "display_data")
            .map_or(json!({}), |m| m.content["data"]["application/json"].clone())
    }

    /// shutdown_request on control: the reply, then the process exits 0 having printed
    /// nothing on stdout.
    async fn shutdown(mut self) {
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
fn signed(key: &str, msg_type: &str, content: Value) -> (String, ZmqMessage) {
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
fn sign(key: &str, parts: Vec<Bytes>) -> ZmqMessage {
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
fn off_thread<T: Send + 'static>(wait: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(wait()));
    result.recv_timeout(TIMEOUT).ok()
}

fn request(code: &str) -> ExecuteRequest {
    ExecuteRequest {
        code: code.into(),
        silent: false,
        store_history: true,
        user_expressions: None,
        allow_stdin: false,
        stop_on_error: true,
    }
}

fn history(content: Value) -> JupyterMessage {
    UnknownMessage {
        msg_type: "history_request".into(),
        content,
    }
    .into()
}

#[tokio::test]
async fn kernel_info_is_answered_between_busy_and_idle() {
    let mut kernel = Kernel::start().await;
    let id = kernel.send_shell(KernelInfoRequest {}.into()).await;
    let reply = kernel.reply(&id).await;
    let info = &reply.content;
    assert_eq!(info["status"], "ok");
    assert_eq!(info["implementation"], "smartnb");
    assert_eq!(info["protocol_version"], "5.3");
    let language = &info["language_info"];
    assert_eq!(language["name"], "rust");
    assert_eq!(language["mimetype"], "text/rust");
    assert_eq!(language["file_extension"], ".rs");
    assert_eq!(language["pygments_lexer"], "rust");
    assert_eq!(language["codemirror_mode"], "rust");
    assert_eq!(language["nbconvert_exporter"], "script");
    assert!(info["banner"].as_str().unwrap().contains("smartnb"));
    let states: Vec<Value> = kernel
        .until_idle(&id)
        .await
        .iter()
        .map(|m| m.content["execution_state"].clone())
        .collect();
    assert_eq!(states, vec![json!("busy"), json!("idle")]);
    let comms = kernel
        .ask(jupyter_protocol::CommInfoRequest { target_name: None }.into())
        .await;
    assert_eq!(
        (comms["status"].clone(), comms["comms"].clone()),
        (json!("ok"), json!({}))
    );
    kernel.shutdown().await;
}

#[tokio::test]
async fn an_empty_key_means_unsigned_messages() {
    let mut kernel = Kernel::start_with_key("").await;
    let (reply, _) = kernel.execute("set a 1").await;
    assert_eq!(reply.content["status"], "ok");
    assert_eq!(kernel.vars().await["a"], "1");
    kernel.shutdown().await;
}

#[tokio::test]
async fn helper_cells_publish_outputs_errors_and_counts() {
    let mut kernel = Kernel::start().await;

    let (reply, outputs) = kernel.execute("help").await;
    assert_eq!(reply.content["execution_count"], 1);
    assert_eq!(reply.content["user_expressions"], json!({}));
    assert_eq!(outputs[0].msg_type(), "stream");
    assert!(outputs[0].content["text"]
        .as_str()
        .unwrap()
        .contains("register"));

    let (reply, outputs) = kernel.execute("register").await;
    assert_eq!(reply.content["status"], "ok", "{:?}", reply.content);
    assert_eq!(reply.content["execution_count"], 2);
    let json_output = outputs
        .iter()
        .find(|m| {
            m.msg_type() == "display_data" && m.content["data"]["application/json"].is_object()
        })
        .expect("the registration as display_data");
    assert!(json_output.content["data"]["text/plain"].is_string());
    assert!(json_output.content["data"]["application/json"]["client_id"].is_string());
    assert_eq!(json_output.content["transient"], json!({}));

    let (reply, outputs) = kernel.execute("%regster").await;
    assert_eq!(outputs.len(), 1, "{outputs:?}");
    assert_eq!(outputs[0].msg_type(), "error");
    assert_eq!(outputs[0].content["ename"], "UnknownCommand");
    let error = &reply.content;
    assert_eq!(error["status"], "error");
    assert_eq!(error["execution_count"], 3);
    assert_eq!(error["ename"], "UnknownCommand");
    assert!(error["evalue"].as_str().unwrap().contains("regster"));
    assert!(!error["traceback"].as_array().unwrap().is_empty());

    // Neither a silent cell nor one without history takes a number; silent ones show nothing.
    let silent = ExecuteRequest {
        silent: true,
        ..request("set quiet 1\nvars")
    };
    let (reply, outputs) = kernel.execute_with(silent).await;
    assert_eq!(reply.content["status"], "ok");
    assert_eq!(reply.content["execution_count"], 3);
    assert!(outputs.is_empty(), "{outputs:?}");
    let unstored = ExecuteRequest {
        store_history: false,
        ..request("vars")
    };
    let (reply, outputs) = kernel.execute_with(unstored).await;
    assert_eq!(reply.content["execution_count"], 3);
    assert_eq!(outputs[0].content["data"]["application/json"]["quiet"], "1");
    let (reply, _) = kernel.execute("unset quiet").await;
    assert_eq!(reply.content["execution_count"], 4);
    kernel.shutdown().await;
}

#[tokio::test]
async fn completion_inspect_and_is_complete() {
    let mut kernel = Kernel::start().await;
    // "ü" is one code point and two bytes: positions on the wire are code points.
    let code = "set ü 1\nreg";
    let reply = kernel
        .ask(
            CompleteRequest {
                code: code.into(),
                cursor_pos: code.chars().count(),
            }
            .into(),
        )
        .await;
    assert_eq!(reply["status"], "ok");
    assert_eq!(reply["matches"], json!(["register"]));
    assert_eq!(reply["cursor_start"], 8);
    assert_eq!(reply["cursor_end"], 11);

    let mid = kernel
        .ask(
            CompleteRequest {
                code: "ü fetch Obs".into(),
                cursor_pos: 1,
            }
            .into(),
        )
        .await;
    assert_eq!(
        (mid["cursor_start"].clone(), mid["cursor_end"].clone()),
        (json!(0), json!(1))
    );

    let inspect = kernel
        .ask(
            InspectRequest {
                code: "fetch Patient".into(),
                cursor_pos: 2,
                detail_level: Some(0),
            }
            .into(),
        )
        .await;
    assert_eq!(inspect["found"], true);
    assert!(inspect["data"]["text/plain"]
        .as_str()
        .unwrap()
        .starts_with("fetch PATH"));
    let nothing = kernel
        .ask(
            InspectRequest {
                code: "let x = 1;".into(),
                cursor_pos: 1,
                detail_level: Some(0),
            }
            .into(),
        )
        .await;
    assert_eq!(nothing["found"], false);

    for (code, status) in [("set a 'open", "incomplete"), ("vars", "complete")] {
        let reply = kernel
            .ask(IsCompleteRequest { code: code.into() }.into())
            .await;
        assert_eq!(reply["status"], status, "{code}");
        if status == "incomplete" {
            assert_eq!(reply["indent"], "");
        }
    }
    kernel.shutdown().await;
}

#[tokio::test]
async fn history_tail_range_and_search() {
    let mut kernel = Kernel::start().await;
    for cell in ["set a 1", "vars", "set b 2"] {
        kernel.execute(cell).await;
    }
    let reply = kernel
        .ask(history(
            json!({"hist_access_type": "tail", "n": 2, "output": false, "raw": true}),
        ))
        .await;
    assert_eq!(reply["history"], json!([[1, 2, "vars"], [1, 3, "set b 2"]]));

    let reply = kernel
        .ask(history(
            json!({"hist_access_type": "range", "session": 1, "start": 1, "stop": 2,
            "output": true, "raw": true}),
        ))
        .await;
    assert_eq!(reply["history"], json!([[1, 1, ["set a 1", ""]]]));

    // jupyter_client's search: no `unique`, no `n`.
    let reply = kernel
        .ask(history(
            json!({"hist_access_type": "search", "pattern": "set *",
            "output": false, "raw": true}),
        ))
        .await;
    assert_eq!(reply["status"], "ok");
    assert_eq!(
        reply["history"],
        json!([[1, 1, "set a 1"], [1, 3, "set b 2"]])
    );
    let reply = kernel
        .ask(history(
            json!({"hist_access_type": "search", "pattern": "*", "n": 1,
            "unique": true, "output": false, "raw": true}),
        ))
        .await;
    assert_eq!(reply["history"], json!([[1, 3, "set b 2"]]));
    kernel.shutdown().await;
}

#[tokio::test]
async fn interrupt_ends_a_stuck_request_and_keeps_variables() {
    let mut kernel = Kernel::start().await;
    kernel.execute("set x kept").await;
    // A server that accepts connections and never answers.
    let stuck = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", stuck.local_addr().unwrap());
    let first = kernel
        .send_shell(request(&format!("http GET {url}")).into())
        .await;
    // Queued behind the stuck cell: aborted when it fails (stop_on_error).
    let second = kernel.send_shell(request("set y lost").into()).await;
    loop {
        let msg = recv(&mut kernel.iopub, TIMEOUT)
            .await
            .expect("execute_input");
        if msg.parent_id() == first && msg.msg_type() == "execute_input" {
            break;
        }
    }
    let interrupt: JupyterMessage = InterruptRequest {}.into();
    kernel.control.send(interrupt).await.unwrap();
    let reply = recv(&mut kernel.control, TIMEOUT)
        .await
        .expect("interrupt_reply");
    assert_eq!(reply.msg_type(), "interrupt_reply");
    assert_eq!(reply.content["status"], "ok");

    let reply = kernel.reply(&first).await;
    assert_eq!(reply.content["status"], "error");
    assert_eq!(reply.content["ename"], "Interrupted");
    let reply = kernel.reply(&second).await;
    assert_eq!(reply.content["status"], "aborted");

    let vars = kernel.vars().await;
    assert_eq!(vars["x"], "kept");
    assert!(vars.get("y").is_none(), "{vars}");
    kernel.shutdown().await;
}

#[tokio::test]
async fn forged_replayed_and_garbled_messages_are_ignored() {
    let mut kernel = Kernel::start().await;
    let code = |c: &str| {
        json!({"code": c, "silent": false, "store_history": true,
        "user_expressions": {}, "allow_stdin": false, "stop_on_error": true})
    };

    let (_, forged) = signed("not-the-key", "execute_request", code("set x 1"));
    kernel.shell.socket.send(forged).await.unwrap();
    let mut unsigned = signed(&kernel.key, "execute_request", code("set x 2"))
        .1
        .into_vec();
    unsigned[1] = Bytes::new();
    kernel
        .shell
        .socket
        .send(ZmqMessage::try_from(unsigned).unwrap())
        .await
        .unwrap();
    let garbled = ZmqMessage::try_from(vec![Bytes::from_static(b"<IDS|MSG>")]).unwrap();
    kernel.shell.socket.send(garbled).await.unwrap();
    // Signed, but not JSON: dropped by the lenient reader, which goes on reading.
    let not_json = ["{oops", "{}", "{}", "{}"]
        .map(|p| Bytes::from_static(p.as_bytes()))
        .to_vec();
    kernel
        .shell
        .socket
        .send(sign(&kernel.key, not_json))
        .await
        .unwrap();

    // A properly signed message runs once; the same bytes again are a replay.
    let (id, genuine) = signed(&kernel.key, "execute_request", code("set z 3"));
    kernel.shell.socket.send(genuine.clone()).await.unwrap();
    let first = recv(&mut kernel.shell, TIMEOUT).await.expect("a reply");
    assert_eq!(first.parent_id(), id, "nothing before it was executed");
    assert_eq!(first.content["status"], "ok");
    kernel.shell.socket.send(genuine).await.unwrap();
    assert!(
        recv(&mut kernel.shell, QUIET).await.is_none(),
        "no reply to a replay"
    );

    let vars = kernel.vars().await;
    assert!(vars.get("x").is_none(), "{vars}");
    assert_eq!(vars["z"], "3");
    kernel.shutdown().await;
}

#[tokio::test]
async fn commands_ask_on_stdin_only_when_allowed() {
    let mut kernel = Kernel::start().await;
    let (reply, _) = kernel.execute("register").await;
    assert_eq!(reply.content["status"], "ok");

    // Without allow_stdin, a missing password is an error at once.
    let (reply, _) = kernel.execute("authorize --as daniel-adams").await;
    assert_eq!(reply.content["ename"], "MissingArgument");

    let ask = ExecuteRequest {
        allow_stdin: true,
        ..request("authorize --as daniel-adams\nexchange")
    };
    let id = kernel.send_shell(ask.into()).await;
    let question = recv(&mut kernel.stdin, TIMEOUT)
        .await
        .expect("input_request");
    assert_eq!(question.msg_type(), "input_request");
    assert_eq!(question.parent_id(), id);
    assert_eq!(question.content["password"], true);
    assert!(question.content["prompt"]
        .as_str()
        .unwrap()
        .contains("daniel-adams"));
    let mut answer = JupyterMessage::new(
        InputReply {
            value: "demo-password".into(),
            status: ReplyStatus::Ok,
            error: None,
        },
        None,
    );
    answer.parent_header = Some(serde_json::from_value(question.header.clone()).unwrap());
    kernel.stdin.send(answer).await.unwrap();
    let reply = kernel.reply(&id).await;
    assert_eq!(reply.content["status"], "ok", "{:?}", reply.content);
    kernel.until_idle(&id).await;
    assert!(kernel.vars().await["access_token"].is_string());

    // An interrupt while the kernel waits for an answer ends the command.
    kernel.execute("unset code").await;
    let ask = ExecuteRequest {
        allow_stdin: true,
        ..request("exchange")
    };
    let id = kernel.send_shell(ask.into()).await;
    let question = recv(&mut kernel.stdin, TIMEOUT)
        .await
        .expect("input_request");
    assert_eq!(question.content["password"], false);
    kernel
        .control
        .send(InterruptRequest {}.into())
        .await
        .unwrap();
    let reply = kernel.reply(&id).await;
    assert_eq!(reply.content["ename"], "Interrupted");
    kernel.shutdown().await;
}

#[tokio::test]
async fn an_orphaned_kernel_exits() {
    // A shell starts the kernel as Jupyter would (naming itself in JPY_PARENT_PID) and
    // dies; the kernel's stdout is the pipe, which closes when the kernel exits.
    let mut kernel = Kernel::start_with("orphan", |file| {
        Command::new("sh")
            .arg("-c")
            .arg(r#"JPY_PARENT_PID=$$ "$0" kernel --connection-file "$1" & echo $!; wait"#)
            .arg(env!("CARGO_BIN_EXE_smartnb"))
            .arg(file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("sh starts")
    })
    .await;
    let mut shell = kernel.child.take().unwrap();
    let mut stdout = std::io::BufReader::new(shell.stdout.take().unwrap());
    let mut pid = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut pid).unwrap();
    shell.kill().unwrap();
    shell.wait().unwrap();
    let rest = off_thread(move || {
        let mut rest = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut rest).map(|_| rest)
    });
    let Some(rest) = rest else {
        let _ = Command::new("kill").arg(pid.trim()).status();
        panic!("the orphaned kernel {} did not exit", pid.trim());
    };
    let rest = rest.unwrap();
    assert!(rest.is_empty());
}
