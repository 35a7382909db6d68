//! Sign-in sends the browser only to paths on this server: `next` is parsed against the
//! base URL, and anything with a control character, whitespace or a backslash (as written
//! or percent-decoded), `//`, another scheme, host or port goes to /apps instead.

use axum::http::StatusCode;

use super::router::{Portal, PASSWORD};
use crate::common::raw;
use crate::portal::{Browser, TestServer, JOSEPH};

/// Attacks as they arrive in the query string (percent-encoded where a browser would be).
const ATTACKS: &[&str] = &[
    "/%09/evil.example",
    "/%0A/evil.example",
    "/%0D%0A/evil.example",
    "/apps%3Fx%3D%250d%250aSet-Cookie:a=b",
    "/%00/evil.example",
    "/%5Cevil.example",
    "/%5C%5Cevil.example",
    "%5C%5Cevil.example",
    "/%255Cevil.example",
    "//evil.example",
    "%2F%2Fevil.example",
    "///evil.example",
    "/%252F/evil.example",
    "/%25%30%39/evil.example",
    "/.//evil.example",
    "/+/evil.example",
    "https://evil.example",
    "https:%2F%2Fevil.example",
    "http://localhost:9001/apps",
    "http://localhost:9000/apps",
    "javascript:alert(1)",
    "data:text/html,x",
    "evil.example",
    "",
    "/%E3%80%80/evil.example",
    "/%E2%80%A8/evil.example",
    "/%E2%80%A9/evil.example",
    "/%C2%A0/evil.example",
    "/%C2%85/evil.example",
    "/%C2%9B/evil.example",
    "/%7F/evil.example",
    "/%2525252525252509",
];

/// A Location a browser would keep on this server.
fn assert_safe(location: &str, next: &str) {
    assert!(
        location.starts_with('/') && !location.starts_with("//"),
        "next={next}: {location:?}"
    );
    assert!(
        location.bytes().all(|b| b.is_ascii_graphic() && b != b'\\'),
        "next={next}: {location:?}"
    );
}

/// The exact request of the report, over HTTP: signed in, it used to answer
/// `303 Location: /\t/evil.example`, which browsers follow to //evil.example.
#[tokio::test]
async fn the_reported_request_goes_to_the_apps_page() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    let login = browser.open("/login").await.page();
    browser.sign_in(login, JOSEPH.username).await.page();
    let cookie = format!(
        "smartnb_session={}",
        browser.cookie("smartnb_session").unwrap()
    );
    let port = url::Url::parse(&server.base_url).unwrap().port().unwrap();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let target = "/login?next=/%09/evil.example";
    let signed_in = raw::send(
        addr,
        raw::request("GET", target, &[("Cookie", &cookie)], b""),
    )
    .await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.text());
    assert_eq!(signed_in.header("location"), Some("/apps"));

    // Not signed in: the form carries /apps on, and says why the link's was not used.
    let anonymous = raw::send(addr, raw::request("GET", target, &[], b"")).await;
    assert_eq!(anonymous.status, 200);
    let page = anonymous.text();
    assert!(page.contains(r#"name="next" value="/apps""#), "{page}");
    assert!(page.contains("return address was not used"), "{page}");
    assert!(page.contains("control characters"), "{page}");

    // And a browser that follows the link and signs in lands on /apps, on this server.
    let browser = Browser::new(&server);
    let login = browser.open(target).await.page();
    let landed = browser.sign_in(login, JOSEPH.username).await.page();
    assert_eq!(landed.url.path(), "/apps");
    assert_eq!(
        landed.url.origin(),
        url::Url::parse(&server.base_url).unwrap().origin()
    );
}

#[tokio::test]
async fn every_attack_in_next_lands_on_the_apps_page() {
    let portal = Portal::new();
    let cookie = portal.sign_in("joseph-ross").await;
    let (anonymous, csrf) = portal.anonymous().await;
    let overlong = format!("/{}", "a".repeat(3000));
    let attacks = ATTACKS.iter().copied().chain([overlong.as_str()]);
    for next in attacks {
        // Signed in already: GET /login sends the browser straight on.
        let answer = portal
            .get(&format!("/login?next={next}"), Some(&cookie))
            .await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "next={next}");
        assert_eq!(answer.location().as_deref(), Some("/apps"), "next={next}");

        // The form hands /apps on, not the attack.
        let form = portal.get(&format!("/login?next={next}"), None).await;
        assert_eq!(form.hidden("next").as_deref(), Some("/apps"), "next={next}");

        // `next` forged into the posted form itself.
        let decoded: String = url::form_urlencoded::parse(format!("next={next}").as_bytes())
            .map(|(_, v)| v.into_owned())
            .next()
            .unwrap_or_default();
        let posted = portal
            .post(
                "/login",
                Some(&anonymous),
                &[
                    ("csrf", &csrf),
                    ("username", "joseph-ross"),
                    ("password", PASSWORD),
                    ("next", &decoded),
                ],
            )
            .await;
        assert_eq!(posted.status, StatusCode::SEE_OTHER, "next={next}");
        assert_eq!(
            posted.location().as_deref(),
            Some("/apps"),
            "forged next={next}"
        );
    }
}

#[tokio::test]
async fn the_servers_own_paths_come_back_serialised_by_the_url_parser() {
    let portal = Portal::new();
    let cookie = portal.sign_in("joseph-ross").await;
    for (next, location) in [
        (
            "%2Foauth%2Fconsent%3Frequest%3D0123abcd",
            "/oauth/consent?request=0123abcd",
        ),
        ("/apps", "/apps"),
        ("/a/../apps", "/apps"),
        ("/caf%C3%A9", "/caf%C3%A9"),
        ("/apps%3Fq%3D%22%3C%3E%22", "/apps?q=%22%3C%3E%22"),
        ("/apps%23fragment", "/apps"),
    ] {
        let answer = portal
            .get(&format!("/login?next={next}"), Some(&cookie))
            .await;
        assert_eq!(answer.location().as_deref(), Some(location), "next={next}");
        assert_safe(location, next);
    }
}
