//! `smartnb repl` on a pseudo-terminal, typed at as a person would: the banner, Tab
//! completion, Up-arrow history, Ctrl-C and Ctrl-D, and the history file it leaves.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rexpect::process::wait::WaitStatus;
use rexpect::reader::Options;
use rexpect::session::{spawn_with_options, PtySession};

const PROMPT: &str = "smartnb> ";
const UP: &str = "\x1b[A";
const TAB: &str = "\t";
const ENTER: &str = "\r";

/// The REPL on a terminal, with its home and data directories in `home`.
fn repl(home: &Path) -> PtySession {
    let mut command = Command::new(env!("CARGO_BIN_EXE_smartnb"));
    command
        .args(["repl", "--port", "0"])
        .env("HOME", home)
        .env("XDG_DATA_HOME", data_dir(home))
        .env("TERM", "xterm")
        .env_remove("SMARTNB_LOG");
    let options = Options {
        timeout_ms: Some(20_000),
        strip_ansi_escape_codes: true,
    };
    let mut pty = spawn_with_options(command, options).expect("the REPL starts on a pty");
    pty.exp_string("Type `help` for the helper commands")
        .expect("the banner");
    pty.exp_string(PROMPT).expect("the first prompt");
    pty
}

fn data_dir(home: &Path) -> PathBuf {
    home.join("data")
}

fn history(home: &Path) -> String {
    let path = data_dir(home).join("smartnb").join("history.txt");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("no history at {}: {e}", path.display()))
}

/// Type keys, flushed so the REPL sees them now.
fn keys(pty: &mut PtySession, keys: &str) {
    pty.send(keys).unwrap();
    pty.flush().unwrap();
}

/// Press Ctrl-D on an empty line and check the exit status is 0.
fn leave(mut pty: PtySession) {
    pty.send_control('d').unwrap();
    pty.exp_eof().expect("the REPL ends");
    match pty.process().wait().unwrap() {
        WaitStatus::Exited(_, code) => assert_eq!(code, 0),
        other => panic!("the REPL did not exit cleanly: {other:?}"),
    }
}

