//! The kernel over ZeroMQ, as a Jupyter client sees it: the built binary is started with a
//! connection file and driven with jupyter-zmq-client's client sockets. Replies are read
//! as raw JSON (after checking the kernel's signature) so the tests see the wire format.

mod kernel_client;

use std::net::TcpListener;
use std::process::{Command, Stdio};

use bytes::Bytes;
use jupyter_protocol::{
    CompleteRequest, ExecuteRequest, InputReply, InspectRequest, InterruptRequest,
    IsCompleteRequest, JupyterMessage, KernelInfoRequest, ReplyStatus,
};
use serde_json::{json, Value};
use zeromq::{SocketSend, ZmqMessage};

use kernel_client::{
    history, off_thread, recv, request, sign, signed, Kernel, Msg, QUIET, TIMEOUT,
};

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
    // The table and its JSON are two outputs: in one, JupyterLab would show only the JSON.
    assert_eq!(outputs.len(), 2, "{outputs:?}");
    assert!(outputs[0].content["data"]["text/html"]
        .as_str()
        .unwrap()
        .contains("<table>"));
    assert!(outputs[0].content["data"].get("application/json").is_none());
    assert_eq!(outputs[1].content["data"]["application/json"]["quiet"], "1");
    assert!(outputs[1].content["data"].get("text/html").is_none());
    let (reply, _) = kernel.execute("unset quiet").await;
    assert_eq!(reply.content["execution_count"], 4);
    kernel.shutdown().await;
}

#[tokio::test]
async fn introspect_shows_its_table_apart_from_the_json() {
    let mut kernel = Kernel::start().await;
    let (reply, outputs) = kernel.execute("register\ntoken\nintrospect").await;
    assert_eq!(reply.content["status"], "ok", "{:?}", reply.content);
    let displays: Vec<&Value> = outputs
        .iter()
        .filter(|m| m.msg_type() == "display_data")
        .map(|m| &m.content["data"])
        .collect();
    let table = displays
        .iter()
        .position(|d| {
            d["text/html"]
                .as_str()
                .is_some_and(|h| h.contains(">active<"))
        })
        .expect("the introspection table as text/html");
    // JupyterLab picks application/json over text/html: the table's output has none.
    assert!(displays[table].get("application/json").is_none());
    assert!(displays[table]["text/plain"]
        .as_str()
        .unwrap()
        .contains("active"));
    let json = displays[table + 1];
    assert_eq!(json["application/json"]["active"], true);
    assert!(json.get("text/html").is_none());
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

    // The cursor mid-line, after a non-ASCII word of a helper line (a helper line, so the
    // answer never depends on whether the Rust evaluator is up yet).
    let mid = kernel
        .ask(
            CompleteRequest {
                code: "fetch ü Obs".into(),
                cursor_pos: 7,
            }
            .into(),
        )
        .await;
    assert_eq!(
        (mid["cursor_start"].clone(), mid["cursor_end"].clone()),
        (json!(6), json!(7))
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
    assert!(
        reply.content.get("execution_count").is_none(),
        "an aborted cell claims no count: {:?}",
        reply.content
    );

    let vars = kernel.vars().await;
    assert_eq!(vars["x"], "kept");
    assert!(vars.get("y").is_none(), "{vars}");
    kernel.shutdown().await;
}

/// A kernel whose stop-on-error window outlasts any test: a late request arrives inside it
/// however slow the machine.
async fn kernel_with_a_long_abort_window() -> Kernel {
    Kernel::start_with(&uuid::Uuid::new_v4().to_string(), |file| {
        Command::new(env!("CARGO_BIN_EXE_smartnb"))
            .args(["kernel", "--connection-file"])
            .arg(file)
            .env("SMARTNB_STOP_ON_ERROR_WINDOW_MS", "600000")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the smartnb binary starts")
    })
    .await
}

#[tokio::test]
async fn a_late_cell_of_a_failed_run_is_aborted_unnumbered() {
    let mut kernel = kernel_with_a_long_abort_window().await;
    let (reply, _) = kernel.execute("set a 1").await;
    assert_eq!(reply.content["execution_count"], 1);

    // Run All: both cells are made together (the header's date), and the second reaches
    // the kernel only after the first one's error reply.
    let failing: JupyterMessage = request("%regster").into();
    let late: JupyterMessage = request("set b 2").into();
    let failed = kernel.send_shell(failing).await;
    let reply = kernel.reply(&failed).await;
    assert_eq!(reply.content["status"], "error");
    assert_eq!(reply.content["execution_count"], 2);
    let late = kernel.send_shell(late).await;
    let reply = kernel.reply(&late).await;
    assert_eq!(reply.content["status"], "aborted", "{:?}", reply.content);
    assert!(
        reply.content.get("execution_count").is_none(),
        "an aborted cell claims no count: {:?}",
        reply.content
    );
    let iopub = kernel.until_idle(&late).await;
    let types: Vec<&str> = iopub.iter().map(Msg::msg_type).collect();
    assert_eq!(types, ["status", "status"], "no execute_input: {iopub:?}");

    // A cell made after the error reply runs, and takes the next count.
    let (reply, _) = kernel.execute("set c 3").await;
    assert_eq!(reply.content["status"], "ok", "{:?}", reply.content);
    assert_eq!(reply.content["execution_count"], 3);

    // Another client session's late cell runs too.
    let failing: JupyterMessage = request("%regster").into();
    let other = json!({"code": "set d 4", "silent": false, "store_history": true,
        "user_expressions": {}, "allow_stdin": false, "stop_on_error": true});
    let (other, message) = signed(&kernel.info.key, "execute_request", other);
    let failed = kernel.send_shell(failing).await;
    kernel.reply(&failed).await;
    kernel.shell.socket.send(message).await.unwrap();
    let reply = kernel.reply(&other).await;
    assert_eq!(reply.content["status"], "ok", "{:?}", reply.content);
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
    let mut unsigned = signed(&kernel.info.key, "execute_request", code("set x 2"))
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
        .send(sign(&kernel.info.key, not_json))
        .await
        .unwrap();

    // A properly signed message runs once; the same bytes again are a replay.
    let (id, genuine) = signed(&kernel.info.key, "execute_request", code("set z 3"));
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
async fn an_input_reply_with_an_empty_parent_header_answers() {
    // jupyter_client's input() (and so `jupyter console`) sends no parent header.
    let mut kernel = Kernel::start().await;
    let (reply, _) = kernel.execute("register").await;
    assert_eq!(reply.content["status"], "ok");
    let ask = ExecuteRequest {
        allow_stdin: true,
        ..request("authorize --as daniel-adams\nexchange")
    };
    let id = kernel.send_shell(ask.into()).await;
    let question = recv(&mut kernel.stdin, TIMEOUT)
        .await
        .expect("input_request");
    assert_eq!(question.msg_type(), "input_request");
    let answer = JupyterMessage::new(
        InputReply {
            value: "demo-password".into(),
            status: ReplyStatus::Ok,
            error: None,
        },
        None,
    );
    assert!(answer.parent_header.is_none(), "sent as {{}}");
    kernel.stdin.send(answer).await.unwrap();
    let reply = kernel.reply(&id).await;
    assert_eq!(reply.content["status"], "ok", "{:?}", reply.content);
    kernel.until_idle(&id).await;
    assert!(kernel.vars().await["access_token"].is_string());
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
