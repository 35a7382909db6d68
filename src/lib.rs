//! smartnb: learn and test the SMART on FHIR OAuth2 workflow from a notebook or a REPL.

pub mod client;
pub mod kernel;
pub mod notebook;
pub mod render;
pub mod repl;
#[cfg(feature = "rust")]
pub mod rust_cells;
pub mod server;
pub mod session;
