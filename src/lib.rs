//! smartnb: learn and test the SMART on FHIR OAuth2 workflow from a notebook or a REPL.

pub mod client;
pub mod kernel;
pub mod render;
pub mod repl;
pub mod server;
pub mod session;
