//! `--fhir-upstream`: what of a client's query may reach the upstream, and what a page
//! through the proxy may tell. Each attack is refused before the upstream is asked (the
//! fake records every request), with the bundled store's own answer.

use serde_json::{json, Value};

use crate::common::*;
use crate::upstream_support::*;

/// Queries the bundled store refuses: reverse chains, chains, modifiers, result parameters,
/// `_type` on a type, unknown parameters, bad values, and the same with encoded names.
const REFUSED: &[&str] = &[
    "/Patient?_has:Condition:patient:code=38341003",
    "/Patient?_h%61s:Condition:patient:code=38341003",
    "/Observation?code=8867-4&_has:Condition:patient:code=x",
    "/Observation?subject.name=Ross",
    "/Observation?patient._id=smart-1081332",
    "/Observation?subject:Patient=smart-1081332",
    "/Observation?subject%3APatient=smart-1081332",
    "/Observation?patient:missing=true",
    "/Observation?code:text=glucose",
    "/Observation?_summary=count",
    "/Observation?%5Fsummary=count",
    "/Observation?_elements=id",
    "/Observation?_include=Observation:patient",
    "/Patient?_revinclude=Observation:patient",
    "/Observation?_contained=true",
    "/Observation?_type=Condition",
    "/Observation?_total=accurate",
    "/Observation?_sort=-date",
    "/Patient?name=Ross",
    "/Patient?patient=smart-1081332",
    "/Observation?_count=ten",
    "/Observation?date=yesterday",
    "/Encounter?encounter=smart-1288992-enc-2016-03",
    "/Immunization?encounter=smart-1288992-enc-2016-03",
    "/Observation?encounter=",
    "/Observation?encounter:missing=true",
    "/Observation?_format=xml",
    "/Patient/smart-1288992/$everything?_type=Condition",
    "/Patient/smart-1288992/$everything?_since=2020-01-01",
    "/Patient/smart-1288992/$everything?_count=2&start=2018",
];

#[tokio::test]
async fn what_the_bundled_store_refuses_never_reaches_the_upstream_and_gets_its_answer() {
    let fake = fake(|_, _| (200, empty_bundle())).await;
    let proxy = proxy_for(&fake.base).await;
    let bundled = start().await;
    let (token, own_token) = (proxy.seed_token().await, bundled.seed_token().await);
    for path in REFUSED {
        let reply = proxy.get_bearer(&proxy.fhir(path), &token).await;
        let status = if path.contains("_format=xml") {
            406
        } else {
            400
        };
        assert_outcome(&reply, status);
        let own = bundled.get_bearer(&bundled.fhir(path), &own_token).await;
        assert_eq!(reply.status, own.status, "{path}");
        assert_eq!(
            reply.json(),
            own.json(),
            "{path}: not the bundled store's answer"
        );
    }
    for (path, kind) in [(REFUSED[0], "reverse chaining"), (REFUSED[3], "chained")] {
        let reply = proxy.get_bearer(&proxy.fhir(path), &token).await;
        assert!(reply.text.contains(kind), "{path}: {}", reply.text);
    }
    assert!(
        fake.seen().is_empty(),
        "refused queries reached the upstream: {:?}",
        fake.seen()
    );
}

