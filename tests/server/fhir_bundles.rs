//! Searchset Bundles: paging by `next` links on the server's own base, the Bundle's shape,
//! `_format` and the FHIR JSON content type.

use crate::common::*;
use serde_json::Value;

#[tokio::test]
async fn count_pages_by_next_links_on_the_servers_own_base_without_loss_or_duplicates() {
    let server = start().await;
    let token = server.seed_token().await;
    for (base, query, auth) in [
        (server.fhir(""), "/Observation", Some(token.as_str())),
        (
            server.fhir(""),
            "/Observation?category=vital-signs",
            Some(token.as_str()),
        ),
        (server.open_fhir(""), "/Observation", None),
        (
            server.fhir(""),
            "/Patient/smart-1288992/$everything",
            Some(token.as_str()),
        ),
    ] {
        let sep = if query.contains('?') { '&' } else { '?' };
        let (whole, _) = server
            .search_all(&format!("{base}{query}{sep}_count=500"), auth)
            .await;
        let first = format!("{base}{query}{sep}_count=7");
        let (paged, links) = server.search_all(&first, auth).await;
        assert!(whole.len() > 14, "{query}: too few results to page");
        assert_eq!(
            paged.len(),
            whole.len(),
            "{query}: paging lost or repeated results"
        );
        assert_eq!(keys(&paged), keys(&whole), "{query}");
        for link in &links {
            assert!(
                link.starts_with(&format!("{base}/")),
                "{link} is not on {base}"
            );
        }

        let page = match auth {
            Some(t) => server.get_bearer(&first, t).await.json(),
            None => server.get(&first).await.json(),
        };
        assert_eq!(
            page["total"],
            whole.len(),
            "{query}: total is the whole count"
        );
        assert_eq!(page["entry"].as_array().unwrap().len(), 7);
        let relations: Vec<&str> = page["link"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["relation"].as_str().unwrap())
            .collect();
        assert!(
            relations.contains(&"self") && relations.contains(&"next"),
            "{relations:?}"
        );
        assert!(
            !relations.contains(&"previous"),
            "the first page has no previous"
        );
    }
}

#[tokio::test]
async fn count_zero_gives_the_total_without_entries() {
    let server = start().await;
    let bundle = server
        .get(&server.open_fhir("/Observation?_count=0"))
        .await
        .json();
    let all = everything_of(&server, "Observation").await;
    assert_eq!(bundle["total"], all.len());
    assert!(bundle.get("entry").is_none(), "{bundle}");
}

