//! `--fhir-upstream`: a proxy smartnb forwards /api/fhir to another smartnb's open FHIR
//! endpoint (or to a fake FHIR server that misbehaves on purpose) and must enforce tokens,
//! scopes and compartments exactly as the bundled store does.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};
use smartnb::server::{self, Config, StartError};

use crate::common::*;
use crate::upstream_support::*;

#[tokio::test]
async fn reads_of_the_tokens_own_patient_come_from_the_upstream() {
    let (upstream, proxy) = pair().await;
    let token = proxy.seed_token().await;
    for path in [
        "/Patient/smart-1288992".to_string(),
        format!(
            "/Observation/{}",
            some_id_of(&upstream, "Observation", DANIEL_PATIENT).await
        ),
        format!(
            "/Condition/{}",
            some_id_of(&upstream, "Condition", DANIEL_PATIENT).await
        ),
    ] {
        let reply = proxy.get_bearer(&proxy.fhir(&path), &token).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text);
        assert_fhir_json(&reply);
        assert_eq!(
            reply.json(),
            upstream.get(&upstream.open_fhir(&path)).await.json(),
            "{path}"
        );
    }
    let reply = proxy.get(&proxy.fhir("/Patient/smart-1288992")).await;
    assert_eq!(assert_outcome(&reply, 401), "login");
    assert!(reply
        .header("www-authenticate")
        .unwrap()
        .starts_with("Bearer"));
}

#[tokio::test]
async fn other_patients_are_404_and_types_outside_the_scopes_403_as_in_bundled_mode() {
    let (upstream, proxy) = pair().await;
    let token = proxy.seed_token().await;
    assert_hidden(&proxy, "/Patient/smart-1081332", &token).await;
    assert_hidden(&proxy, "/Patient/smart-1032702", &token).await;
    let josephs = some_id_of(&upstream, "Observation", JOSEPH_PATIENT).await;
    assert_hidden(&proxy, &format!("/Observation/{josephs}"), &token).await;
    let amys = some_id_of(&upstream, "Condition", AMY_PATIENT).await;
    assert_hidden(&proxy, &format!("/Condition/{amys}"), &token).await;
    assert_hidden(&proxy, "/Patient/smart-1081332/$everything", &token).await;

    let hidden = proxy
        .get_bearer(&proxy.fhir("/Patient/smart-1081332"), &token)
        .await;
    let missing = proxy
        .get_bearer(&proxy.fhir("/Patient/smart-1081333"), &token)
        .await;
    assert_eq!(
        hidden.text.replace("smart-1081332", "ID"),
        missing.text.replace("smart-1081333", "ID")
    );

    let narrow = proxy
        .daniel_token(SEED_SCOPE, "launch/patient patient/Observation.read")
        .await;
    for path in ["/Condition?code=x", "/Patient/smart-1288992"] {
        let reply = proxy.get_bearer(&proxy.fhir(path), &narrow).await;
        assert_eq!(assert_outcome(&reply, 403), "forbidden", "{path}");
    }
    let own = proxy.get_bearer(&proxy.fhir("/Observation"), &narrow).await;
    assert_eq!(own.status, 200, "{}", own.text);
}