#[tokio::test]
async fn the_compartment_is_the_proxys_whatever_the_client_spells() {
    let fake = fake(|_, _| (200, empty_bundle())).await;
    let proxy = proxy_for(&fake.base).await;
    let token = proxy.seed_token().await;
    // Every way of naming someone else: answered as an empty search, the upstream unasked.
    for path in [
        "/Observation?patient=smart-1081332",
        "/Observation?subject=smart-1081332",
        "/Observation?subject=Patient/smart-1081332",
        "/Observation?pat%69ent=smart-1081332",
        "/Observation?subj%65ct=Patient%2Fsmart-1081332",
        "/Observation?patient=smart-1081332&patient=smart-1081332",
        "/Observation?patient=smart-1288992&subject=smart-1081332",
        "/Observation?subject=smart-1081332&pat%69ent=smart-1288992",
        "/Observation?subject=Group/smart-1288992",
        "/Observation?subject=http://elsewhere.example/fhir/Patient/smart-1288992",
        "/Patient?_id=smart-1081332",
        "/Patient?_i%64=smart-1081332",
        "/Patient?_id=smart-1288992&_id=smart-1081332",
    ] {
        let reply = proxy.get_bearer(&proxy.fhir(path), &token).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text);
        let bundle = reply.json();
        assert_eq!(bundle["total"], 0, "{path}");
        assert!(bundle.get("entry").is_none(), "{path}");
        assert!(fake.seen().is_empty(), "{path} reached the upstream");
    }
    let client = proxy.register("user/*.read").await;
    let amy = proxy
        .mint_with(
            &json!({"client_id": client["client_id"], "username": DANIEL,
            "patient_id": AMY_PATIENT, "scope": "user/*.read"}),
        )
        .await
        .access;
    // Naming one's own patients, however spelled: one compartment parameter, the proxy's.
    for (token, path, want) in [
        (
            &token,
            "/Observation?patient=smart-1081332,smart-1288992",
            ("patient", DANIEL_PATIENT),
        ),
        (
            &token,
            "/Observation?subject=Patient/smart-1288992",
            ("patient", DANIEL_PATIENT),
        ),
        (
            &token,
            "/Observation?pat%69ent=smart-1288992&subject=smart-1288992",
            ("patient", DANIEL_PATIENT),
        ),
        (
            &token,
            "/Patient?_id=smart-1081332,smart-1288992&_i%64=smart-1288992",
            ("_id", DANIEL_PATIENT),
        ),
        (
            &amy,
            "/Condition?subject=Patient/smart-1032702",
            ("patient", AMY_PATIENT),
        ),
        (
            &amy,
            "/Condition?patient=smart-1081332,smart-1032702",
            ("patient", AMY_PATIENT),
        ),
    ] {
        let reply = proxy.get_bearer(&proxy.fhir(path), token).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text);
        let seen = fake.seen().pop().expect("the upstream was asked");
        assert_eq!(seen.query, pairs(&[want]), "{path}");
    }
}

#[tokio::test]
async fn allowed_parameters_reach_the_upstream_once_each_as_validated() {
    let fake = fake(|_, _| (200, empty_bundle())).await;
    let proxy = proxy_for(&fake.base).await;
    let token = proxy.seed_token().await;
    let asks = [
        (
            "/Observation?code=http%3A%2F%2Floinc.org%7C8867-4&category=vital-signs\
             &date=ge2018-01-01&date=le2019&_id=a,b&_count=100000&_count=3&_offset=6&_format=json",
            "/fhir/Observation",
            pairs(&[
                ("code", "http://loinc.org|8867-4"),
                ("category", "vital-signs"),
                ("date", "ge2018-01-01"),
                ("date", "le2019"),
                ("_id", "a,b"),
                ("patient", DANIEL_PATIENT),
                ("_count", "3"),
                ("_offset", "6"),
            ]),
        ),
        (
            "/Condition?encounter=Encounter%2Fsmart-1288992-enc-2016-03,e2&encounter=e2",
            "/fhir/Condition",
            pairs(&[
                ("encounter", "Encounter/smart-1288992-enc-2016-03,e2"),
                ("encounter", "e2"),
                ("patient", DANIEL_PATIENT),
            ]),
        ),
        (
            "/Patient/smart-1288992/$everything?_count=900&_offset=7&_format=json",
            "/fhir/Patient/smart-1288992/$everything",
            pairs(&[("_count", "500"), ("_offset", "7")]),
        ),
    ];
    for (ask, path, query) in asks {
        let reply = proxy.get_bearer(&proxy.fhir(ask), &token).await;
        assert_eq!(reply.status, 200, "{ask}: {}", reply.text);
        let seen = fake.seen().pop().expect("the upstream was asked");
        assert_eq!((seen.path.as_str(), &seen.query), (path, &query), "{ask}");
    }
}

