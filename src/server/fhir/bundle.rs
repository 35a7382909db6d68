//! Searchset Bundles: one page of results with self, next and previous links on this
//! server's own base.

use serde_json::{json, Value};

use super::data::Resource;
use super::search::Search;
use super::Base;
use crate::server::clock;
use crate::server::state::AppState;

/// A searchset Bundle for one page of `hits`, with self/next/previous links.
pub(super) fn bundle(
    state: &AppState,
    base: Base,
    path: &str,
    search: &Search,
    hits: &[&Resource],
) -> Value {
    let root = match base {
        Base::Protected => state.fhir_base(),
        Base::Open => state.open_fhir_base(),
    };
    let page: Vec<&&Resource> = hits.iter().skip(search.offset).take(search.count).collect();
    let link = |offset: usize| {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &search.link_params {
            query.append_pair(k, v);
        }
        if offset > 0 {
            query.append_pair("_offset", &offset.to_string());
        }
        let query = query.finish();
        if query.is_empty() {
            format!("{root}{path}")
        } else {
            format!("{root}{path}?{query}")
        }
    };
    let mut links = vec![json!({"relation": "self", "url": link(search.offset)})];
    if search.count > 0 && search.offset + search.count < hits.len() {
        links.push(json!({"relation": "next", "url": link(search.offset + search.count)}));
    }
    if search.offset > 0 && search.count > 0 {
        links.push(json!({"relation": "previous", "url": link(search.offset.saturating_sub(search.count))}));
    }
    let mut bundle = json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "meta": {"lastUpdated": clock::fhir_instant(clock::now())},
        "type": "searchset",
        "total": hits.len(),
        "link": links,
    });
    if !page.is_empty() {
        bundle["entry"] = page
            .iter()
            .map(|r| {
                json!({
                    "fullUrl": format!("{root}/{}/{}", r.resource_type, r.id),
                    "resource": r.json,
                    "search": {"mode": "match"},
                })
            })
            .collect();
    }
    bundle
}
