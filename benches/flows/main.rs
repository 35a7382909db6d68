//! Load generator for the SMART server: virtual clients, each on its own keep-alive
//! connection, run complete authorization-code flows (authorize, sign-in, consent, code,
//! token, FHIR read) by following the portal's HTML forms, optionally with more FHIR reads
//! per flow, or chains of refresh_token grants. Counts completed flows, errors and 5xx,
//! and samples the server's resident memory when given its pid.
//!
//!     cargo bench --bench flows -- --url http://localhost:9000 --clients 64 --seconds 10
//!
//! Exits 1 when any flow failed or any 5xx came back.

mod browser;
mod flow;
mod forms;
mod http;
mod rss;
mod run;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};

/// What each virtual client does in a loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// A complete authorization-code flow, then `--reads` more FHIR reads with its token.
    Flow,
    /// One flow with offline_access, then refresh_token grants, each rotating the last.
    Refresh,
}

/// Who signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum People {
    /// Joseph Ross, who has one patient: login, consent, code, token, read.
    Joseph,
    /// Joseph, and Daniel Adams for himself and for Amy Shaw (with the patient picker), in turn.
    All,
}

/// Command line.
#[derive(Debug, Parser)]
#[command(about = "Authorization-code flows per second against a running smartnb serve")]
pub struct Args {
    /// The server's base URL, as `smartnb serve` printed it.
    #[arg(long)]
    pub url: String,
    /// Concurrent virtual clients, each with its own connection.
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Seconds of load before measuring starts.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// What each client does.
    #[arg(long, value_enum, default_value_t = Mode::Flow)]
    pub mode: Mode,
    /// FHIR reads per flow besides the flow's own (alternately a read by id and a search).
    #[arg(long, default_value_t = 0)]
    pub reads: usize,
    /// Who signs in.
    #[arg(long, value_enum, default_value_t = People::Joseph)]
    pub people: People,
    /// Ask for `openid fhirUser` too, so every token response carries a signed id_token.
    #[arg(long)]
    pub identity: bool,
    /// The server's pid: sample its VmRSS every second.
    #[arg(long)]
    pub pid: Option<u32>,
    /// Seconds to keep sampling memory after the load stops.
    #[arg(long, default_value_t = 0.0)]
    pub linger: f64,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    pub bench: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if args.clients == 0 || args.seconds <= 0.0 || args.warmup < 0.0 || args.linger < 0.0 {
        eprintln!(
            "flows: --clients and --seconds must be positive, --warmup and --linger not negative"
        );
        return ExitCode::from(2);
    }
    match run::run(&args, Duration::from_secs(1)).await {
        Ok(report) => {
            report.print(&args);
            if report.errors == 0 && report.status_5xx == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("flows: {e}");
            ExitCode::from(2)
        }
    }
}