#[tokio::test]
async fn the_bare_base_takes_only_the_upstreams_paging_links() {
    let fake = fake(|_, _| (200, empty_bundle())).await;
    let proxy = proxy_for(&fake.base).await;
    let token = proxy.seed_token().await;
    for query in [
        "?_type=Condition&code=38341003",
        "?_type=Condition",
        "?%5Ftype=Condition",
        "?code=38341003",
        "?patient=smart-1081332",
        "?_getpages=abc&_type=Condition",
        "?_getpages=abc&patient=smart-1081332",
        "?_getpages=abc&_getpages=def",
        "?_getpages=abc&_bundletype=history",
        "?_getpages=abc&_getpagesoffset=-5",
        "?_getpages=..%2Fsecret",
        "?_getpagesoffset=10",
    ] {
        let reply = proxy.get_bearer(&proxy.fhir(query), &token).await;
        assert_eq!(assert_outcome(&reply, 400), "invalid", "{query}");
        assert!(
            reply
                .text
                .contains("bare FHIR base answers only the upstream's paging links"),
            "{query}: {}",
            reply.text
        );
    }
    assert!(fake.seen().is_empty(), "{:?}", fake.seen());
    let link = "?_getpages=ab-12&_getpagesoffset=20&_count=20&_bundletype=searchset&_pretty=true&_format=json";
    let reply = proxy.get_bearer(&proxy.fhir(link), &token).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let seen = fake.seen().pop().expect("the page was asked for");
    assert_eq!(seen.path, "/fhir");
    assert_eq!(
        seen.query,
        pairs(&[
            ("_getpages", "ab-12"),
            ("_getpagesoffset", "20"),
            ("_count", "20"),
            ("_bundletype", "searchset"),
            ("_pretty", "true"),
        ])
    );
}

/// An Observation in `patient`'s compartment, a laboratory result.
fn lab(id: &str, patient: &str) -> Value {
    json!({"resourceType": "Observation", "id": id,
        "subject": {"reference": format!("Patient/{patient}")},
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}]})
}

/// A fake upstream whose pages say what the test asks for in the query: `mixed` adds
/// Joseph's result to Daniel's, `josephs` is only Joseph's, `_count=0` no entries, and
/// `$everything` a Condition as well. Every page claims 999 and links every way.
async fn telling_upstream() -> Fake {
    fake(|base, uri| {
        let own = lab("own-lab", DANIEL_PATIENT);
        let josephs = lab("josephs-lab", JOSEPH_PATIENT);
        let entries = if uri.contains("_count=0") || uri.contains("_getpagesoffset=99") {
            vec![]
        } else if uri.contains("josephs") {
            vec![josephs]
        } else if uri.contains("mixed") {
            vec![own, josephs]
        } else if uri.contains("$everything") {
            vec![
                own,
                json!({"resourceType": "Condition", "id": "own-condition",
                    "subject": {"reference": format!("Patient/{DANIEL_PATIENT}")}}),
            ]
        } else {
            vec![own]
        };
        let here = format!("{base}{}", &uri["/fhir".len()..]);
        let page = |n: u32| format!("{base}?_getpages=p1&_getpagesoffset={n}");
        let bundle = json!({
            "resourceType": "Bundle", "type": "searchset", "total": 999,
            "meta": {"lastUpdated": "2026-01-01T00:00:00Z", "tag": [{"code": "x"}]},
            "extension": [{"url": "http://example.org/count-of-everyone", "valueInteger": 999}],
            "link": [
                {"relation": "self", "url": here},
                {"relation": "next", "url": page(2)},
                {"relation": "previous", "url": page(0)},
                {"relation": "first", "url": page(0)},
                {"relation": "last", "url": page(998)},
            ],
            "entry": entries.into_iter().map(|r| json!({"resource": r, "search": {"mode": "match"}})).collect::<Vec<_>>(),
        });
        (200, bundle.to_string())
    })
    .await
}

