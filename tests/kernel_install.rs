//! `smartnb kernel install`: where the kernelspec lands and what it holds.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("smartnb-install-{name}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Run `smartnb kernel install ARGS` with ENV; the directory it printed.
fn install(args: &[&str], env: &[(&str, &Path)]) -> PathBuf {
    let mut command = Command::new(env!("CARGO_BIN_EXE_smartnb"));
    command.args(["kernel", "install"]).args(args);
    command
        .env_remove("JUPYTER_DATA_DIR")
        .env_remove("VIRTUAL_ENV");
    for (name, value) in env {
        command.env(name, value);
    }
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

fn check_spec(dir: &Path, display_name: &str) {
    let spec: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("kernel.json")).unwrap()).unwrap();
    let exe = Path::new(env!("CARGO_BIN_EXE_smartnb"))
        .canonicalize()
        .unwrap();
    assert_eq!(spec["argv"][0], exe.to_str().unwrap());
    assert!(Path::new(spec["argv"][0].as_str().unwrap()).is_absolute());
    assert_eq!(
        spec["argv"].as_array().unwrap()[1..],
        ["kernel", "--connection-file", "{connection_file}"]
    );
    assert_eq!(spec["display_name"], display_name);
    assert_eq!(spec["language"], "rust");
    assert_eq!(spec["interrupt_mode"], "message");
    for logo in ["logo-32x32.png", "logo-64x64.png"] {
        assert!(std::fs::read(dir.join(logo))
            .unwrap()
            .starts_with(b"\x89PNG"));
    }
}

#[test]
fn prefix_installs_under_share_jupyter_kernels() {
    let prefix = scratch("prefix");
    let dir = install(&["--prefix", prefix.to_str().unwrap()], &[]);
    assert_eq!(dir, prefix.join("share/jupyter/kernels/smartnb"));
    check_spec(&dir, "SMART on FHIR (Rust)");
    std::fs::remove_dir_all(prefix).unwrap();
}

#[test]
fn user_installs_honour_jupyter_data_dir_and_names() {
    let data = scratch("user");
    let dir = install(
        &["--user", "--name", "smart-2", "--display-name", "SMART two"],
        &[("JUPYTER_DATA_DIR", &data)],
    );
    assert_eq!(dir, data.join("kernels/smart-2"));
    check_spec(&dir, "SMART two");
    std::fs::remove_dir_all(data).unwrap();
}

#[test]
fn sys_prefix_uses_the_active_virtualenv() {
    let venv = scratch("venv");
    let dir = install(&["--sys-prefix"], &[("VIRTUAL_ENV", &venv)]);
    assert_eq!(dir, venv.join("share/jupyter/kernels/smartnb"));
    std::fs::remove_dir_all(venv).unwrap();
}

#[test]
fn bad_names_and_two_destinations_are_refused() {
    let bin = env!("CARGO_BIN_EXE_smartnb");
    let out = Command::new(bin)
        .args(["kernel", "install", "--prefix", "/tmp/x", "--name", "a/b"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a valid kernel name"));
    let out = Command::new(bin)
        .args(["kernel", "install", "--user", "--prefix", "/tmp/x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}