#[tokio::test]
async fn searches_carry_the_compartment_and_the_scope_filter_and_never_the_token() {
    let fake = fake(|_, _| (200, empty_bundle())).await;
    let proxy = proxy_for(&fake.base).await;
    let token = proxy.seed_token().await;
    let v2 = proxy
        .daniel_token(
            "launch/patient patient/*.rs",
            "launch/patient patient/Observation.rs?category=laboratory",
        )
        .await;
    let client = proxy.register("user/*.read").await;
    let amy = proxy
        .mint_with(
            &json!({"client_id": client["client_id"], "username": DANIEL,
            "patient_id": AMY_PATIENT, "scope": "user/*.read"}),
        )
        .await
        .access;
    let asks = [
        (
            &token,
            "/Observation?code=8867-4&_format=json",
            "/fhir/Observation",
            pairs(&[("code", "8867-4"), ("patient", DANIEL_PATIENT)]),
        ),
        (
            &token,
            "/Observation?patient=smart-1081332,smart-1288992",
            "/fhir/Observation",
            pairs(&[("patient", DANIEL_PATIENT)]),
        ),
        (
            &token,
            "/Patient?_id=smart-1081332,smart-1288992",
            "/fhir/Patient",
            pairs(&[("_id", DANIEL_PATIENT)]),
        ),
        (
            &v2,
            "/Observation",
            "/fhir/Observation",
            pairs(&[("patient", DANIEL_PATIENT), ("category", "laboratory")]),
        ),
        (
            &amy,
            "/Condition",
            "/fhir/Condition",
            pairs(&[("patient", "smart-1032702,smart-1288992")]),
        ),
    ];
    for (token, ask, path, query) in &asks {
        let reply = proxy.get_bearer(&proxy.fhir(ask), token).await;
        assert_eq!(reply.status, 200, "{ask}: {}", reply.text);
        let seen = fake.seen().pop().expect("the upstream was asked");
        assert_eq!(&seen.path, path, "{ask}");
        assert_eq!(&seen.query, query, "{ask}");
        assert_eq!(
            seen.authorization, None,
            "{ask}: the bearer token went upstream"
        );
        assert_eq!(seen.accept.as_deref(), Some("application/fhir+json"));
    }
    let asked = fake.seen().len();
    for path in ["/Observation", "/Patient/smart-1288992"] {
        let reply = proxy.get(&proxy.fhir(path)).await;
        assert_eq!(assert_outcome(&reply, 401), "login");
        let reply = proxy.get_bearer(&proxy.fhir(path), "not-a-token").await;
        assert_eq!(assert_outcome(&reply, 401), "login");
    }
    let reply = proxy.get_bearer(&proxy.fhir("/Condition"), &v2).await;
    assert_eq!(assert_outcome(&reply, 403), "forbidden");
    let reply = proxy
        .get_bearer(&proxy.fhir("/Patient/smart-1081332/$everything"), &token)
        .await;
    assert_eq!(assert_outcome(&reply, 404), "not-found");
    assert_eq!(
        fake.seen().len(),
        asked,
        "refused requests never reach the upstream"
    );
}

#[tokio::test]
async fn a_search_through_a_real_upstream_finds_exactly_the_compartment() {
    let (upstream, proxy) = pair().await;
    let token = proxy.seed_token().await;
    for resource_type in ["Observation", "Condition", "Patient", "Encounter"] {
        let reply = proxy
            .get_bearer(&proxy.fhir(&format!("/{resource_type}?_count=500")), &token)
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let bundle = reply.json();
        let found = entry_resources(&bundle);
        assert_only_patients(&found, &[DANIEL_PATIENT], resource_type);
        let param = if resource_type == "Patient" {
            "_id"
        } else {
            "patient"
        };
        let expected = open_search(
            &upstream,
            &format!("/{resource_type}?{param}={DANIEL_PATIENT}"),
        )
        .await;
        assert!(!expected.is_empty());
        assert_eq!(keys(&found), keys(&expected), "{resource_type}");
        // The upstream counted only the compartment: the search was confined, not filtered.
        assert_eq!(bundle["total"], expected.len(), "{resource_type}");
    }
    let josephs = some_id_of(&upstream, "Condition", JOSEPH_PATIENT).await;
    for query in [
        "/Observation?patient=smart-1081332".to_string(),
        "/Observation?subject=Patient/smart-1081332".to_string(),
        "/Observation?patient=smart-1032702".to_string(),
        format!("/Condition?_id={josephs}"),
        "/Patient?_id=smart-1081332".to_string(),
        "/Patient?_id=smart-1032702,smart-1081332".to_string(),
    ] {
        let reply = proxy.get_bearer(&proxy.fhir(&query), &token).await;
        assert_eq!(reply.status, 200, "{query}: {}", reply.text);
        assert!(
            entry_resources(&reply.json()).is_empty(),
            "{query} found something"
        );
        for marker in OTHER_PATIENT_MARKERS {
            assert!(!reply.text.contains(marker), "{query} leaks {marker}");
        }
    }
    let v2 = proxy
        .daniel_token(
            "launch/patient patient/*.rs",
            "launch/patient patient/Observation.rs?category=laboratory",
        )
        .await;
    let (labs, _) = proxy
        .search_all(&proxy.fhir("/Observation"), Some(&v2))
        .await;
    let expected = open_search(
        &upstream,
        &format!("/Observation?patient={DANIEL_PATIENT}&category=laboratory"),
    )
    .await;
    assert!(!labs.is_empty());
    assert_eq!(keys(&labs), keys(&expected));
}

