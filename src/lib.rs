//! smartnb: learn and test the SMART on FHIR OAuth2 workflow from a notebook or a REPL.

pub mod server;
