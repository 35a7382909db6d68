//! `smartnb kernel install`: write a kernelspec (kernel.json from kernel/kernel.json, with
//! this binary's absolute path as argv[0], plus the logos) where Jupyter looks for kernels.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::installed::Installed;

/// The kernelspec template; argv[0] is replaced by the running binary.
const TEMPLATE: &str = include_str!("../../kernel/kernel.json");
/// The logos, installed next to kernel.json.
const LOGOS: [(&str, &[u8]); 2] = [
    (
        "logo-32x32.png",
        include_bytes!("../../kernel/logo-32x32.png"),
    ),
    (
        "logo-64x64.png",
        include_bytes!("../../kernel/logo-64x64.png"),
    ),
];

/// The kernel name used when none is given.
pub const DEFAULT_NAME: &str = "smartnb";

/// Which Jupyter data directory receives the kernelspec.
#[derive(Debug, Clone, PartialEq)]
pub enum Destination {
    /// The user's Jupyter data directory (`JUPYTER_DATA_DIR`, else e.g. ~/.local/share/jupyter).
    User,
    /// `share/jupyter` under the Python environment's prefix (`VIRTUAL_ENV`, else the
    /// `sys.prefix` of the python3 on PATH).
    SysPrefix,
    /// `share/jupyter` under this prefix.
    Prefix(PathBuf),
}

/// What to install.
#[derive(Debug, Clone)]
pub struct InstallOptions {
    /// Where.
    pub destination: Destination,
    /// The kernel's name (its directory name; what `--kernel NAME` selects).
    pub name: String,
    /// The name shown in Jupyter's launcher; the template's when `None`.
    pub display_name: Option<String>,
    /// The embedded server's `--state` (a file or postgres:// URL), added to the kernel's argv.
    pub state: Option<String>,
}

/// Why the kernelspec could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The name has characters Jupyter does not accept.
    #[error("{0:?} is not a valid kernel name: use letters, digits, '.', '_' and '-'")]
    Name(String),
    /// No home directory to put the user's Jupyter data directory in.
    #[error("cannot find the Jupyter user data directory; set JUPYTER_DATA_DIR")]
    NoDataDir,
    /// python3 could not tell its sys.prefix.
    #[error("cannot ask python3 for sys.prefix ({0}); activate the environment or use --prefix")]
    Python(String),
    /// The path of this binary is unknown.
    #[error("cannot find the path of the smartnb binary: {0}")]
    Exe(std::io::Error),
    /// A file could not be written.
    #[error("cannot write {path}: {cause}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
}

/// Install the kernelspec; what was written, to tell the user.
pub fn install(options: &InstallOptions) -> Result<Installed, InstallError> {
    let name = valid_name(&options.name)?;
    let exe = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .map_err(InstallError::Exe)?;
    let dir = kernels_dir(&options.destination)?.join(&name);
    let write = |path: PathBuf, bytes: &[u8]| {
        std::fs::write(&path, bytes).map_err(|cause| InstallError::Write { path, cause })
    };
    std::fs::create_dir_all(&dir).map_err(|cause| InstallError::Write {
        path: dir.clone(),
        cause,
    })?;
    let spec = kernel_json(
        &exe,
        options.display_name.as_deref(),
        options.state.as_deref(),
    );
    let mut text = serde_json::to_string_pretty(&spec).unwrap_or_default();
    text.push('\n');
    write(dir.join("kernel.json"), text.as_bytes())?;
    let mut files = vec!["kernel.json".to_string()];
    for (file, bytes) in LOGOS {
        write(dir.join(file), bytes)?;
        files.push(file.to_string());
    }
    let strings = |value: &Value| value.as_str().map(str::to_string);
    Ok(Installed {
        dir,
        name,
        display_name: strings(&spec["display_name"]).unwrap_or_default(),
        files,
        argv: spec["argv"]
            .as_array()
            .map(|argv| argv.iter().filter_map(strings).collect())
            .unwrap_or_default(),
        under_prefix: options.destination != Destination::User,
    })
}

