//! The authorization-code flow in steps: the app's authorize link, the participant's walk
//! through sign-in, patient picker and consent, and the app's code exchange.

use url::Url;

use super::api::{App, Pkce, Reply, TestServer, Tokens};
use super::browser::{Browser, Callback};
use super::html::Page;

/// The shipped users' password.
pub const PASSWORD: &str = "demo-password";
/// The seed walkthrough's state.
pub const SEED_STATE: &str = "my-obscure-state";

/// A participant sharing one patient's records.
#[derive(Debug, Clone, Copy)]
pub struct Person {
    /// Who signs in.
    pub username: &'static str,
    /// Whose records they share.
    pub patient: &'static str,
    /// That patient's name as the pages show it.
    pub patient_name: &'static str,
}

/// Daniel Adams sharing his own records (he also represents Amy Shaw, so he gets a picker).
pub const DANIEL: Person = Person {
    username: "daniel-adams",
    patient: "smart-1288992",
    patient_name: "Daniel X. Adams",
};
/// Daniel Adams sharing Amy Shaw's records.
pub const AMY: Person = Person {
    username: "daniel-adams",
    patient: "smart-1032702",
    patient_name: "Amy V. Shaw",
};
/// Joseph Ross, who has only his own records (no picker).
pub const JOSEPH: Person = Person {
    username: "joseph-ross",
    patient: "smart-1081332",
    patient_name: "Joseph T. Ross",
};

/// Dr. Rose Carter, a practitioner who treats all three patients, sharing Joseph Ross's.
pub const CARTER: Person = Person {
    username: "dr-carter",
    patient: "smart-1081332",
    patient_name: "Joseph T. Ross",
};

/// The parameters of an authorize request, as the app builds its link.
#[derive(Debug, Clone)]
pub struct Authorize {
    params: Vec<(String, String)>,
}

impl Authorize {
    /// The seed walkthrough's request for this app: its scope and redirect URI, state
    /// "my-obscure-state", aud the FHIR base.
    pub fn new(server: &TestServer, app: &App) -> Authorize {
        Authorize { params: Vec::new() }
            .set("response_type", "code")
            .set("client_id", &app.client_id)
            .set("redirect_uri", &app.redirect_uri)
            .set("scope", &app.scope)
            .set("state", SEED_STATE)
            .set("aud", &server.fhir_base())
    }

    /// Set a parameter, replacing any earlier value.
    pub fn set(self, name: &str, value: &str) -> Authorize {
        let mut out = self.without(name);
        out.params.push((name.to_string(), value.to_string()));
        out
    }

    /// Send a parameter once more (a duplicated parameter).
    pub fn repeat(mut self, name: &str, value: &str) -> Authorize {
        self.params.push((name.to_string(), value.to_string()));
        self
    }

    /// Leave a parameter out.
    pub fn without(mut self, name: &str) -> Authorize {
        self.params.retain(|(k, _)| k != name);
        self
    }

    /// Add a PKCE S256 challenge.
    pub fn pkce(self, pkce: &Pkce) -> Authorize {
        self.set("code_challenge", &pkce.challenge)
            .set("code_challenge_method", "S256")
    }

    /// The parameters, in order.
    pub fn params(&self) -> Vec<(&str, &str)> {
        self.params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    /// The link to /oauth/authorize.
    pub fn url(&self, server: &TestServer) -> String {
        let mut url = Url::parse(&server.url("/oauth/authorize")).expect("a URL");
        url.query_pairs_mut().extend_pairs(&self.params);
        url.to_string()
    }
}

impl Browser {
    /// Open the authorize link, sign in when asked, pick the person's patient when offered
    /// a choice, and return the consent page.
    pub async fn consent_page(
        &self,
        server: &TestServer,
        request: &Authorize,
        who: Person,
    ) -> Page {
        let mut page = self.open(&request.url(server)).await.page();
        if page.has_form("/login") {
            page = self.sign_in(page, who.username).await.page();
        }
        if page.has_form("/oauth/consent/patient") {
            let mut picker = page.form("/oauth/consent/patient");
            picker.choose("patient", who.patient);
            page = self.submit(&picker, "Continue").await.page();
        }
        assert!(
            page.has_form("/oauth/consent"),
            "expected the consent page, got {} {}: {}",
            page.status,
            page.url,
            page.text()
        );
        page
    }

    /// Press Approve on a consent page as it stands (every category, one year).
    pub async fn approve(&self, consent: &Page) -> Callback {
        self.submit(&consent.form("/oauth/consent"), "Approve")
            .await
            .callback()
    }
}

/// A whole participant walk in a fresh browser, ending at the redirect with a code.
pub async fn authorize(server: &TestServer, request: &Authorize, who: Person) -> Callback {
    let browser = Browser::new(server);
    let consent = browser.consent_page(server, request, who).await;
    browser.approve(&consent).await
}

/// Tokens for an app through the whole flow (with PKCE when the app is public).
pub async fn tokens_for(server: &TestServer, app: &App, who: Person) -> Tokens {
    exchange_reply(server, app, who).await.tokens()
}

/// The token endpoint's answer for a code from the whole flow.
pub async fn exchange_reply(server: &TestServer, app: &App, who: Person) -> Reply {
    let pkce = Pkce::fresh();
    let mut request = Authorize::new(server, app);
    if app.method == "none" {
        request = request.pkce(&pkce);
    }
    let callback = authorize(server, &request, who).await;
    let verifier = (app.method == "none").then_some(pkce.verifier.as_str());
    app.exchange(server, &callback.code(), verifier).await
}
