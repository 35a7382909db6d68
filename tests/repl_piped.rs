//! `smartnb repl` with cells piped on stdin: the walkthrough prints what the seed printed,
//! in plain text; each failing line is named on stderr, the first one stops the run with
//! exit status 1, and `--keep-going` runs every line and exits 0.

use std::io::Write;
use std::process::{Command, Stdio};

/// The seed walkthrough, one helper line per Python cell.
const WALKTHROUGH: &str = r#"# Client registration
register
token
introspect
token --lifetime 3h --approval-expires 180d
fetch Patient/smart-1288992 --no-auth
fetch Patient/smart-1288992
refresh
# OAuth workflow walkthrough
register --name "Fake Research Application" --redirect-uri http://not-a-real-site
authorize --state my-obscure-state --as daniel-adams:demo-password
exchange
fetch Patient/$patient
"#;

/// What one run of the REPL did.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Run `smartnb repl --port 0 [extra]` with `input` piped on stdin until it exits.
fn repl(extra: &[&str], input: &str) -> Run {
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_smartnb"))
        .args(["repl", "--port", "0"])
        .args(extra)
        .env("HOME", home.path())
        .env("XDG_DATA_HOME", home.path().join("data"))
        .env_remove("SMARTNB_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    Run {
        code: output.status.code().expect("exited, not killed"),
        stdout: String::from_utf8(output.stdout).expect("UTF-8 stdout"),
        stderr: String::from_utf8(output.stderr).expect("UTF-8 stderr"),
    }
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn the_walkthrough_prints_what_the_seed_printed() {
    let run = repl(&[], WALKTHROUGH);
    assert_eq!(
        run.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    let out = &run.stdout;
    assert_eq!(count(out, "Response status code: 201"), 2, "{out}");
    assert!(out.contains("Response status code: 401"), "{out}");
    assert!(
        out.contains("\"client_name\": \"SMART Test Client\""),
        "{out}"
    );
    assert!(out.contains("\"client_name\": \"Fake Research Application\""));
    // The introspection table and the seed's patient.
    assert!(out.contains("approval_expires") && out.contains("daniel-adams"));
    assert_eq!(count(out, "\"birthDate\": \"1925-12-23\""), 2, "{out}");
    assert!(out.contains("\"city\": \"Tulsa\""));
    assert!(out.contains("\"gender\": \"male\""));
    assert!(out.contains("Continue to authorization:\nhttp://localhost:"));
    assert!(out.contains("state=my-obscure-state"));
    assert!(out.contains("\"patient\": \"smart-1288992\""));
    assert!(!out.contains("Error"), "no cell failed: {out}");
}

#[test]
fn piped_output_has_no_colour_codes() {
    let run = repl(
        &[],
        "register\nfetch Patient/smart-1288992 --no-auth\n%regster\n",
    );
    assert!(run.stdout.contains("\"client_id\""), "{}", run.stdout);
    assert!(run.stderr.contains("UnknownCommand"), "{}", run.stderr);
    assert!(!run.stdout.contains('\x1b'), "{:?}", run.stdout);
    assert!(!run.stderr.contains('\x1b'), "{:?}", run.stderr);
}

#[test]
fn the_first_failure_is_named_on_stderr_and_stops_the_run_with_status_1() {
    let input = "register\n%regster\nset ran_after_failure yes\nvars\n";
    for extra in [&[][..], &["--fail-fast"][..]] {
        let run = repl(extra, input);
        assert_eq!(run.code, 1, "{extra:?}: {}", run.stderr);
        assert!(run.stdout.contains("Response status code: 201"));
        assert!(
            run.stderr
                .contains("line 2: UnknownCommand: there is no helper command \"regster\""),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("hint: did you mean `register`?"));
        assert!(run.stderr.contains("stopped at line 2"), "{}", run.stderr);
        assert!(
            !run.stdout.contains("UnknownCommand"),
            "errors stay off stdout"
        );
        assert!(!run.stdout.contains("ran_after_failure"), "{}", run.stdout);
    }

    // A failing HTTP command counts too; its answer is still shown on stdout.
    let input = "# a comment first\ntoken --client nobody\nset ran_after_failure yes\nvars\n";
    let run = repl(&[], input);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stderr.contains("line 2: HttpError"), "{}", run.stderr);
    assert!(
        run.stdout.contains("Response status code:"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("ran_after_failure"), "{}", run.stdout);
}

#[test]
fn keep_going_runs_every_line_names_each_failure_and_exits_0() {
    let input = "register\n%regster\nset ran_after_failure yes\nfecth Patient/x\nvars\n";
    let run = repl(&["--keep-going"], input);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("line 2: UnknownCommand"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("line 4: UnknownCommand: there is no helper command \"fecth\""),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("2 cells failed: line 2, line 4"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("ran_after_failure"), "{}", run.stdout);
}

#[test]
fn no_failure_exits_0() {
    let run = repl(&[], "register\nvars\n");
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.stdout.contains("client_secret"));
    assert_eq!(run.stderr, "", "nothing failed, nothing on stderr");
}

#[test]
fn continuation_lines_and_quotes_across_lines_make_one_command() {
    // A quote open across a line break (an app name may not hold a newline, so the quoted
    // value is a variable's): a second line read as a command of its own would fail the run.
    let input = "set note \"Fake Research\nApplication\"\nregister \\\n  --name \"Fake Research Application\" \\\n  --redirect-uri http://not-a-real-site\nvars\n";
    let run = repl(&[], input);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(count(&run.stdout, "Response status code: 201"), 1);
    assert!(
        run.stdout
            .contains("\"client_name\": \"Fake Research Application\""),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("note"), "{}", run.stdout);
    assert!(run.stdout.contains("\"http://not-a-real-site\""));
    assert!(run.stdout.contains("redirect_uri"), "vars ran after it");
}

#[test]
fn input_that_ends_inside_a_quote_is_reported() {
    let run = repl(&[], "register\nset name 'never closed\n");
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stderr.contains("line 2: ParseError: unclosed ' quote"),
        "{}",
        run.stderr
    );
    let run = repl(&["--keep-going"], "register\nset a \\\nb 'never\nclosed\n");
    assert_eq!(run.code, 0);
    assert!(
        run.stderr.contains("lines 2-4: ParseError"),
        "{}",
        run.stderr
    );
}

#[test]
fn empty_input_exits_0_and_prints_nothing() {
    let run = repl(&[], "");
    assert_eq!(run.code, 0);
    assert_eq!(run.stdout, "");
}
