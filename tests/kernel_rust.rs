//! Rust cells over the Jupyter wire: a compile error is one error output and an error
//! reply, an interrupt_request stops a running loop, and the kernel goes on with the next
//! cell and its helper variables. The worker starts only when Rust is needed: not for
//! helper cells, but for a Rust completion, or as soon as a Rust cell is queued behind
//! helper cells (Run All). (Hello world, stderr and execute_result are the official
//! jupyter_kernel_test suite's, run by .ci/kernel_test.sh.)
#![cfg(feature = "rust")]

mod kernel_client;

use jupyter_protocol::{CompleteRequest, InterruptRequest, JupyterMessage};
use kernel_client::{recv, request, Kernel, TIMEOUT};

fn stream_text(outputs: &[kernel_client::Msg]) -> String {
    outputs
        .iter()
        .filter(|m| m.msg_type() == "stream")
        .filter_map(|m| m.content["text"].as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_errors_and_interrupts_over_the_wire() {
    let mut kernel = Kernel::start().await;
    kernel.execute("set greeting hello").await;

    // The first Rust cell, which waits for the evaluator to start: no stderr says so (it
    // would stay in the saved notebook as a red band), at most a display taken back.
    let (reply, outputs) = kernel.execute("let n: u8 = \"not a number\";").await;
    assert!(
        !outputs.iter().any(|m| m.msg_type() == "stream"),
        "{outputs:?}"
    );
    if let Some(status) = outputs.iter().position(|m| m.msg_type() == "display_data") {
        let shown = &outputs[status].content;
        assert_eq!(shown["data"]["text/plain"], "starting the Rust evaluator…");
        assert!(shown["transient"]["display_id"].is_string(), "{shown}");
        assert_eq!(outputs[status + 1].msg_type(), "clear_output");
    }
    assert_eq!(reply.content["status"], "error");
    assert_eq!(reply.content["ename"], "CompilationError");
    let errors: Vec<_> = outputs.iter().filter(|m| m.msg_type() == "error").collect();
    assert_eq!(errors.len(), 1, "{outputs:?}");
    let traceback = errors[0].content["traceback"].to_string();
    assert!(traceback.contains("E0308"), "{traceback}");
    assert!(traceback.contains("--> cell:1:13"), "{traceback}");

    let looping = kernel
        .send_shell(request("println!(\"looping\"); loop { std::thread::sleep(std::time::Duration::from_millis(10)); }").into())
        .await;
    loop {
        let msg = recv(&mut kernel.iopub, TIMEOUT)
            .await
            .expect("the loop's output");
        if msg.parent_id() == looping && msg.msg_type() == "stream" {
            assert_eq!(msg.content["text"], "looping\n");
            break;
        }
    }
    let interrupt: JupyterMessage = InterruptRequest {}.into();
    kernel.control.send(interrupt).await.unwrap();
    let reply = recv(&mut kernel.control, TIMEOUT)
        .await
        .expect("interrupt_reply");
    assert_eq!(reply.msg_type(), "interrupt_reply");
    let reply = kernel.reply(&looping).await;
    assert_eq!(reply.content["status"], "error");
    assert_eq!(reply.content["ename"], "Interrupted");
    kernel.until_idle(&looping).await;

    let (reply, outputs) = kernel.execute("println!(\"{} again\", greeting);").await;
    assert_eq!(reply.content["status"], "ok", "{outputs:?}");
    assert_eq!(stream_text(&outputs), "hello again\n");
    kernel.shutdown().await;
}

/// The kernel's `smartnb rust-worker` children (Linux: read from /proc).
fn rust_workers(kernel: &Kernel) -> Vec<u32> {
    let parent = kernel.child.as_ref().expect("the kernel process").id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // The fields after the command's closing parenthesis: state, then the parent.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            ppid == Some(parent) && String::from_utf8_lossy(&cmdline).contains("rust-worker")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_starts_when_rust_is_needed_and_run_all_looks_ahead() {
    let mut kernel = Kernel::start().await;
    // No request yet: the embedded server is not started, so `register` below is slow enough
    // for every request sent with it to be queued behind it.
    for cell in ["set a 1", "help", "vars"] {
        let (reply, outputs) = kernel.execute(cell).await;
        assert_eq!(reply.content["status"], "ok", "{cell}: {outputs:?}");
    }
    assert_eq!(
        rust_workers(&kernel),
        Vec::<u32>::new(),
        "helper cells alone never start the Rust worker"
    );

    // Run All: five helper cells and a Rust cell sent together, as JupyterLab sends them.
    let helpers = ["register", "token", "introspect", "vars", "set done yes"];
    let mut ids = Vec::new();
    for cell in helpers {
        ids.push(kernel.send_shell(request(cell).into()).await);
    }
    let rust = kernel
        .send_shell(request("println!(\"{} {}\", status, done);").into())
        .await;
    let mut seen_before_rust = Vec::new();
    for id in &ids {
        let reply = kernel.reply(id).await;
        assert_eq!(reply.content["status"], "ok", "{reply:?}");
        seen_before_rust.push(rust_workers(&kernel).len());
    }
    // Once the last helper cell has replied the Rust cell has not run, yet its worker was
    // started while the helper cells ran (they were read ahead of it).
    assert_eq!(
        seen_before_rust.last(),
        Some(&1),
        "workers seen after each helper cell's reply: {seen_before_rust:?}"
    );
    let reply = kernel.reply(&rust).await;
    assert_eq!(reply.content["status"], "ok", "{reply:?}");
    let outputs = kernel.until_idle(&rust).await;
    let text = stream_text(&outputs);
    assert!(
        text.contains("200 yes"),
        "status is a u16 in Rust: {text:?}"
    );
    assert_eq!(rust_workers(&kernel).len(), 1, "one worker, kept");
    kernel.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_completion_before_any_rust_cell_starts_the_worker() {
    let mut kernel = Kernel::start().await;
    assert!(rust_workers(&kernel).is_empty());
    let complete = || -> JupyterMessage {
        CompleteRequest {
            code: "let v: Vec<u8> = Vec::new(); v.".into(),
            cursor_pos: 31,
        }
        .into()
    };
    let reply = kernel.ask(complete()).await;
    assert_eq!(reply["status"], "ok", "{reply}");
    assert_eq!(
        rust_workers(&kernel).len(),
        1,
        "the completion started the worker"
    );
    // The first request waits a bounded time for the evaluator (which a loaded machine may
    // exceed): ask again until it answers.
    let mut matches = reply["matches"].to_string();
    let deadline = std::time::Instant::now() + TIMEOUT;
    while !matches.contains("push") && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        matches = kernel.ask(complete()).await["matches"].to_string();
    }
    assert!(matches.contains("push"), "evcxr's completions: {matches}");
    kernel.shutdown().await;
}
