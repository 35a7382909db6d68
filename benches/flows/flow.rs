//! One participant's authorization-code flow as an app and a browser see it: the authorize
//! link, sign-in, the patient picker when there is one, consent, the code on the redirect,
//! the code exchange, and a FHIR read with the new token.

use base64::Engine;
use hyper::header::{HeaderValue, AUTHORIZATION};
use hyper::{Method, StatusCode};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::browser::{Browser, Landing};
use crate::forms::{form_to, forms, FormError};
use crate::http::{Conn, HttpError, Reply};

/// The shipped participants' password.
const PASSWORD: &str = "demo-password";

/// Why a flow did not finish.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// The server answered 5xx.
    #[error("HTTP {status} from the server: {body}")]
    ServerError {
        /// The status.
        status: StatusCode,
        /// The start of the body.
        body: String,
    },
    /// A status, page or answer the flow did not expect.
    #[error("{step}: {detail}")]
    Unexpected {
        /// Where in the flow.
        step: &'static str,
        /// What came instead.
        detail: String,
    },
    /// A form could not be filled in.
    #[error(transparent)]
    Form(#[from] FormError),
    /// No answer at all.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The flow took longer than the generator allows.
    #[error("no answer within {0} s")]
    Timeout(u64),
}

impl FlowError {
    /// A 5xx is an error of its own kind, whatever the step.
    pub fn check_5xx(reply: &Reply) -> Result<(), FlowError> {
        if reply.status.is_server_error() {
            return Err(FlowError::ServerError {
                status: reply.status,
                body: excerpt(reply),
            });
        }
        Ok(())
    }

    fn status(step: &'static str, reply: &Reply) -> FlowError {
        FlowError::Unexpected {
            step,
            detail: format!("HTTP {}: {}", reply.status, excerpt(reply)),
        }
    }
}

fn excerpt(reply: &Reply) -> String {
    reply.text().chars().take(300).collect()
}

/// The registered app every virtual client plays.
#[derive(Debug, Clone)]
pub struct App {
    /// Where the server is, e.g. `http://localhost:9000`.
    pub base: String,
    /// Its client id.
    pub client_id: String,
    /// `Authorization: Basic` for the token endpoint.
    pub basic: HeaderValue,
    /// Its registered redirect URI.
    pub redirect_uri: String,
    /// The scope it asks for.
    pub scope: String,
}

/// A participant and the patient they share.
#[derive(Debug, Clone, Copy)]
pub struct Person {
    /// Who signs in.
    pub username: &'static str,
    /// Whose records they share.
    pub patient: &'static str,
}

/// Tokens from the token endpoint.
#[derive(Debug, Clone, Deserialize)]
pub struct Tokens {
    /// The bearer token.
    pub access_token: String,
    /// The refresh token, when offline access was granted.
    pub refresh_token: Option<String>,
    /// Seconds the access token lasts.
    pub expires_in: u64,
    /// The patient in context.
    pub patient: Option<String>,
    /// The id_token, when `openid fhirUser` was asked for.
    pub id_token: Option<String>,
}

