//! The embedded server's integration tests, one module per area, in one test binary (one
//! link of the crate instead of one per file).

#[path = "../common/mod.rs"]
mod common;
#[path = "../portal/mod.rs"]
mod portal;
#[path = "../upstream_support/mod.rs"]
mod upstream_support;

mod authorization_flow;
mod authorize_errors;
mod authorize_limits;
mod backend_services;
mod bad_input;
mod basic_and_logout;
mod code_ownership;
mod connections;
mod cors_oauth;
mod csrf_and_sessions;
mod debug_errors;
mod discovery;
mod ehr_launch;
mod ehr_page_faults;
mod ehr_pages;
mod fhir_bundles;
mod fhir_compartment;
mod fhir_identity;
mod fhir_scopes;
mod fhir_search;
mod fhir_upstream;
mod fhir_upstream_params;
mod hardening_figures;
mod host_and_debug;
mod identity_pages;
mod introspect_revoke;
mod login_throttle;
mod metadata_limits;
mod online_access;
mod openid_connect;
mod openid_prompt;
mod portal_hardening;
mod register_errors;
mod request_log;
mod scope_limits;
#[cfg(unix)]
mod secrets_at_rest;
mod seed_walkthrough;
#[cfg(unix)]
mod serve_cli;
mod simulated_faults;
mod token_errors;
