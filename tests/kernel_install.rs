//! `smartnb kernel install`: where the kernelspec lands and what it holds.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("smartnb-install-{name}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Run `smartnb kernel install ARGS` with ENV; the directory it says it installed in.
fn install(args: &[&str], env: &[(&str, &Path)]) -> PathBuf {
    let report = report(args, env);
    let first = report.lines().next().unwrap_or_default();
    let (_, dir) = first
        .split_once(") in ")
        .unwrap_or_else(|| panic!("no directory in {report}"));
    PathBuf::from(dir)
}

/// Run `smartnb kernel install ARGS` with ENV; what it printed.
fn report(args: &[&str], env: &[(&str, &Path)]) -> String {
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
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn install_says_what_it_wrote_and_how_to_start_jupyter() {
    let prefix = scratch("report");
    let text = report(
        &["--prefix", prefix.to_str().unwrap(), "--name", "smart-3"],
        &[],
    );
    let dir = prefix.join("share/jupyter/kernels/smart-3");
    let exe = Path::new(env!("CARGO_BIN_EXE_smartnb"))
        .canonicalize()
        .unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        format!(
            "Installed the kernel \"smart-3\" (\"SMART on FHIR (Rust)\") in {}",
            dir.display()
        )
    );
    assert_eq!(
        lines[1],
        "  wrote kernel.json, logo-32x32.png, logo-64x64.png"
    );
    assert_eq!(
        lines[2],
        format!(
            "  Jupyter starts it with: {} kernel --connection-file {{connection_file}}",
            exe.display()
        )
    );
    assert!(
        lines[3].ends_with(&format!(
            "or with JUPYTER_PATH={}",
            prefix.join("share/jupyter").display()
        )),
        "{text}"
    );
    assert_eq!(
        lines[4..],
        [
            "Start Jupyter and pick \"SMART on FHIR (Rust)\" as the kernel:",
            "  jupyter lab",
            "  jupyter notebook",
            "  jupyter console --kernel smart-3",
        ]
    );
    for file in ["kernel.json", "logo-32x32.png", "logo-64x64.png"] {
        assert!(dir.join(file).is_file(), "{file} in {text}");
    }
    std::fs::remove_dir_all(prefix).unwrap();
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
