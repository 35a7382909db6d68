//! The `smartnb` command line.

use std::io::{IsTerminal, Write};
use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use smartnb::kernel::install::{self, Destination, InstallOptions};
use smartnb::server::{self, StateLocation};
use smartnb::session::{RustStart, Session, SessionOptions};

/// Learn and test the SMART on FHIR OAuth2 workflow.
#[derive(Parser)]
#[command(name = "smartnb", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// The interactive REPL of helper commands (the default when no command is given).
    #[command(
        after_help = "With piped input (smartnb repl < cells.txt) errors go to stderr, each named by its line number.\nExit status: 0 when every line ran; 1 at the first failing line, where the run stops (with --keep-going: every line runs, the failures are listed at the end, and the status is 0); 130 on Ctrl-C."
    )]
    Repl(ReplArgs),
    /// Run the embedded SMART authorization server and FHIR API until Ctrl-C.
    Serve(ServeArgs),
    /// Execute notebooks through a session; --check compares with stored outputs, --write stores them.
    Run(RunArgs),
    /// The Jupyter kernel (Jupyter starts it with --connection-file), or `kernel install`.
    Kernel(KernelArgs),
    /// Internal: the process that evaluates Rust cells for a session.
    #[cfg(feature = "rust")]
    #[command(name = "rust-worker", hide = true)]
    RustWorker,
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
struct KernelArgs {
    /// The connection file Jupyter wrote for this kernel.
    #[arg(long, short = 'f')]
    connection_file: Option<PathBuf>,
    /// Where the embedded server keeps its state (see `smartnb serve --help`).
    #[arg(long, value_name = "FILE|URL")]
    state: Option<StateLocation>,
    #[command(subcommand)]
    action: Option<KernelAction>,
}

#[derive(Subcommand)]
enum KernelAction {
    /// Install the kernelspec so Jupyter lists the kernel (default: for this user).
    Install(InstallArgs),
}

#[derive(Args)]
struct InstallArgs {
    #[command(flatten)]
    destination: DestinationArgs,
    /// The kernel's name (its directory under share/jupyter/kernels).
    #[arg(long, default_value = install::DEFAULT_NAME)]
    name: String,
    /// The name Jupyter shows (default "SMART on FHIR (Rust)").
    #[arg(long)]
    display_name: Option<String>,
    /// Start the kernel's embedded server with this --state (an SQLite file, made
    /// absolute, or a postgres:// URL).
    #[arg(long, value_name = "FILE|URL")]
    state: Option<StateLocation>,
}

#[derive(Args)]
#[group(multiple = false)]
struct DestinationArgs {
    /// Install for this user (the Jupyter user data directory; the default).
    #[arg(long)]
    user: bool,
    /// Install into the Python environment ($VIRTUAL_ENV, or python3's sys.prefix).
    #[arg(long)]
    sys_prefix: bool,
    /// Install under PREFIX/share/jupyter/kernels.
    #[arg(long, value_name = "PREFIX")]
    prefix: Option<PathBuf>,
}

#[derive(Args, Default)]
struct ReplArgs {
    /// With piped input: run every line even after one fails, and exit 0. Without it, the
    /// first failing line stops the run and the exit status is 1. Either way each failure
    /// is named on stderr by its line number.
    #[arg(long)]
    keep_going: bool,
    /// Stop at the first failing line (the default; kept so older scripts still run).
    #[arg(long, hide = true, conflicts_with = "keep_going")]
    fail_fast: bool,
    /// Port for the embedded server (a free one when it is taken).
    #[arg(long, default_value_t = 9000)]
    port: u16,
    /// Where the embedded server keeps its state (see `smartnb serve --help`).
    #[arg(long, value_name = "FILE|URL")]
    state: Option<StateLocation>,
}