fn relations(bundle: &Value) -> Vec<String> {
    bundle["link"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| l["relation"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_page_that_lost_entries_or_cannot_be_checked_has_no_total_and_no_paging_links() {
    let fake = telling_upstream().await;
    let proxy = proxy_for(&fake.base).await;
    let token = proxy.seed_token().await;
    let narrow = proxy
        .daniel_token(SEED_SCOPE, "launch/patient patient/Observation.read")
        .await;
    let two_filters = proxy
        .daniel_token(
            "launch/patient patient/*.rs",
            "launch/patient patient/Observation.rs?category=laboratory patient/Observation.rs?category=vital-signs",
        )
        .await;
    let all = ["self", "next", "previous", "first", "last"].map(String::from);
    // (token, path, total kept, links kept)
    let cases: [(&String, &str, bool, &[String]); 9] = [
        // Asked with the compartment, every entry passed: the control.
        (&token, "/Observation?code=own", true, &all),
        (&token, "/Patient/smart-1288992/$everything", true, &all),
        // Joseph's result removed.
        (&token, "/Observation?code=mixed", false, &all[..1]),
        // Nothing shown: a count nobody could check.
        (&token, "/Observation?code=own&_count=0", false, &all),
        // The filters differ, so the upstream was asked the compartment only.
        (&two_filters, "/Observation?code=own", false, &all),
        // The Condition is outside the token's scopes.
        (
            &narrow,
            "/Patient/smart-1288992/$everything",
            false,
            &all[..1],
        ),
        // A page nobody verified: checked entry by entry, never a total.
        (&token, "?_getpages=own", false, &all),
        (&token, "?_getpages=mixed", false, &all[..1]),
        (
            &token,
            "?_getpages=own&_getpagesoffset=99",
            false,
            &all[..1],
        ),
    ];
    for (token, path, total, links) in cases {
        let reply = proxy.get_bearer(&proxy.fhir(path), token).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text);
        let bundle = reply.json();
        assert_eq!(bundle.get("total").is_some(), total, "{path}: {bundle}");
        assert_eq!(relations(&bundle), links, "{path}");
        for link in bundle["link"].as_array().unwrap() {
            assert!(link["url"].as_str().unwrap().starts_with(&proxy.fhir("")));
        }
        assert!(!reply.text.contains("josephs-lab"), "{path}");
        assert!(
            bundle.get("extension").is_none() && bundle["meta"].get("tag").is_none(),
            "{path}: the upstream's own Bundle elements pass: {bundle}"
        );
    }
}

#[tokio::test]
async fn a_paging_link_of_someone_elses_search_shows_nothing_of_it() {
    let fake = telling_upstream().await;
    let proxy = proxy_for(&fake.base).await;
    let token = proxy.seed_token().await;
    let mut answers = Vec::new();
    for path in [
        "?_getpages=josephs",
        "?_getpages=josephs&_getpagesoffset=2",
        "?_getpages=josephs&_getpagesoffset=99",
    ] {
        let reply = proxy.get_bearer(&proxy.fhir(path), &token).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text);
        let mut bundle = reply.json();
        assert!(bundle.get("entry").is_none(), "{path}: {bundle}");
        assert!(bundle.get("total").is_none(), "{path}: {bundle}");
        assert_eq!(relations(&bundle), ["self"], "{path}");
        // Only the self link (the page asked for) tells the pages apart.
        bundle["link"] = Value::Null;
        bundle["id"] = Value::Null;
        answers.push(bundle);
    }
    assert!(
        answers.windows(2).all(|w| w[0] == w[1]),
        "a page in range looks unlike one past the end: {answers:?}"
    );
}
