//! EHR launch (SMART App Launch 2.2, "EHR Launch"): launches minted by the simulated EHR
//! page or the debug endpoint, spent by the authorize request that names them, and the
//! style document the token response points apps at.

pub mod debug;
pub mod mint;
pub mod spend;
pub mod style;

/// The default of `--launch-lifetime`: five minutes.
pub const LAUNCH_LIFETIME: u64 = 300;