#[derive(Args)]
struct RunArgs {
    /// The .ipynb files to run.
    #[arg(required = true)]
    notebooks: Vec<std::path::PathBuf>,
    /// Compare fresh outputs with the stored ones (after normalising ids, tokens, dates, ports).
    #[arg(long, conflicts_with = "write")]
    check: bool,
    /// Store the fresh outputs back into the files.
    #[arg(long)]
    write: bool,
    /// With --check, print every cell and output too, not only what differs and a summary.
    #[arg(long)]
    verbose: bool,
    /// Port for each notebook's embedded server (a free one when taken). Stored outputs
    /// show port 9000 whichever port served them, so do not pick one the notebooks use
    /// themselves (9001, their apps' redirect URIs).
    #[arg(long, default_value_t = 9000)]
    port: u16,
    /// Interrupt a cell that runs longer than this many seconds.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on. 0.0.0.0 (every interface) lets other machines connect; give
    /// --public-url too, or the server calls itself localhost and remote participants'
    /// browsers and apps cannot follow its URLs.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 9000)]
    port: u16,
    /// Serve /oauth/debug/* when the server faces outside (a non-loopback --public-url or
    /// --host); even then only to programs on this machine, never through a proxy.
    #[arg(long)]
    debug_endpoints: bool,
    /// Answer whatever host a request's Host header names (without it: only the --public-url
    /// host, the --host address and loopback names; others get 421, against DNS rebinding).
    #[arg(long)]
    allow_any_host: bool,
    /// Turn off /api/open-fhir, the tokenless copy of the FHIR API.
    #[arg(long)]
    no_open_fhir: bool,
    /// Lifetime of access tokens, in seconds.
    #[arg(long, default_value_t = 3600)]
    access_lifetime: u64,
    /// Lifetime of authorization codes, in seconds.
    #[arg(long, default_value_t = 100)]
    code_lifetime: u64,
    /// Lifetime of a sign-in to the portal (its browser session), in seconds.
    #[arg(long, default_value_t = 12 * 3600, value_name = "SECONDS")]
    session_lifetime: u32,
    /// The base URL participants use: this machine's name as their browsers reach it (needed
    /// with a non-loopback --host), or a proxy's URL (without it: http://localhost:PORT, or
    /// the --host address when it is a specific one).
    #[arg(long)]
    public_url: Option<String>,
    /// Forward FHIR reads and searches to this FHIR server (its base URL) instead of the
    /// bundled charts, with the same token, scope and patient enforcement.
    #[arg(long, value_name = "URL")]
    fhir_upstream: Option<String>,
    /// Seconds to wait for the upstream FHIR server before answering 504.
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    fhir_upstream_timeout: u64,
    /// Keep clients, approvals, codes and tokens in an SQLite FILE (created if missing) or
    /// in PostgreSQL (postgres://user:password@host/db, shareable by several servers);
    /// default: in memory, forgotten at exit.
    #[arg(long, value_name = "FILE|URL")]
    state: Option<StateLocation>,
    /// Seconds between sweeps of expired codes, tokens, approvals and sessions (0: never).
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    sweep_every: u64,
    /// Seconds after registering that a client which never got an approval is swept
    /// (0 keeps such clients forever).
    #[arg(long, default_value_t = server::store::CLIENT_IDLE_LIFETIME, value_name = "SECONDS")]
    client_idle_lifetime: u64,
    /// The most registered clients that never got an approval; one more drops the oldest of
    /// them (0: no cap).
    #[arg(long, default_value_t = server::store::MAX_IDLE_CLIENTS, value_name = "N")]
    max_idle_clients: usize,
    /// Make a new id_token signing key at start and sign with it from then on; the older
    /// keys stay in the JWKS until the id_tokens they signed have expired. With --state the
    /// keys are shared by every server on that database.
    #[arg(long)]
    rotate_signing_key: bool,
    /// Seconds an EHR launch (from /ehr or /oauth/debug/launch) waits for the app's
    /// authorize request.
    #[arg(long, default_value_t = server::launch::LAUNCH_LIFETIME, value_name = "SECONDS")]
    launch_lifetime: u64,
    /// Seconds a Backend Services (client_credentials) token lasts: 1 to 300.
    #[arg(long, default_value_t = 300, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=300))]
    system_token_lifetime: u64,
    /// Do not log each request on stderr (method, path with secrets hidden, status, time,
    /// client_id).
    #[arg(long)]
    quiet: bool,
    /// On SIGTERM, keep answering on open connections (each answer closing its connection)
    /// for up to this many seconds until a proxy in front has closed them all, so a
    /// rolling restart loses no request; 0 stops at once. Ctrl-C always stops at once.
    #[arg(long, default_value_t = 5, value_name = "SECONDS")]
    drain: u64,
}

