//! The scope parser's and coverage check's unit tests.

use super::*;

fn resource(text: &str) -> ResourceScope {
    match &Scopes::parse(text).unwrap().items[0] {
        Scope::Resource(r) => (**r).clone(),
        other => panic!("{text} parsed as {other:?}"),
    }
}

#[test]
fn v1_read_grants_read_and_search() {
    let r = resource("patient/*.read");
    assert_eq!(r.context, Context::Patient);
    assert_eq!(r.resource_type, None);
    assert!(r.permissions.read && r.permissions.search && !r.permissions.create);
}

#[test]
fn v2_letters_in_order_only() {
    let r = resource("patient/Observation.rs");
    assert_eq!(r.resource_type.as_deref(), Some("Observation"));
    assert!(r.permissions.read && r.permissions.search && !r.permissions.update);
    for bad in [
        "patient/Observation.sr",
        "patient/Observation.rr",
        "patient/Observation.x",
        "patient/Observation.",
        "patient/observation.read",
        "patient/Observation",
    ] {
        assert!(
            matches!(Scopes::parse(bad), Err(ScopeError::Malformed(_))),
            "{bad}"
        );
    }
}

#[test]
fn v2_filters_are_kept() {
    let r = resource("patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory");
    assert_eq!(
        r.filter,
        vec![(
            "category".to_string(),
            "http://terminology.hl7.org/CodeSystem/observation-category|laboratory".to_string()
        )]
    );
    assert!(Scopes::parse("patient/Observation.rs?").is_err());
}

#[test]
fn other_scopes_pass_through_and_bad_characters_fail() {
    let s = Scopes::parse("launch/patient  offline_access openid offline_access").unwrap();
    assert_eq!(s.to_string(), "launch/patient offline_access openid");
    assert!(s.has("offline_access"));
    assert!(matches!(
        Scopes::parse("a\"b"),
        Err(ScopeError::BadCharacter(_))
    ));
    assert!(matches!(
        Scopes::parse("caf\u{e9}"),
        Err(ScopeError::BadCharacter(_))
    ));
}

#[test]
fn restricting_types_spells_out_wildcards() {
    let all = ["Patient", "Observation", "Condition"];
    let s =
        Scopes::parse("launch/patient patient/*.read patient/Condition.rs offline_access").unwrap();
    assert_eq!(
        s.restrict_types(&["Patient", "Observation"], &all)
            .to_string(),
        "launch/patient patient/Patient.read patient/Observation.read offline_access"
    );
    assert_eq!(s.restrict_types(&all, &all).to_string(), s.to_string());
    let v2 = Scopes::parse("patient/*.rs?category=laboratory").unwrap();
    assert_eq!(
        v2.restrict_types(&["Observation"], &all).to_string(),
        "patient/Observation.rs?category=laboratory"
    );
}

#[test]
fn coverage_is_semantic() {
    let have = Scopes::parse("launch/patient patient/*.read offline_access").unwrap();
    let narrower =
        Scopes::parse("patient/Observation.rs patient/Patient.read launch/patient").unwrap();
    assert!(have.uncovered(&narrower).is_empty());
    let wider = Scopes::parse("patient/*.write user/*.read openid").unwrap();
    assert_eq!(
        have.uncovered(&wider),
        vec!["patient/*.write", "user/*.read", "openid"]
    );
    let filtered = Scopes::parse("patient/Observation.rs?category=laboratory").unwrap();
    assert!(have.uncovered(&filtered).is_empty());
    assert_eq!(
        filtered.uncovered(&Scopes::parse("patient/Observation.rs").unwrap()),
        vec!["patient/Observation.rs"]
    );
}

