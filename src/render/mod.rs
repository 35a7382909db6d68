//! Outputs to what people see: terminal text and Jupyter MIME bundles. Rendering happens
//! here, once, for every front end.

pub mod fhir_order;
pub mod jupyter;
pub mod terminal;
