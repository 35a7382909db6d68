//! What `smartnb serve` says once it accepts connections: the address actually bound, the
//! URL participants use, and a warning when that URL only works on this machine.

use std::net::SocketAddr;

use super::StateLocation;

/// The lines `smartnb serve` writes on stderr when it has started.
pub fn startup_lines(
    bound: SocketAddr,
    base_url: &str,
    state: &StateLocation,
    public_url_given: bool,
) -> Vec<String> {
    let mut lines = vec![format!(
        "smartnb: listening on {bound}, participants use {base_url} (FHIR base {base_url}/api/fhir)"
    )];
    let (ip, port) = (bound.ip(), bound.port());
    if !ip.is_loopback() && !public_url_given {
        lines.push(if ip.is_unspecified() {
            format!(
                "smartnb: warning: --host {ip} lets other machines connect, but without \
                 --public-url the server calls itself {base_url}, which only works on this \
                 machine; give --public-url http://NAME:{port} with the name participants' \
                 browsers reach it by"
            )
        } else {
            format!(
                "smartnb: warning: no --public-url, so the server calls itself {base_url}; if \
                 participants reach this machine by a name or through a proxy, give \
                 --public-url with that URL"
            )
        });
    }
    lines.push(format!("smartnb: state in {state}; Ctrl-C stops it"));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_shows_the_address_and_the_url_without_a_warning() {
        let lines = startup_lines(
            "127.0.0.1:9000".parse().unwrap(),
            "http://localhost:9000",
            &StateLocation::Memory,
            false,
        );
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(
            lines[0],
            "smartnb: listening on 127.0.0.1:9000, participants use http://localhost:9000 (FHIR base http://localhost:9000/api/fhir)"
        );
        assert!(lines[1].ends_with("; Ctrl-C stops it"), "{lines:?}");
    }

    #[test]
    fn every_interface_without_a_public_url_is_warned_about() {
        let bound = "0.0.0.0:9000".parse().unwrap();
        let lines = startup_lines(
            bound,
            "http://localhost:9000",
            &StateLocation::Memory,
            false,
        );
        assert!(lines[0].starts_with(
            "smartnb: listening on 0.0.0.0:9000, participants use http://localhost:9000"
        ));
        assert!(
            lines[1].starts_with("smartnb: warning: --host 0.0.0.0 lets other machines connect")
                && lines[1].contains("--public-url http://NAME:9000"),
            "{lines:?}"
        );
        let given = startup_lines(
            bound,
            "http://class.example:9000",
            &StateLocation::Memory,
            true,
        );
        assert!(!given.iter().any(|l| l.contains("warning")), "{given:?}");
        let one = startup_lines(
            "192.0.2.7:9000".parse().unwrap(),
            "http://192.0.2.7:9000",
            &StateLocation::Memory,
            false,
        );
        assert!(
            one[1].starts_with("smartnb: warning: no --public-url, so the server calls itself http://192.0.2.7:9000;"),
            "{one:?}"
        );
    }
}
