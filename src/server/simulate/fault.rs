//! The simulated faults: their names, where each applies, and which requests it answers.

use std::fmt;

/// Where in a flow a fault answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    /// `GET|POST /oauth/authorize`.
    Authorize,
    /// `POST /oauth/token`.
    Token,
    /// A protected FHIR request (`/api/fhir/...` with a bearer token).
    Fhir,
}

impl Site {
    /// Every site, in flow order.
    pub const ALL: [Site; 3] = [Site::Authorize, Site::Token, Site::Fhir];

    /// Its name, as `at` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Site::Authorize => "authorize",
            Site::Token => "token",
            Site::Fhir => "fhir",
        }
    }

    /// The site `at` names.
    pub fn parse(name: &str) -> Option<Site> {
        Site::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// One request a fault may answer, as far as faults care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    /// An authorize request.
    Authorize,
    /// A token request with this `grant_type`, authenticated with a client assertion or not.
    Token {
        /// `authorization_code`, `refresh_token` or `client_credentials`.
        grant_type: &'a str,
        /// The client authenticated with `client_assertion` (private_key_jwt).
        assertion: bool,
    },
    /// A protected FHIR request.
    Fhir,
}

impl Request<'_> {
    /// The site the request is at.
    pub fn site(&self) -> Site {
        match self {
            Request::Authorize => Site::Authorize,
            Request::Token { .. } => Site::Token,
            Request::Fhir => Site::Fhir,
        }
    }
}

macro_rules! faults {
    ($($variant:ident => $name:literal at $site:ident: $doc:literal,)*) => {
        /// A way the server can be told to misbehave for one client.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Fault {
            $(#[doc = $doc] $variant,)*
        }

        /// Every fault's name, in the order the documentation lists them.
        pub const FAULT_NAMES: &[&str] = &[$($name,)*];

        impl Fault {
            /// Every fault, in the order the documentation lists them.
            pub const ALL: &'static [Fault] = &[$(Fault::$variant,)*];

            /// Its name, as the debug endpoint and the `simulate` command spell it.
            pub fn name(self) -> &'static str {
                match self {
                    $(Fault::$variant => $name,)*
                }
            }

            /// The one site it answers at; `None` for `slow`, which takes `at`.
            pub fn fixed_site(self) -> Option<Site> {
                match self {
                    $(Fault::$variant => faults!(@site $site),)*
                }
            }
        }
    };
    (@site any) => { None };
    (@site $site:ident) => { Some(Site::$site) };
}

faults! {
    AuthorizeInvalidClient => "authorize_invalid_client" at Authorize: "The error page for an unknown client (no redirect).",
    AuthorizeInvalidRedirectUri => "authorize_invalid_redirect_uri" at Authorize: "The error page for an unregistered redirect URI (no redirect).",
    AuthorizeInvalidScope => "authorize_invalid_scope" at Authorize: "An error redirect with `invalid_scope`.",
    AuthorizeAccessDenied => "authorize_access_denied" at Authorize: "An error redirect with `access_denied`, as if the participant pressed Deny.",
    AuthorizeServerError => "authorize_server_error" at Authorize: "An error redirect with `server_error`.",
    TokenInvalidClient => "token_invalid_client" at Token: "401 `invalid_client` with `WWW-Authenticate`.",
    TokenInvalidGrant => "token_invalid_grant" at Token: "400 `invalid_grant` for a code exchange: the code is refused.",
    TokenExpiredRefresh => "token_expired_refresh" at Token: "400 `invalid_grant` for a refresh: the refresh token expired.",
    TokenInvalidScope => "token_invalid_scope" at Token: "400 `invalid_scope`.",
    TokenReplayedJti => "token_replayed_jti" at Token: "401 `invalid_client` for a client assertion: its jti was seen before.",
    TokenUnavailable => "token_unavailable" at Token: "503 `temporarily_unavailable` with `Retry-After`.",
    FhirExpiredToken => "fhir_expired_token" at Fhir: "401 `invalid_token`: the access token expired.",
    FhirInvalidToken => "fhir_invalid_token" at Fhir: "401 `invalid_token`, as for an unknown token.",
    FhirInsufficientScope => "fhir_insufficient_scope" at Fhir: "403 `insufficient_scope`.",
    FhirServerError => "fhir_server_error" at Fhir: "500 OperationOutcome.",
    FhirThrottled => "fhir_throttled" at Fhir: "429 with `Retry-After`.",
    Slow => "slow" at any: "The real answer, after a delay.",
}