fn main() {
    // evcxr re-runs this binary as its evaluation child and as a rustc wrapper: that must
    // happen before anything else.
    #[cfg(feature = "rust")]
    evcxr::runtime_hook();
    let cli = Cli::parse();
    // `serve` logs its requests unless told otherwise, and every answer a simulated fault
    // gave (so whoever reads the log sees why); everything else only warnings.
    let serving = matches!(cli.command, Some(Command::Serve(_)));
    init_logging(if serving {
        "warn,smartnb::requests=info,smartnb::server::simulate=info"
    } else {
        "warn"
    });
    // The error and its causes, never a backtrace (anyhow prints one when RUST_BACKTRACE
    // is set and main returns the error).
    if let Err(error) = run(cli) {
        eprintln!("Error: {error:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Command::Serve(args)) => serve(args),
        Some(Command::Repl(args)) => repl(args),
        Some(Command::Run(args)) => run_notebooks(args),
        Some(Command::Kernel(args)) => kernel(args),
        #[cfg(feature = "rust")]
        Some(Command::RustWorker) => std::process::exit(smartnb::rust_cells::worker::serve()),
        None => repl(ReplArgs {
            port: 9000,
            ..ReplArgs::default()
        }),
    }
}

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SMARTNB_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Jupyter keeps a kernel's stderr in its log: no colour codes there.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn repl(args: ReplArgs) -> anyhow::Result<()> {
    let options = SessionOptions {
        server: server::Config {
            port: args.port,
            state: args.state.unwrap_or_default(),
            ..server::Config::default()
        },
        rust: RustStart::Background,
        ..SessionOptions::default()
    };
    let session = Session::new(options)?;
    let code = smartnb::repl::run(
        session,
        smartnb::repl::ReplOptions {
            keep_going: args.keep_going && !args.fail_fast,
        },
    );
    std::process::exit(code);
}

fn run_notebooks(args: RunArgs) -> anyhow::Result<()> {
    use smartnb::notebook::runner::{run_files, Mode, RunOptions};
    let mode = match (args.check, args.write) {
        (true, _) => Mode::Check,
        (_, true) => Mode::Write,
        _ => Mode::Run,
    };
    let run = RunOptions {
        mode,
        timeout: std::time::Duration::from_secs(args.timeout),
        verbose: args.verbose,
    };
    let options = SessionOptions {
        server: server::Config {
            port: args.port,
            ..server::Config::default()
        },
        ..SessionOptions::default()
    };
    let code = run_files(&args.notebooks, &run, &options);
    std::process::exit(code);
}