#[tokio::test]
async fn a_careless_upstream_that_ignores_the_compartment_leaks_nothing() {
    // Everyone's Observations, whatever is asked, plus things no token may see.
    let real = start().await;
    let all = real
        .get(&real.open_fhir("/Observation?_count=500"))
        .await
        .text;
    let everyones = all.clone();
    let real_base = real.open_fhir("");
    let fake = fake(move |base, uri| {
        let mut bundle: Value = serde_json::from_str(&everyones.replace(&real_base, base)).unwrap();
        bundle["total"] = json!(999);
        let entries = bundle["entry"].as_array_mut().unwrap();
        entries.push(json!({"resource": {"resourceType": "Practitioner", "id": "doc"}}));
        entries.push(
            json!({"resource": {"resourceType": "Observation", "id": "elsewhere",
            "subject": {"reference": "http://elsewhere.example/fhir/Patient/smart-1288992"}}}),
        );
        entries.push(json!({"resource": {"resourceType": "Observation", "id": "nobody"}}));
        entries.push(json!({"fullUrl": "urn:uuid:1", "search": {"mode": "outcome"}}));
        bundle["link"] = json!([
            {"relation": "self", "url": format!("{base}{}", &uri[5..])},
            {"relation": "next", "url": "http://elsewhere.example/fhir/Observation?page=2"},
        ]);
        if let Some(id) = uri.strip_prefix("/fhir/Observation/") {
            // A read answers with whatever Observation it likes best.
            let hit = bundle["entry"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["resource"].clone())
                .find(|r| r["id"] == id)
                .unwrap_or(json!({"resourceType": "Observation", "id": "other"}));
            return (200, hit.to_string());
        }
        (200, bundle.to_string())
    })
    .await;
    let proxy = proxy_for(&fake.base).await;
    let token = proxy.seed_token().await;

    let reply = proxy
        .get_bearer(&proxy.fhir("/Observation?_count=500"), &token)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let bundle = reply.json();
    let found = entry_resources(&bundle);
    assert_only_patients(&found, &[DANIEL_PATIENT], "careless upstream");
    let expected = open_search(
        &real,
        &format!("/Observation?patient={DANIEL_PATIENT}&_count=500"),
    )
    .await;
    assert_eq!(keys(&found), keys(&expected));
    assert!(
        bundle.get("total").is_none(),
        "a total that counted others: {}",
        bundle["total"]
    );
    for marker in
        OTHER_PATIENT_MARKERS
            .iter()
            .chain(&["Practitioner", "elsewhere", "nobody", "urn:uuid"])
    {
        assert!(!reply.text.contains(marker), "leaks {marker}");
    }
    let links = bundle["link"].as_array().unwrap();
    assert_eq!(
        links.len(),
        1,
        "the off-site next link is dropped: {links:?}"
    );
    assert!(links[0]["url"]
        .as_str()
        .unwrap()
        .starts_with(&proxy.fhir("/Observation?")));

    let josephs = some_id_of(&real, "Observation", JOSEPH_PATIENT).await;
    assert_hidden(&proxy, &format!("/Observation/{josephs}"), &token).await;
    let own = some_id_of(&real, "Observation", DANIEL_PATIENT).await;
    let reply = proxy
        .get_bearer(&proxy.fhir(&format!("/Observation/{own}")), &token)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let reply = proxy
        .get_bearer(&proxy.fhir("/Observation/wanted"), &token)
        .await;
    assert_eq!(
        assert_outcome(&reply, 502),
        "exception",
        "a different resource is not an answer"
    );
}

