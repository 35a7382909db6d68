//! What a newcomer trips over in the helper language: a mistyped command stops before Rust,
//! a mistyped variable names the bound one, and `token` picks the user's own patient.

use crate::session_support::*;
use smartnb::session::{Output, Session};

/// A field of what `introspect` answers for `$access_token`.
fn introspected(s: &mut Session, field: &str) -> String {
    ok(s, "introspect");
    let response = s.vars().get("response").expect("introspect binds response");
    response[field].as_str().unwrap_or_default().to_string()
}

#[test]
fn a_mistyped_command_is_named_and_never_reaches_rust() {
    let mut s = session();
    for (cell, near) in [
        ("fecth Patient/x", Some("`fetch`")),
        ("fecth Patient?family=Adams", Some("`fetch`")),
        ("tokn --user joseph-ross", Some("`token`")),
        ("frobnicate Patient", None),
    ] {
        let (_, out) = run(&mut s, cell);
        // One output: the error, with no compiler text and no evaluator start before it.
        assert_eq!(out.len(), 1, "`{cell}`: {out:#?}");
        let Output::Error(error) = &out[0] else {
            panic!("`{cell}`: {out:#?}")
        };
        assert_eq!(error.kind, "UnknownCommand", "`{cell}`: {error}");
        let word = cell.split_whitespace().next().unwrap();
        assert!(error.message.contains(word), "{error}");
        let hint = error.hint.clone().unwrap_or_default();
        match near {
            Some(near) => assert!(hint.contains(near), "`{cell}`: {hint}"),
            None => assert!(hint.contains("`help` lists every command"), "{hint}"),
        }
    }
    assert_eq!(s.embedded_url(), None, "nothing ran");
}

#[test]
fn a_lost_rust_value_gets_no_helper_suggestion() {
    let mut s = session();
    for cell in ["s", "st", "sets", "vals", "x + 1", "let y = s + 1;"] {
        let error = fails(&mut s, cell);
        assert_ne!(error.kind, "UnknownCommand", "`{cell}` is Rust");
        let hint = error.hint.unwrap_or_default();
        assert!(!hint.contains("did you mean"), "`{cell}`: {hint}");
    }
}

#[test]
fn a_mistyped_variable_suggests_the_bound_one() {
    let mut s = session();
    ok(&mut s, "set access_token abc");
    let error = fails(&mut s, "fetch Patient/$acess_token");
    assert_eq!(error.kind, "UndefinedVariable");
    assert_eq!(error.message, "$acess_token is not set");
    let hint = error.hint.unwrap_or_default();
    assert!(hint.contains("did you mean `$access_token`?"), "{hint}");
    assert!(!hint.contains("set acess_token"), "{hint}");
}

#[test]
fn token_for_a_user_defaults_to_their_own_patient() {
    let mut s = session();
    register(&mut s);
    let out = ok(&mut s, "token --user joseph-ross");
    assert_eq!(statuses(&out), [200]);
    assert_eq!(introspected(&mut s, "patient"), "smart-1081332");
    assert_eq!(introspected(&mut s, "username"), "joseph-ross");

    ok(&mut s, "token");
    assert_eq!(introspected(&mut s, "patient"), SEED_PATIENT);
    ok(&mut s, "token --user daniel-adams --patient smart-1032702");
    assert_eq!(introspected(&mut s, "patient"), "smart-1032702");

    // A practitioner has no record of their own: say so, and which patients they treat.
    let error = fails(&mut s, "token --user dr-carter");
    assert_eq!(error.kind, "MissingArgument");
    assert!(error.message.contains("--patient"), "{error}");
    assert!(error.hint.unwrap().contains("smart-1081332"));
}