fn many(count: usize) -> String {
    (0..count)
        .map(|i| format!("s{i}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn more_tokens_than_allowed_are_refused_by_count() {
    assert_eq!(
        Scopes::parse_request(&many(MAX_SCOPE_TOKENS))
            .unwrap()
            .items
            .len(),
        100
    );
    assert_eq!(
        Scopes::parse_request(&many(MAX_SCOPE_TOKENS + 1)),
        Err(ScopeError::TooMany {
            count: 101,
            limit: 100
        })
    );
    // The count is reported even when the string is far over the byte limit too.
    let err = Scopes::parse_request(&many(16_000)).unwrap_err();
    assert_eq!(
        err,
        ScopeError::TooMany {
            count: 16_000,
            limit: 100
        }
    );
    assert!(err.to_string().contains("at most 100"), "{err}");
}

#[test]
fn duplicates_count_once_and_keep_the_first_position() {
    let text = format!("{} openid", "launch/patient patient/*.read ".repeat(100));
    let s = Scopes::parse_request(&format!("b a {text} a b")).unwrap();
    assert_eq!(s.to_string(), "b a launch/patient patient/*.read openid");
}

#[test]
fn long_strings_and_long_tokens_are_refused() {
    let long_tokens: Vec<String> = (0..99).map(|i| format!("t{i:0>48}")).collect();
    let text = long_tokens.join(" ");
    assert!(text.len() > MAX_SCOPE_BYTES);
    let err = Scopes::parse_request(&text).unwrap_err();
    assert!(
        matches!(err, ScopeError::TooLong { limit: 4096, .. }),
        "{err}"
    );
    let token = format!("patient/Observation.rs?category={}", "x".repeat(300));
    let err = Scopes::parse_request(&format!("openid {token}")).unwrap_err();
    assert!(
        matches!(err, ScopeError::TokenTooLong { limit: 256, len, .. } if len == token.len()),
        "{err}"
    );
    assert!(err.to_string().len() < 200, "{err}");
}

#[test]
fn stored_scopes_are_not_held_to_the_request_limits() {
    let s = Scopes::parse(&many(500)).unwrap();
    assert_eq!(s.items.len(), 500);
    // Spelling 60 wildcard scopes out per type goes past 100 tokens and still works.
    let all = ["Patient", "Observation", "Condition"];
    let wildcards: Vec<String> = (0..60)
        .map(|i| format!("patient/*.rs?category=c{i}"))
        .collect();
    let s = Scopes::parse_request(&wildcards.join(" ")).unwrap();
    let narrowed = s.restrict_types(&["Patient", "Observation"], &all);
    assert_eq!(narrowed.items.len(), 120);
    assert!(s.uncovered(&narrowed).is_empty());
}

#[test]
fn coverage_of_many_scopes_keeps_the_requested_order() {
    let have: Vec<String> = (0..50)
        .map(|i| {
            format!(
                "patient/T{}.rs",
                char::from(b'A' + (i % 26) as u8)
                    .to_string()
                    .repeat(i / 26 + 1)
            )
        })
        .chain([
            "patient/Observation.rs?category=laboratory".to_string(),
            "openid".to_string(),
        ])
        .collect();
    let have = Scopes::parse(&have.join(" ")).unwrap();
    let wanted = Scopes::parse(
        "patient/TZ.r patient/Observation.rs fhirUser patient/TA.s openid patient/Observation.rs?category=laboratory patient/TBB.rs user/TA.rs",
    )
    .unwrap();
    assert_eq!(
        have.uncovered(&wanted),
        vec!["patient/Observation.rs", "fhirUser", "user/TA.rs"]
    );
}

/// The rule the index in `uncovered` implements, one pair at a time.
fn covers(have: &ResourceScope, wanted: &ResourceScope) -> bool {
    have.context == wanted.context
        && (have.resource_type.is_none() || have.resource_type == wanted.resource_type)
        && have.permissions.contains(&wanted.permissions)
        && (have.filter.is_empty() || have.filter == wanted.filter)
}

#[test]
fn the_index_decides_as_the_pairwise_rule_does() {
    let pool = [
        "patient/*.read",
        "patient/*.rs",
        "patient/*.s",
        "patient/*.rs?category=laboratory",
        "patient/Observation.r",
        "patient/Observation.rs",
        "patient/Observation.cruds",
        "patient/Observation.rs?category=laboratory",
        "patient/Observation.s?category=laboratory",
        "patient/Observation.rs?category=vital-signs",
        "patient/Observation.rs?category=laboratory&code=x",
        "patient/Condition.rs",
        "user/*.read",
        "user/Observation.rs?category=laboratory",
        "user/Patient.r",
        "openid",
    ];
    // Every subset of a few of them as what is held, against every single one wanted.
    for mask in 0u32..(1 << 9) {
        let held: Vec<&str> = (0..9)
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| pool[(i * 7 + mask as usize) % pool.len()])
            .collect();
        let have = Scopes::parse(&held.join(" ")).unwrap();
        for wanted_text in pool {
            let wanted = Scopes::parse(wanted_text).unwrap();
            let expected = match &wanted.items[0] {
                Scope::Other(t) => have.has(t),
                Scope::Resource(w) => have.resource_scopes().any(|h| covers(h, w)),
            };
            assert_eq!(
                have.uncovered(&wanted).is_empty(),
                expected,
                "{held:?} covering {wanted_text}"
            );
        }
    }
}
