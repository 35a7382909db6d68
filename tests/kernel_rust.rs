//! Rust cells over the Jupyter wire: a compile error is one error output and an error
//! reply, an interrupt_request stops a running loop, and the kernel goes on with the next
//! cell and its helper variables. (Hello world, stderr and execute_result are the official
//! jupyter_kernel_test suite's, run by .ci/kernel_test.sh.)
#![cfg(feature = "rust")]

mod kernel_client;

use jupyter_protocol::{InterruptRequest, JupyterMessage};
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
