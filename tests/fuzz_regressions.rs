//! What fuzzing found, kept as tests: every committed seed of the fuzz targets is replayed
//! through the same harness the fuzzer runs (fuzz/src/lib.rs, included below), and each
//! minimised crash is replayed with a check of the behaviour it should have had.

#[allow(dead_code)] // the fuzz crate uses what these tests do not
#[path = "../fuzz/src/lib.rs"]
mod harness;

use std::path::PathBuf;

use smartnb::server::fhir::search::Search;

/// The seed inputs of one fuzz target, by file name.
fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a directory entry").path();
            let bytes = std::fs::read(&path).expect("a readable seed");
            (path.display().to_string(), bytes)
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seeds in {}", dir.display());
    out
}

fn replay(target: &str, run: fn(&[u8])) {
    for (name, bytes) in seeds(target) {
        let outcome = std::panic::catch_unwind(|| run(&bytes));
        assert!(outcome.is_ok(), "seed {name} fails its target");
    }
}

#[test]
fn cell_seeds_replay() {
    replay("cell", harness::cell);
}

#[test]
fn scopes_seeds_replay() {
    replay("scopes", harness::scopes);
}

#[test]
fn register_seeds_replay() {
    replay("register", harness::register);
}

#[test]
fn token_seeds_replay() {
    replay("token", harness::token);
}

#[test]
fn wire_seeds_replay() {
    replay("wire", harness::wire);
}

#[test]
fn fhir_seeds_replay() {
    replay("fhir", harness::fhir);
}

#[test]
fn ingress_seeds_replay() {
    replay("ingress", harness::ingress);
}

/// The ingress seeds get what they were written for: the debug endpoints answer only a
/// loopback peer naming a loopback Host with the port, hosts the server is not get 421,
/// a JSON body without Content-Type: application/json gets 415.
#[test]
fn ingress_seeds_get_what_they_were_written_for() {
    let expected = [
        ("debug_token_loopback", 200),
        ("debug_token_ipv6", 200),
        ("debug_token_trailing_dot", 200),
        ("debug_token_public_host", 403),
        ("debug_token_public_url_unflagged", 403),
        ("debug_token_public_url_flagged", 200),
        ("debug_token_remote_peer", 403),
        ("debug_token_unknown_peer", 403),
        ("debug_token_forwarded", 403),
        ("debug_token_no_port", 403),
        ("debug_token_text_plain", 415),
        ("debug_token_rebind", 421),
        ("debug_token_any_host_rebind", 403),
        ("debug_introspect_loopback", 200),
        ("debug_introspect_rebind", 421),
        ("debug_preflight", 403),
        ("register_json", 201),
        ("register_text_plain", 415),
        ("register_no_content_type", 415),
        ("register_latin1", 415),
        ("register_problem_json", 415),
        ("register_public_host", 201),
        ("register_any_host", 201),
        ("fhir_rebind", 421),
        ("open_fhir_rebind", 421),
        ("open_fhir_loopback", 200),
        ("login_no_host", 400),
        ("login_user_info", 400),
        ("login_bad_port", 400),
        ("discovery_rebind", 421),
    ];
    let all = seeds("ingress");
    assert_eq!(
        all.len(),
        expected.len(),
        "every ingress seed has an expectation"
    );
    for (name, status) in expected {
        let bytes = std::fs::read(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("fuzz/seeds/ingress")
                .join(name),
        )
        .expect("a seed");
        let (got, _, body) = harness::ingress_response(&bytes).expect("a valid request");
        assert_eq!(
            got.as_u16(),
            status,
            "{name}: {}",
            String::from_utf8_lossy(&body)
        );
    }
}

#[test]
fn next_seeds_replay() {
    replay("next", harness::next);
}

/// The next seeds: the server's own paths are kept, every attack lands on /apps.
#[test]
fn next_seeds_stay_on_the_server() {
    let kept = [
        (
            "consent",
            "/oauth/consent?request=0123456789abcdef0123456789abcdef",
        ),
        ("apps", "/apps"),
        // Bytes that are not UTF-8 are read as U+FFFD, which is sent percent-encoded.
        ("invalid_utf8", "/%EF%BF%BD%EF%BF%BD/apps"),
    ];
    for (name, bytes) in seeds("next") {
        let expected = kept
            .iter()
            .find(|(seed, _)| name.ends_with(&format!("/{seed}")))
            .map_or("/apps", |(_, location)| location);
        for (what, status, location) in harness::next_answers(&bytes) {
            if status.is_redirection() {
                assert_eq!(location.as_deref(), Some(expected), "{name}: {what}");
            }
        }
    }
}

/// The token seeds reach the grants they were written for (the fixtures in the harness).
#[test]
fn token_seeds_reach_the_grants() {
    let seed = |name: &str| {
        std::fs::read(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("fuzz/seeds/token")
                .join(name),
        )
        .expect("a seed")
    };
    for name in [
        "public_code",
        "basic_code",
        "post_refresh",
        "public_refresh",
    ] {
        let (status, body) = harness::token_response(&seed(name));
        assert_eq!(status, 200, "{name}: {body}");
    }
    for (name, error) in [
        ("header_code_only", "unauthorized_client"),
        ("replay", "invalid_grant"),
        ("expired_approval", "invalid_grant"),
        ("stale_code", "invalid_grant"),
        ("unsupported", "unsupported_grant_type"),
    ] {
        let (status, body) = harness::token_response(&seed(name));
        assert_eq!(
            (status.as_u16(), body["error"].as_str()),
            (400, Some(error)),
            "{name}: {body}"
        );
    }
}

/// The register seeds: the seed walkthrough's body registers, the broken ones are refused.
#[test]
fn register_seeds_register_or_are_refused() {
    let seed = |name: &str| {
        std::fs::read(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("fuzz/seeds/register")
                .join(name),
        )
        .expect("a seed")
    };
    for name in ["seed", "public", "metadata"] {
        let (status, body) = harness::register_response(&seed(name));
        assert_eq!(status, 201, "{name}: {body}");
    }
    for name in ["bad", "form"] {
        let (status, body) = harness::register_response(&seed(name));
        assert_eq!(status, 400, "{name}: {body}");
    }
}

/// fhir target, first minute: a `date` value whose fifth byte starts a multibyte character
/// (here U+FFFD, from an invalid byte) panicked in the date shape check, which sliced the
/// text at byte 4..5 inside the character. It must be refused as a malformed date.
#[test]
fn fhir_date_cut_inside_a_character_is_refused() {
    harness::fhir(b"AllergyIntolerance\ncategory=f\0ood&date=ne2018\xa7");
    for date in [
        "2018\u{fffd}",
        "ne2018\u{e9}1",
        "2018-01\u{e9}01",
        "ge2018-\u{e9}-1",
    ] {
        let pairs = [("date".to_string(), date.to_string())];
        let err = Search::parse("Observation", &pairs).expect_err(date);
        assert_eq!(err.status, 400, "{date}");
        assert!(
            err.diagnostics.contains("is not a date search"),
            "{date}: {}",
            err.diagnostics
        );
    }
    // The same through the server, as a client would send it.
    let (status, body) =
        harness::open_fhir_search("Observation", b"date=2018%C3%A91").expect("a valid request");
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["issue"][0]["code"], "invalid", "{body}");
}