/// No nulls, empty strings, empty arrays or empty objects anywhere (FHIR JSON rules).
fn assert_no_empties(value: &Value, path: &str) {
    match value {
        Value::Null => panic!("null at {path}"),
        Value::String(s) => assert!(!s.is_empty(), "empty string at {path}"),
        Value::Array(items) => {
            assert!(!items.is_empty(), "empty array at {path}");
            for (i, item) in items.iter().enumerate() {
                assert_no_empties(item, &format!("{path}[{i}]"));
            }
        }
        Value::Object(map) => {
            assert!(!map.is_empty(), "empty object at {path}");
            for (k, v) in map {
                assert_no_empties(v, &format!("{path}.{k}"));
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn searchset_bundles_have_the_fhir_shape() {
    let server = start().await;
    let token = server.seed_token().await;
    for query in [
        "/Observation?_count=5",
        "/Condition",
        "/Patient",
        "/Observation?code=no-such-code",
        "/Patient/smart-1288992/$everything",
    ] {
        let reply = server.get_bearer(&server.fhir(query), &token).await;
        assert_eq!(reply.status, 200, "{query}: {}", reply.text);
        assert_fhir_json(&reply);
        let bundle = reply.json();
        assert_no_empties(&bundle, query);
        assert_eq!(bundle["resourceType"], "Bundle");
        assert_eq!(bundle["type"], "searchset");
        let total = bundle["total"].as_u64().expect("total");
        let entries = bundle["entry"].as_array().map(Vec::len).unwrap_or(0);
        assert!(entries as u64 <= total, "{query}");
        for entry in bundle["entry"].as_array().into_iter().flatten() {
            let resource = &entry["resource"];
            assert_eq!(
                entry["fullUrl"],
                server.fhir(&format!("/{}", key(resource))),
                "{query}"
            );
            assert_eq!(entry["search"]["mode"], "match", "{query}");
        }
        let self_link = bundle["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "self");
        let self_url = self_link.expect("a self link")["url"].as_str().unwrap();
        assert!(self_url.starts_with(&server.fhir("/")), "{self_url}");
    }
}

#[tokio::test]
async fn format_json_is_served_and_xml_is_406() {
    let server = start().await;
    let token = server.seed_token().await;
    for path in [
        "/Patient/smart-1288992",
        "/Observation",
        "/metadata",
        "/Patient/smart-1288992/$everything",
    ] {
        for json in ["json", "application/json", "application/fhir%2Bjson"] {
            let url = server.fhir(&format!("{path}?_format={json}"));
            let reply = server.get_bearer(&url, &token).await;
            assert_eq!(reply.status, 200, "{url}: {}", reply.text);
            assert_fhir_json(&reply);
        }
        for other in ["xml", "application/fhir%2Bxml", "turtle"] {
            let url = server.fhir(&format!("{path}?_format={other}"));
            let reply = server.get_bearer(&url, &token).await;
            assert_outcome(&reply, 406);
        }
    }
}

/// `Accept` asks for a format as `_format` does: XML types alone are 406 like
/// `_format=xml`, on both bases; JSON types, wildcards and lists where JSON keeps a
/// non-zero q-value are served; `_format` overrides the header, as FHIR says.
#[tokio::test]
async fn an_accept_header_without_json_is_406_like_format_xml() {
    let server = start().await;
    let token = server.seed_token().await;
    let refused = [
        "application/fhir+xml",
        "application/xml",
        "text/xml",
        "application/fhir+xml;q=1.0, application/xml;q=0.9",
        "text/turtle",
        "application/fhir+json;q=0",
        "application/xml, application/json;q=0.0, application/fhir+json;q=0",
        "*/*, application/json;q=0, application/fhir+json;q=0, application/json+fhir;q=0",
    ];
    let served = [
        "application/fhir+json",
        "application/json",
        "APPLICATION/FHIR+JSON",
        "application/fhir+json; fhirVersion=4.0",
        "application/json+fhir",
        "*/*",
        "application/*",
        "application/fhir+xml;q=0.9, application/fhir+json;q=0.5",
        "application/xml, */*;q=0.1",
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    ];
    for path in [
        "/Patient/smart-1288992",
        "/Observation?category=vital-signs",
        "/metadata",
        "/Patient/smart-1288992/$everything",
    ] {
        for (url, bearer) in [
            (server.fhir(path), Some(&token)),
            (server.open_fhir(path), None),
        ] {
            let get = |accept: &str| {
                let mut request = server.http.get(&url).header("Accept", accept);
                if let Some(token) = bearer {
                    request = request.bearer_auth(token);
                }
                request.send()
            };
            for accept in refused {
                let reply = read(get(accept).await.expect("answered")).await;
                assert_eq!(
                    assert_outcome(&reply, 406),
                    "not-supported",
                    "{url} {accept}"
                );
                assert!(
                    reply.text.contains("Accept"),
                    "{url} {accept}: {}",
                    reply.text
                );
            }
            for accept in served {
                let reply = read(get(accept).await.expect("answered")).await;
                assert_eq!(reply.status, 200, "{url} {accept}: {}", reply.text);
                assert_fhir_json(&reply);
            }
            let mut with_format = server
                .http
                .get(format!(
                    "{url}{}_format=json",
                    if url.contains('?') { '&' } else { '?' }
                ))
                .header("Accept", "application/fhir+xml");
            if let Some(token) = bearer {
                with_format = with_format.bearer_auth(token);
            }
            let reply = read(with_format.send().await.expect("answered")).await;
            assert_eq!(
                reply.status, 200,
                "{url} _format=json overrides: {}",
                reply.text
            );
        }
    }
}

#[tokio::test]
async fn every_fhir_answer_is_application_fhir_json() {
    let server = start().await;
    let token = server.seed_token().await;
    let restricted = server
        .daniel_token(SEED_SCOPE, "patient/Observation.rs")
        .await;
    let cases = [
        (server.fhir("/Patient/smart-1288992"), Some(&token), 200),
        (server.fhir("/Observation"), Some(&token), 200),
        (server.fhir("/metadata"), None, 200),
        (server.open_fhir("/Condition"), None, 200),
        (server.fhir("/Patient/smart-1288992"), None, 401),
        (server.fhir("/Patient/smart-1081332"), Some(&token), 404),
        (server.fhir("/Condition"), Some(&restricted), 403),
        (server.fhir("/Observation?foo=1"), Some(&token), 400),
        (server.fhir("/Observation?_format=xml"), Some(&token), 406),
    ];
    for (url, auth, status) in cases {
        let reply = match auth {
            Some(t) => server.get_bearer(&url, t).await,
            None => server.get(&url).await,
        };
        assert_eq!(reply.status, status, "{url}: {}", reply.text);
        assert_fhir_json(&reply);
    }
}