#[tokio::test]
async fn links_and_full_urls_point_at_the_proxy_and_paging_works_through_it() {
    let (upstream, proxy) = pair().await;
    let token = proxy.seed_token().await;
    let reply = proxy
        .get_bearer(&proxy.fhir("/Observation?_count=2"), &token)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let upstream_base = upstream.open_fhir("");
    assert!(
        !reply.text.contains(&upstream_base),
        "the upstream's address shows: {}",
        reply.text
    );
    let bundle = reply.json();
    for entry in bundle["entry"].as_array().unwrap() {
        let resource = &entry["resource"];
        assert_eq!(
            entry["fullUrl"],
            proxy.fhir(&format!(
                "/{}/{}",
                resource["resourceType"].as_str().unwrap(),
                resource["id"].as_str().unwrap()
            ))
        );
        assert_eq!(entry["search"]["mode"], "match");
    }
    let relations: BTreeSet<&str> = bundle["link"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["relation"].as_str().unwrap())
        .collect();
    assert_eq!(relations, BTreeSet::from(["self", "next"]));

    for (start, param) in [
        ("/Observation?_count=2", "patient"),
        ("/Patient/smart-1288992/$everything?_count=7", ""),
    ] {
        let (found, links) = proxy.search_all(&proxy.fhir(start), Some(&token)).await;
        assert!(links.len() > 3, "{start} should page: {links:?}");
        for link in &links {
            assert!(link.starts_with(&proxy.fhir("/")), "{link}");
        }
        assert_only_patients(&found, &[DANIEL_PATIENT], start);
        let expected = if param.is_empty() {
            let (all, _) = upstream
                .search_all(
                    &upstream.open_fhir("/Patient/smart-1288992/$everything"),
                    None,
                )
                .await;
            all
        } else {
            open_search(&upstream, &format!("/Observation?patient={DANIEL_PATIENT}")).await
        };
        assert_eq!(keys(&found), keys(&expected), "{start}");
    }
}