/// The next connection to `listener`, waiting at most `limit`.
fn accept_within(listener: &TcpListener, limit: Duration) -> TcpStream {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + limit;
    loop {
        match listener.accept() {
            Ok((stream, _)) => return stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "nothing connected");
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

#[test]
fn completion_history_ctrl_c_and_ctrl_d() {
    let home = tempfile::tempdir().unwrap();
    let mut pty = repl(home.path());

    // "reg" + Tab completes on screen, and Enter runs it.
    keys(&mut pty, &format!("reg{TAB}"));
    pty.exp_string("register").expect("Tab completes reg");
    keys(&mut pty, ENTER);
    pty.exp_string("Response status code: 201")
        .expect("register ran");
    pty.exp_string("\"client_secret\"").unwrap();
    pty.exp_string(PROMPT).unwrap();

    // Up recalls it, and Enter runs it again.
    keys(&mut pty, UP);
    pty.exp_string("register")
        .expect("Up shows the last command");
    keys(&mut pty, ENTER);
    pty.exp_string("Response status code: 201")
        .expect("the recalled command ran");
    pty.exp_string(PROMPT).unwrap();

    // Ctrl-C drops a half-typed line and gives the prompt back.
    keys(&mut pty, "fetch Patient/smart-12");
    pty.exp_string("smart-12").unwrap();
    pty.send_control('c').unwrap();
    pty.exp_string(PROMPT).expect("the prompt comes back");
    keys(&mut pty, &format!("vars{ENTER}"));
    let before = pty.exp_string("client_secret").expect("vars ran");
    assert!(
        !before.contains("Response status code"),
        "the cancelled fetch ran: {before:?}"
    );
    pty.exp_string(PROMPT).unwrap();

    leave(pty);
    let saved = history(home.path());
    assert!(saved.lines().any(|l| l == "register"), "{saved}");
    assert!(saved.lines().any(|l| l == "vars"), "{saved}");
    assert!(
        !saved.contains("fetch"),
        "a cancelled line is no history: {saved}"
    );
}

#[test]
fn history_survives_a_restart() {
    let home = tempfile::tempdir().unwrap();
    let mut pty = repl(home.path());
    keys(
        &mut pty,
        &format!("set remembered from-the-first-run{ENTER}"),
    );
    pty.exp_string(PROMPT).unwrap();
    leave(pty);

    let mut pty = repl(home.path());
    keys(&mut pty, UP);
    pty.exp_string("set remembered from-the-first-run")
        .expect("Up shows the last run's command");
    keys(&mut pty, ENTER);
    pty.exp_string(PROMPT).unwrap();
    keys(&mut pty, &format!("vars{ENTER}"));
    pty.exp_string("from-the-first-run")
        .expect("the recalled line ran");
    pty.exp_string(PROMPT).unwrap();
    leave(pty);
}

#[test]
fn ctrl_c_interrupts_a_running_request() {
    let home = tempfile::tempdir().unwrap();
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let mut pty = repl(home.path());

    keys(
        &mut pty,
        &format!("http GET http://127.0.0.1:{port}/{ENTER}"),
    );
    // Once the REPL has connected, its request waits for an answer that never comes.
    let _connection = accept_within(&silent, Duration::from_secs(20));
    pty.send_control('c').unwrap();
    pty.exp_string("Interrupted: the command stopped before it finished")
        .expect("Ctrl-C cancels the request");
    pty.exp_string(PROMPT).expect("the prompt comes back");
    keys(&mut pty, &format!("set still alive{ENTER}"));
    pty.exp_string(PROMPT).unwrap();
    leave(pty);
}

#[test]
fn a_second_tab_lists_the_candidates() {
    let home = tempfile::tempdir().unwrap();
    let mut pty = repl(home.path());
    // `re` is the start of refresh and register: the second Tab lists both, rather than
    // cycling through them on the line.
    keys(&mut pty, &format!("re{TAB}"));
    keys(&mut pty, TAB);
    let listed = pty.exp_string("register").expect("the list");
    // Listed side by side, not shown one after another on the prompt line.
    let after_refresh = listed.rsplit_once("refresh").map(|(_, rest)| rest);
    assert!(
        after_refresh.is_some_and(|rest| !rest.contains(PROMPT)),
        "{listed:?}"
    );
    pty.exp_string(&format!("{PROMPT}re"))
        .expect("the line comes back as typed");
    pty.send_control('c').unwrap();
    pty.exp_string(PROMPT).unwrap();
    leave(pty);
}

#[test]
fn an_unfinished_line_gets_the_continuation_prompt() {
    let home = tempfile::tempdir().unwrap();
    let mut pty = repl(home.path());
    // An open quote.
    keys(&mut pty, &format!("set note \"two{ENTER}"));
    pty.exp_string("...> ").expect("an open quote continues");
    keys(&mut pty, &format!("lines\"{ENTER}"));
    pty.exp_string(PROMPT).unwrap();
    // A trailing backslash, then Ctrl-C drops the whole unfinished cell.
    keys(&mut pty, &format!("set dropped \\{ENTER}"));
    pty.exp_string("...> ").expect("a backslash continues");
    pty.send_control('c').unwrap();
    pty.exp_string(PROMPT).unwrap();
    keys(&mut pty, &format!("vars{ENTER}"));
    pty.exp_string("note")
        .expect("the two lines made one command");
    let shown = pty.exp_string(PROMPT).unwrap();
    assert!(shown.contains("lines"), "{shown:?}");
    assert!(!shown.contains("dropped"), "{shown:?}");
    leave(pty);
}

#[test]
fn ctrl_c_at_a_question_is_an_interrupt() {
    let home = tempfile::tempdir().unwrap();
    let mut pty = repl(home.path());
    keys(&mut pty, &format!("register{ENTER}"));
    pty.exp_string("Response status code: 201").unwrap();
    pty.exp_string(PROMPT).unwrap();

    keys(&mut pty, &format!("authorize --as daniel-adams{ENTER}"));
    pty.exp_string("Password for daniel-adams: ")
        .expect("the password question");
    pty.send_control('c').unwrap();
    let said = pty
        .exp_string("stopped before it finished")
        .expect("Ctrl-C at the password is an interrupt");
    assert!(!said.contains("MissingArgument"), "{said:?}");
    pty.exp_string(PROMPT).expect("the prompt comes back");

    keys(&mut pty, &format!("exchange{ENTER}"));
    pty.exp_string("Authorization code")
        .expect("the code question");
    pty.send_control('c').unwrap();
    let said = pty
        .exp_string("stopped before it finished")
        .expect("Ctrl-C at the code is an interrupt");
    assert!(!said.contains("MissingArgument"), "{said:?}");
    pty.exp_string(PROMPT).unwrap();
    leave(pty);
}