fn random_hex() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The whole flow for one person in a fresh browser; the tokens, after one FHIR read of
/// the patient with them.
pub async fn run(conn: &mut Conn, app: &App, who: Person) -> Result<Tokens, FlowError> {
    let state = random_hex();
    let verifier = format!("{}{}", random_hex(), random_hex());
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    let fhir_base = format!("{}/api/fhir", app.base);
    let mut link = url::Url::parse(&format!("{}/oauth/authorize", app.base)).map_err(|e| {
        FlowError::Unexpected {
            step: "authorize link",
            detail: e.to_string(),
        }
    })?;
    link.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &app.client_id)
        .append_pair("redirect_uri", &app.redirect_uri)
        .append_pair("scope", &app.scope)
        .append_pair("state", &state)
        .append_pair("aud", &fhir_base)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let mut browser = Browser::new(conn, &app.base);
    let mut landing = browser.open(link.as_str()).await?;
    let mut pages = 0;
    let redirect = loop {
        let page = match landing {
            Landing::Away(location) => break location,
            Landing::Page(page) => page,
        };
        pages += 1;
        if page.status != StatusCode::OK || pages > 4 {
            return Err(FlowError::status("portal page", &page));
        }
        let found = forms(page.text());
        let (action, body) = if let Some(login) = form_to(&found, "/login") {
            if pages > 1 {
                return Err(FlowError::status("sign-in refused", &page));
            }
            let typed = [("username", who.username), ("password", PASSWORD)];
            ("/login", login.submit("Sign in", &typed)?)
        } else if let Some(picker) = form_to(&found, "/oauth/consent/patient") {
            let typed = [("patient", who.patient)];
            ("/oauth/consent/patient", picker.submit("Continue", &typed)?)
        } else if let Some(consent) = form_to(&found, "/oauth/consent") {
            ("/oauth/consent", consent.submit("Approve", &[])?)
        } else {
            return Err(FlowError::status("no form to follow", &page));
        };
        landing = browser.post(action, body).await?;
    };
    let code = code_from(&redirect, &app.redirect_uri, &state)?;
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", &code)
        .append_pair("redirect_uri", &app.redirect_uri)
        .append_pair("code_verifier", &verifier)
        .finish();
    let tokens = token_request(browser.conn(), app, form).await?;
    if tokens.patient.as_deref() != Some(who.patient) {
        return Err(FlowError::Unexpected {
            step: "token",
            detail: format!("patient {:?}, expected {}", tokens.patient, who.patient),
        });
    }
    if app.scope.contains("openid") && tokens.id_token.is_none() {
        return Err(FlowError::Unexpected {
            step: "token",
            detail: "no id_token for a grant of openid fhirUser".to_string(),
        });
    }
    read(
        browser.conn(),
        &format!("/api/fhir/Patient/{}", who.patient),
        &tokens.access_token,
    )
    .await?;
    Ok(tokens)
}

fn code_from(redirect: &str, redirect_uri: &str, state: &str) -> Result<String, FlowError> {
    let unexpected = |detail: String| FlowError::Unexpected {
        step: "redirect to the app",
        detail,
    };
    if !redirect.starts_with(redirect_uri) {
        return Err(unexpected(format!("went to {redirect}")));
    }
    let url = url::Url::parse(redirect).map_err(|e| unexpected(e.to_string()))?;
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    if param("state").as_deref() != Some(state) {
        return Err(unexpected(format!("state lost: {redirect}")));
    }
    param("code").ok_or_else(|| unexpected(format!("no code: {redirect}")))
}

async fn token_request(conn: &mut Conn, app: &App, form: String) -> Result<Tokens, FlowError> {
    let reply = conn
        .send(
            Method::POST,
            "/oauth/token",
            &[(AUTHORIZATION, app.basic.clone())],
            Some(("application/x-www-form-urlencoded", form)),
        )
        .await?;
    FlowError::check_5xx(&reply)?;
    if reply.status != StatusCode::OK {
        return Err(FlowError::status("token", &reply));
    }
    serde_json::from_slice(&reply.body).map_err(|e| FlowError::Unexpected {
        step: "token",
        detail: format!("{e}: {}", excerpt(&reply)),
    })
}

/// A refresh_token grant: the rotated tokens.
pub async fn refresh(conn: &mut Conn, app: &App, refresh_token: &str) -> Result<Tokens, FlowError> {
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "refresh_token")
        .append_pair("refresh_token", refresh_token)
        .finish();
    token_request(conn, app, form).await
}

/// A FHIR read with a bearer token, which must answer 200 with FHIR JSON.
pub async fn read(conn: &mut Conn, path: &str, access_token: &str) -> Result<(), FlowError> {
    let bearer = HeaderValue::from_str(&format!("Bearer {access_token}")).map_err(|e| {
        FlowError::Unexpected {
            step: "read",
            detail: e.to_string(),
        }
    })?;
    let reply = conn
        .send(Method::GET, path, &[(AUTHORIZATION, bearer)], None)
        .await?;
    FlowError::check_5xx(&reply)?;
    if reply.status != StatusCode::OK || !reply.content_type.starts_with("application/fhir+json") {
        return Err(FlowError::status("FHIR read", &reply));
    }
    Ok(())
}