fn kernel(args: KernelArgs) -> anyhow::Result<()> {
    match (args.action, args.connection_file) {
        (Some(KernelAction::Install(install)), _) => {
            let destination = match install.destination {
                DestinationArgs {
                    prefix: Some(prefix),
                    ..
                } => Destination::Prefix(prefix),
                DestinationArgs {
                    sys_prefix: true, ..
                } => Destination::SysPrefix,
                _ => Destination::User,
            };
            let state = match install.state {
                Some(StateLocation::Sqlite(path)) => Some(
                    std::path::absolute(&path)
                        .with_context(|| format!("making {} absolute", path.display()))?
                        .to_string_lossy()
                        .into_owned(),
                ),
                Some(StateLocation::Postgres(url)) => Some(url),
                Some(StateLocation::Memory) | None => None,
            };
            let installed = install::install(&InstallOptions {
                destination,
                name: install.name,
                display_name: install.display_name,
                state,
            })?;
            println!("{installed}");
            Ok(())
        }
        (None, Some(file)) => {
            let config = server::Config {
                state: args.state.unwrap_or_default(),
                ..server::Config::default()
            };
            Ok(smartnb::kernel::run(&file, config)?)
        }
        (None, None) => anyhow::bail!(
            "give --connection-file FILE (Jupyter does this), or run `smartnb kernel install`"
        ),
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let public_url_given = args.public_url.is_some();
    let config = server::Config {
        host: args.host,
        port: args.port,
        debug_endpoints: args.debug_endpoints,
        allow_any_host: args.allow_any_host,
        open_fhir: !args.no_open_fhir,
        access_lifetime: args.access_lifetime,
        code_lifetime: args.code_lifetime,
        session_lifetime: i64::from(args.session_lifetime),
        public_url: args.public_url,
        fhir_upstream: args.fhir_upstream,
        fhir_upstream_timeout: std::time::Duration::from_secs(args.fhir_upstream_timeout.max(1)),
        state: args.state.unwrap_or_default(),
        sweep_interval: std::time::Duration::from_secs(args.sweep_every),
        client_idle_lifetime: args.client_idle_lifetime,
        max_idle_clients: args.max_idle_clients,
        rotate_signing_key: args.rotate_signing_key,
        launch_lifetime: args.launch_lifetime,
        system_token_lifetime: args.system_token_lifetime,
        log_requests: !args.quiet,
        ..server::Config::default()
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let drain = std::time::Duration::from_secs(args.drain);
    runtime.block_on(async move {
        let mut signals = StopSignals::listen();
        let running = server::spawn(config).await?;
        // The first line of stdout is the base URL, printed once connections are accepted.
        let mut stdout = std::io::stdout();
        writeln!(stdout, "{}", running.base_url)?;
        stdout.flush()?;
        for line in server::startup::startup_lines(
            running.addr,
            &running.base_url,
            running.state_location(),
            public_url_given,
        ) {
            eprintln!("{line}");
        }
        match signals.next().await {
            StopSignal::Terminate if !drain.is_zero() => {
                eprintln!(
                    "smartnb: draining (new connections refused, open ones closed after \
                     their next answer; at most {} s; a second signal stops at once)",
                    drain.as_secs()
                );
                tokio::select! {
                    () = running.drain(drain) => {},
                    _ = signals.next() => eprintln!("smartnb: stopping now"),
                }
            }
            _ => {
                eprintln!("smartnb: shutting down");
                running.shutdown().await;
            }
        }
        Ok(())
    })
}

/// Which signal asked `serve` to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopSignal {
    /// Ctrl-C at a terminal: stop at once.
    Interrupt,
    /// SIGTERM, as a service manager or a rolling restart sends: drain first.
    Terminate,
}

/// Ctrl-C and SIGTERM, listened for from the moment this is made: before the base URL is
/// printed, so a caller that signals as soon as it has read the URL is heard, not killed.
struct StopSignals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl StopSignals {
    fn listen() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            StopSignals {
                interrupt: signal(SignalKind::interrupt()).ok(),
                terminate: signal(SignalKind::terminate()).ok(),
            }
        }
        #[cfg(not(unix))]
        StopSignals {}
    }

    /// The next stop signal.
    async fn next(&mut self) -> StopSignal {
        #[cfg(unix)]
        {
            async fn received(signal: &mut Option<tokio::signal::unix::Signal>) {
                match signal {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                () = received(&mut self.interrupt) => StopSignal::Interrupt,
                () = received(&mut self.terminate) => StopSignal::Terminate,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            StopSignal::Interrupt
        }
    }
}