/// The kernel.json for a binary at `exe`, its embedded server keeping state in `state`.
pub fn kernel_json(exe: &Path, display_name: Option<&str>, state: Option<&str>) -> Value {
    // The template is part of the binary and checked by a test, so it parses.
    let mut spec: Value = serde_json::from_str(TEMPLATE).unwrap_or_default();
    spec["argv"][0] = Value::String(exe.to_string_lossy().into_owned());
    if let (Some(state), Some(argv)) = (state, spec["argv"].as_array_mut()) {
        argv.push(Value::String("--state".into()));
        argv.push(Value::String(state.to_string()));
    }
    if let Some(display_name) = display_name {
        spec["display_name"] = Value::String(display_name.to_string());
    }
    spec
}

/// Jupyter accepts kernel names of ASCII letters, digits, `.`, `_` and `-`, lowercased.
fn valid_name(name: &str) -> Result<String, InstallError> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(name.to_ascii_lowercase())
    } else {
        Err(InstallError::Name(name.to_string()))
    }
}

/// The `kernels` directory of a destination.
fn kernels_dir(destination: &Destination) -> Result<PathBuf, InstallError> {
    let data = match destination {
        Destination::User => user_data_dir()?,
        Destination::SysPrefix => sys_prefix()?.join("share").join("jupyter"),
        Destination::Prefix(prefix) => prefix.join("share").join("jupyter"),
    };
    Ok(data.join("kernels"))
}

/// jupyter_core's `jupyter_data_dir()`.
fn user_data_dir() -> Result<PathBuf, InstallError> {
    if let Some(dir) = std::env::var_os("JUPYTER_DATA_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    if cfg!(target_os = "macos") {
        return dirs::home_dir()
            .map(|h| h.join("Library").join("Jupyter"))
            .ok_or(InstallError::NoDataDir);
    }
    // XDG_DATA_HOME or ~/.local/share on Linux, %APPDATA% on Windows.
    dirs::data_dir()
        .map(|d| d.join("jupyter"))
        .ok_or(InstallError::NoDataDir)
}

/// The active virtual environment, else the prefix of the python3 on PATH.
fn sys_prefix() -> Result<PathBuf, InstallError> {
    if let Some(venv) = std::env::var_os("VIRTUAL_ENV").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(venv));
    }
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.prefix)"])
        .output()
        .map_err(|e| InstallError::Python(e.to_string()))?;
    let prefix = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || prefix.is_empty() {
        return Err(InstallError::Python(format!(
            "python3 exited with {}",
            out.status
        )));
    }
    Ok(PathBuf::from(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_json_runs_this_binary() {
        let spec = kernel_json(Path::new("/opt/bin/smartnb"), None, None);
        assert_eq!(
            spec["argv"],
            serde_json::json!([
                "/opt/bin/smartnb",
                "kernel",
                "--connection-file",
                "{connection_file}"
            ])
        );
        assert_eq!(spec["display_name"], "SMART on FHIR (Rust)");
        assert_eq!(spec["language"], "rust");
        assert_eq!(spec["interrupt_mode"], "message");
        let renamed = kernel_json(Path::new("x"), Some("Mine"), None);
        assert_eq!(renamed["display_name"], "Mine");
        let durable = kernel_json(Path::new("x"), None, Some("/data/smart.db"));
        assert_eq!(durable["argv"][4], "--state");
        assert_eq!(durable["argv"][5], "/data/smart.db");
    }

    #[test]
    fn logos_are_pngs() {
        for (_, bytes) in LOGOS {
            assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
        }
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(valid_name("SmartNB-2").unwrap(), "smartnb-2");
        assert!(valid_name("a b").is_err());
        assert!(valid_name("../x").is_err());
        assert!(valid_name("").is_err());
    }

    #[test]
    fn prefix_installs_under_share_jupyter() {
        let dir = kernels_dir(&Destination::Prefix("/p".into())).unwrap();
        assert_eq!(dir, Path::new("/p/share/jupyter/kernels"));
    }
}
