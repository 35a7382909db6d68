//! The session's integration tests (helper commands against an embedded or separate server),
//! one module per area, in one test binary.

#[path = "../session_support/mod.rs"]
mod session_support;

mod session_authorize;
mod session_backend;
mod session_connect;
mod session_errors;
mod session_id_token;
mod session_launch;
mod session_launch_listen;
mod session_listen;
mod session_rough_edges;
mod session_simulate;
mod session_simulate_server;
mod session_walkthrough;