impl Fault {
    /// The fault this name names.
    pub fn parse(name: &str) -> Option<Fault> {
        Fault::ALL.iter().copied().find(|f| f.name() == name)
    }

    /// Whether it answers this request (for `slow`, `at` says where; none means anywhere).
    pub fn applies(self, request: &Request<'_>, at: Option<Site>) -> bool {
        let site_ok = match self.fixed_site() {
            Some(site) => site == request.site(),
            None => at.is_none_or(|site| site == request.site()),
        };
        site_ok
            && match (self, request) {
                (Fault::TokenInvalidGrant, Request::Token { grant_type, .. }) => {
                    *grant_type == "authorization_code"
                }
                (Fault::TokenExpiredRefresh, Request::Token { grant_type, .. }) => {
                    *grant_type == "refresh_token"
                }
                (Fault::TokenReplayedJti, Request::Token { assertion, .. }) => *assertion,
                _ => true,
            }
    }

    /// What it needs of the client to ever apply: the grant type its requests use, or a
    /// client assertion. `None` when any client's requests can meet it.
    pub fn needs(self) -> Option<Need> {
        match self {
            Fault::AuthorizeInvalidClient
            | Fault::AuthorizeInvalidRedirectUri
            | Fault::AuthorizeInvalidScope
            | Fault::AuthorizeAccessDenied
            | Fault::AuthorizeServerError
            | Fault::TokenInvalidGrant => Some(Need::Grant("authorization_code")),
            Fault::TokenExpiredRefresh => Some(Need::Grant("refresh_token")),
            Fault::TokenReplayedJti => Some(Need::Assertion),
            _ => None,
        }
    }
}

/// What a client must be able to do for a fault to ever answer one of its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// It registered this grant type.
    Grant(&'static str),
    /// It authenticates with a client assertion (registered keys, private_key_jwt).
    Assertion,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_list_is_every_fault_in_order() {
        let names: Vec<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
        assert_eq!(names, FAULT_NAMES);
        for name in FAULT_NAMES {
            assert_eq!(Fault::parse(name).map(Fault::name), Some(*name));
        }
        assert_eq!(Fault::parse("Slow"), None);
    }

    #[test]
    fn token_faults_answer_only_their_grant() {
        let code = Request::Token {
            grant_type: "authorization_code",
            assertion: false,
        };
        let refresh = Request::Token {
            grant_type: "refresh_token",
            assertion: true,
        };
        assert!(Fault::TokenInvalidGrant.applies(&code, None));
        assert!(!Fault::TokenInvalidGrant.applies(&refresh, None));
        assert!(Fault::TokenExpiredRefresh.applies(&refresh, None));
        assert!(!Fault::TokenExpiredRefresh.applies(&code, None));
        assert!(!Fault::TokenReplayedJti.applies(&code, None));
        assert!(Fault::TokenReplayedJti.applies(&refresh, None));
        assert!(!Fault::FhirThrottled.applies(&code, None));
        assert!(Fault::Slow.applies(&code, None));
        assert!(Fault::Slow.applies(&code, Some(Site::Token)));
        assert!(!Fault::Slow.applies(&code, Some(Site::Fhir)));
        assert!(Fault::Slow.applies(&Request::Fhir, Some(Site::Fhir)));
    }
}
