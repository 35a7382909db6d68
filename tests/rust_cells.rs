//! Rust cells in the terminal REPL, piped as a script would: output streams, values,
//! compile errors, variables, helper variables, and Ctrl-C (SIGINT) stopping a loop while
//! the REPL and its helper variables live on. Slow (seconds per cell), so one REPL does it
//! all; tests/session_rust.rs covers the session itself in more detail.
#![cfg(feature = "rust")]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn wait_for(lines: &mpsc::Receiver<String>, seen: &mut Vec<String>, needle: &str) {
    while !seen.iter().any(|l| l.contains(needle)) {
        match lines.recv_timeout(Duration::from_secs(120)) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("no {needle:?} in the REPL's output:\n{}", seen.join("\n")),
        }
    }
}

#[test]
fn rust_cells_print_return_fail_remember_and_survive_interrupts() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_smartnb"))
        .args(["repl", "--port", "0", "--keep-going"])
        // As a terminal starts it: without the library path `cargo test` sets.
        .env_remove("LD_LIBRARY_PATH")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("smartnb starts");
    let (tx, lines) = mpsc::channel();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    let mut stdin = child.stdin.take().unwrap();
    let mut seen = Vec::new();
    let cells = [
        "println!(\"hello, world\");",
        "eprintln!(\"to stderr\");",
        "6 * 7",
        "let n: u8 = \"not a number\";",
        "let kept = 41;",
        "println!(\"kept+1={}\", kept + 1);",
        "register",
        "token",
        "println!(\"rust sees {}\", access_token);",
        "println!(\"before-loop\");",
    ];
    for cell in cells {
        writeln!(stdin, "{cell}").unwrap();
    }
    stdin.flush().unwrap();
    wait_for(&lines, &mut seen, "before-loop");
    for expected in [
        "hello, world",
        "to stderr",
        "42",
        "CompilationError: mismatched types",
        "error[E0308]",
        "kept+1=42",
    ] {
        assert!(
            seen.iter().any(|l| l.contains(expected)),
            "{expected:?} missing:\n{}",
            seen.join("\n")
        );
    }
    let token_line = seen
        .iter()
        .find(|l| l.contains("\"access_token\""))
        .expect("token printed its JSON")
        .clone();
    let token = token_line.split('"').nth(3).unwrap().to_string();
    assert!(
        seen.iter().any(|l| l == &format!("rust sees {token}")),
        "{}",
        seen.join("\n")
    );

    writeln!(
        stdin,
        "loop {{ std::thread::sleep(std::time::Duration::from_millis(10)); }}"
    )
    .unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_secs(4));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    wait_for(&lines, &mut seen, "Interrupted");
    writeln!(
        stdin,
        "println!(\"after {{}}\", access_token == \"{token}\");"
    )
    .unwrap();
    writeln!(stdin, "vars").unwrap();
    drop(stdin);
    wait_for(&lines, &mut seen, "after true");
    assert!(
        seen.iter().any(|l| l.contains("Rust variables")),
        "the interrupt says what was lost:\n{}",
        seen.join("\n")
    );
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
}
