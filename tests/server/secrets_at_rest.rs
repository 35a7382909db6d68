//! Secrets at rest: with `--state FILE` the database holds only the SHA-256 of every token,
//! code and client secret (the values exist only in the answers that handed them out), and
//! the file and its `-wal` and `-shm` companions are readable by their owner only.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::portal::*;
use serde_json::json;
use sha2::{Digest, Sha256};
use smartnb::server::{Config, StateLocation};

/// The database file and the companions SQLite keeps beside it.
fn state_files(db: &Path) -> Vec<PathBuf> {
    ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| PathBuf::from(format!("{}{suffix}", db.display())))
        .collect()
}

/// Every byte of the state files, concatenated.
fn state_bytes(db: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for file in state_files(db) {
        if let Ok(bytes) = std::fs::read(&file) {
            all.extend(bytes);
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

fn sha256_hex(value: &str) -> String {
    Sha256::digest(value.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn the_state_file_holds_hashes_of_tokens_codes_and_secrets_never_the_values() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let server = TestServer::start_with(Config {
        state: StateLocation::Sqlite(db.clone()),
        ..Config::default()
    })
    .await;
    let app = server.register_seed_app().await;
    let code = authorize(&server, &Authorize::new(&server, &app), JOSEPH)
        .await
        .code();
    let first = app.exchange(&server, &code, None).await.tokens();
    let renewed = app.refresh(&server, first.refresh(), None).await.tokens();
    let minted = server
        .debug_token(json!({
            "client_id": app.client_id,
            "username": JOSEPH.username,
            "patient_id": JOSEPH.patient,
        }))
        .await;
    assert_eq!(
        server
            .fhir_status(&renewed.access, "Patient/smart-1081332")
            .await,
        200
    );

    let bytes = state_bytes(&db);
    let secret = app.client_secret.clone().unwrap();
    let values = [
        ("the code", code.as_str()),
        ("the first access token", first.access.as_str()),
        ("the first refresh token", first.refresh()),
        ("the renewed access token", renewed.access.as_str()),
        ("the renewed refresh token", renewed.refresh()),
        ("the minted access token", minted.access.as_str()),
        ("the minted refresh token", minted.refresh()),
        ("the client secret", secret.as_str()),
    ];
    for (what, value) in values {
        assert!(!contains(&bytes, value), "{what} is stored in the clear");
    }
    // The scan reads what SQLite wrote: the hashes are there.
    for value in [renewed.access.as_str(), code.as_str(), minted.refresh()] {
        assert!(contains(&bytes, &sha256_hex(value)), "no hash of {value}");
    }
}

/// A child process killed when dropped, so a failed assertion leaves no server behind.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `smartnb serve --state FILE` started under this umask (by the shell, as a user would).
fn serve_under_umask(umask: &str, db: &Path) -> (Killed, String) {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask {umask} && exec \"$0\" serve --port 0 --state \"$1\""
        ))
        .arg(env!("CARGO_BIN_EXE_smartnb"))
        .arg(db)
        .env_remove("SMARTNB_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("smartnb serve starts");
    let stdout = child.stdout.take().unwrap();
    let child = Killed(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the base URL line");
    assert!(line.starts_with("http://"), "first line {line:?}");
    (child, line.trim().to_string())
}

#[tokio::test]
async fn the_state_file_and_its_wal_and_shm_are_0600_under_umask_022_and_000() {
    for umask in ["022", "000"] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state.db");
        let (_server, base) = serve_under_umask(umask, &db);
        // A write, so that the log and its index exist.
        let registered = reqwest::Client::new()
            .post(format!("{base}/oauth/register"))
            .json(&json!({
                "client_name": "modes",
                "redirect_uris": [SEED_REDIRECT],
                "scope": SEED_SCOPE,
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(registered.status().as_u16(), 201);
        for file in state_files(&db) {
            let mode = std::fs::metadata(&file)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
                .permissions()
                .mode();
            assert_eq!(
                mode & 0o777,
                0o600,
                "umask {umask}: {} is {:o}",
                file.display(),
                mode & 0o777
            );
        }
    }
}