#[tokio::test]
async fn an_upstream_that_is_down_slow_or_broken_is_a_gateway_error() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = format!("http://{}/fhir", closed.local_addr().unwrap());
    drop(closed);
    let proxy = proxy_for(&down).await;
    let token = proxy.seed_token().await;
    for path in [
        "/Patient/smart-1288992",
        "/Observation",
        "/Patient/smart-1288992/$everything",
    ] {
        let reply = proxy.get_bearer(&proxy.fhir(path), &token).await;
        assert_eq!(assert_outcome(&reply, 502), "transient", "{path}");
        assert!(!reply.text.contains(&down), "the upstream's address shows");
    }

    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slow = format!("http://{}/fhir", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let proxy = proxy_for(&slow).await;
    let token = proxy.seed_token().await;
    let started = std::time::Instant::now();
    let reply = proxy.get_bearer(&proxy.fhir("/Observation"), &token).await;
    assert_eq!(assert_outcome(&reply, 504), "timeout");
    assert!(started.elapsed() < Duration::from_secs(10));

    let broken = fake(|_, uri| match uri {
        u if u.contains("html") => (200, "<html>Welcome</html>".into()),
        u if u.contains("crash") => (500, "stack trace with secrets".into()),
        u if u.contains("picky") => (400, json!({"resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "invalid", "diagnostics": "unknown parameter picky"}]}).to_string()),
        u if u.contains("Patient/smart-1288992/$everything") => (501, String::new()),
        u if u.starts_with("/fhir/Condition") => (200, json!({"resourceType": "Patient", "id": "smart-1288992"}).to_string()),
        _ => (404, String::new()),
    })
    .await;
    let proxy = proxy_for(&broken.base).await;
    let token = proxy.seed_token().await;
    let cases = [
        ("/Observation?code=html", 502, "exception"),
        ("/Observation?code=crash", 502, "exception"),
        ("/Observation?code=picky", 400, "invalid"),
        ("/Patient/smart-1288992/$everything", 501, "not-supported"),
        ("/Condition", 502, "exception"),
        ("/Observation/gone", 404, "not-found"),
    ];
    for (path, status, issue) in cases {
        let reply = proxy.get_bearer(&proxy.fhir(path), &token).await;
        assert_eq!(assert_outcome(&reply, status), issue, "{path}");
        assert!(
            !reply.text.contains("secrets") && !reply.text.contains("Welcome"),
            "{path}"
        );
    }
    let picky = proxy
        .get_bearer(&proxy.fhir("/Observation?code=picky"), &token)
        .await;
    assert!(
        picky.text.contains("unknown parameter picky"),
        "{}",
        picky.text
    );
}

#[tokio::test]
async fn open_fhir_is_not_served_in_front_of_an_upstream_and_bad_urls_do_not_start() {
    let (_upstream, proxy) = pair().await;
    for path in ["/metadata", "/Patient/smart-1288992", "/Observation"] {
        let reply = proxy.get(&proxy.open_fhir(path)).await;
        assert_eq!(assert_outcome(&reply, 404), "not-found", "{path}");
        assert!(reply.text.contains("upstream"), "{}", reply.text);
    }
    let metadata = proxy.get(&proxy.fhir("/metadata")).await.json();
    assert_eq!(metadata["resourceType"], "CapabilityStatement");
    for bad in [
        "not a url",
        "ftp://x.example/fhir",
        "http://x.example/fhir?x=1",
    ] {
        let started = server::spawn(Config {
            port: 0,
            fhir_upstream: Some(bad.to_string()),
            ..Config::default()
        })
        .await;
        assert!(matches!(started, Err(StartError::FhirUpstream(_))), "{bad}");
    }
}

#[tokio::test]
async fn a_system_token_searches_every_patient_through_the_upstream_with_its_filter() {
    let (upstream, proxy) = pair().await;
    // A backend client (its key is never used: the debug endpoint mints the token).
    let secret = p384::SecretKey::random(&mut rsa::rand_core::OsRng);
    let jwk: Value = serde_json::from_str(&secret.public_key().to_jwk_string()).unwrap();
    let scope = "system/Observation.rs?category=laboratory system/Patient.rs";
    let client = proxy
        .post_json(
            "/oauth/register",
            &json!({"client_name": "Backend", "grant_types": ["client_credentials"],
                    "token_endpoint_auth_method": "private_key_jwt",
                    "jwks": {"keys": [jwk]}, "scope": scope}),
        )
        .await;
    assert_eq!(client.status, 201, "{}", client.text);
    let token = proxy
        .mint_with(
            &json!({"client_id": client.json()["client_id"], "username": DANIEL,
                           "patient_id": DANIEL_PATIENT, "scope": scope}),
        )
        .await
        .access;
    let reply = proxy
        .get_bearer(&proxy.fhir("/Observation?_count=500"), &token)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let bundle = reply.json();
    let found = entry_resources(&bundle);
    let expected = open_search(&upstream, "/Observation?category=laboratory&_count=500").await;
    assert_eq!(
        keys(&found),
        keys(&expected),
        "every patient's labs, and only labs"
    );
    let patients: std::collections::BTreeSet<String> = found
        .iter()
        .filter_map(|r| r["subject"]["reference"].as_str().map(str::to_string))
        .collect();
    assert_eq!(patients.len(), 3, "{patients:?}");
    assert_eq!(bundle["total"], expected.len());
    let amy = proxy
        .get_bearer(&proxy.fhir(&format!("/Patient/{AMY_PATIENT}")), &token)
        .await;
    assert_eq!(amy.status, 200, "{}", amy.text);
}
