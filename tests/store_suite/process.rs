//! `smartnb serve` as a child process: started on a free port with a `--state`, ready once
//! it prints its base URL, killed (SIGKILL) when dropped.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A running `smartnb serve`.
pub struct Served {
    /// The child process.
    pub child: Child,
    /// Its base URL.
    pub base: String,
}

impl Served {
    /// Start `smartnb serve --port 0 --quiet --state STATE` (its stderr is the test's: no
    /// line per request there).
    pub fn start(state: impl AsRef<OsStr>) -> Served {
        Served::start_with(state, &[])
    }

    /// Start `smartnb serve --port 0 --quiet --state STATE` with more arguments.
    pub fn start_with(state: impl AsRef<OsStr>, more: &[&str]) -> Served {
        let mut child = Command::new(env!("CARGO_BIN_EXE_smartnb"))
            .args(["serve", "--port", "0", "--quiet", "--state"])
            .arg(state)
            .args(more)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("smartnb serve starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the base URL line");
        assert!(line.starts_with("http://"), "first line {line:?}");
        Served {
            child,
            base: line.trim().to_string(),
        }
    }

    /// An absolute URL on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
