//! The connection file Jupyter writes for a kernel: ports, transport and the signing key.

use std::path::{Path, PathBuf};

use jupyter_protocol::{ConnectionInfo, Transport};

/// Why a connection file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// The file could not be read.
    #[error("cannot read the connection file {path}: {cause}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// The file is not a connection file.
    #[error("the connection file {path} is not valid: {cause}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What serde found wrong.
        cause: serde_json::Error,
    },
    /// A signature scheme other than HMAC-SHA256.
    #[error("signature scheme {0:?} is not supported; use \"hmac-sha256\"")]
    Scheme(String),
    /// IPC transport (this kernel listens on TCP only).
    #[error("transport {0} is not supported; use \"tcp\"")]
    Transport(Transport),
}

/// Read and check a connection file.
pub fn read(path: &Path) -> Result<ConnectionInfo, ConnectionError> {
    let text = std::fs::read_to_string(path).map_err(|cause| ConnectionError::Read {
        path: path.to_path_buf(),
        cause,
    })?;
    parse(&text).map_err(|e| match e {
        ConnectionError::Parse { cause, .. } => ConnectionError::Parse {
            path: path.to_path_buf(),
            cause,
        },
        other => other,
    })
}

/// Parse and check the text of a connection file.
pub fn parse(text: &str) -> Result<ConnectionInfo, ConnectionError> {
    let info: ConnectionInfo =
        serde_json::from_str(text).map_err(|cause| ConnectionError::Parse {
            path: PathBuf::new(),
            cause,
        })?;
    // With an empty key Jupyter signs nothing, so the scheme does not matter then.
    if !info.key.is_empty() && info.signature_scheme != "hmac-sha256" {
        return Err(ConnectionError::Scheme(info.signature_scheme));
    }
    if info.transport != Transport::TCP {
        return Err(ConnectionError::Transport(info.transport));
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"{"shell_port": 1, "iopub_port": 2, "stdin_port": 3, "control_port": 4,
        "hb_port": 5, "ip": "127.0.0.1", "key": "k", "transport": "tcp",
        "signature_scheme": "hmac-sha256", "kernel_name": "smartnb", "jupyter_session": "x"}"#;

    #[test]
    fn reads_what_jupyter_client_writes() {
        let info = parse(FILE).unwrap();
        assert_eq!((info.shell_port, info.hb_port), (1, 5));
        assert_eq!(info.key, "k");
    }

    #[test]
    fn refuses_other_schemes_unless_unsigned() {
        let md5 = FILE.replace("hmac-sha256", "hmac-md5");
        assert!(matches!(parse(&md5), Err(ConnectionError::Scheme(_))));
        let unsigned = md5.replace(r#""key": "k""#, r#""key": """#);
        assert!(parse(&unsigned).is_ok());
    }

    #[test]
    fn says_what_is_wrong() {
        let err = parse("{}").unwrap_err().to_string();
        assert!(err.contains("missing field"), "{err}");
    }
}
