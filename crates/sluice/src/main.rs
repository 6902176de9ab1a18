//! `sluice`: the one binary. Each subcommand lives in `cmd/`.

mod cmd;

use clap::{Parser, Subcommand};

/// Change data capture and synchronization for MySQL-family databases.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about, long_about = None, arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print every row change and DDL of a MySQL-family binlog as one JSON object per line,
    /// from a live server (as a replica) or from recorded binlog files.
    Capture(cmd::capture::CaptureArgs),
    /// Run a synchronization project (YAML file) until stopped (SIGINT/SIGTERM: flush,
    /// checkpoint, exit 0); a second run resumes from the checkpoint.
    Run(cmd::run::RunArgs),
    /// Show a project's stage, state, checkpoint, latency and rows per table.
    Status(cmd::run::StatusArgs),
    /// Pause or resume a project run by `sluice run` (through its metadata store); create,
    /// start, stop, release, delete, ... a project of a `sluice server`.
    Project(cmd::run::ProjectArgs),
    /// Run the service: data sources, projects as workers, the HTTP API (docs/SERVER.md).
    Server(cmd::server::ServerArgs),
    /// Check a project file's source and destination before starting it: each finding with
    /// its fix.
    Precheck(cmd::server::PrecheckArgs),
    /// Compare the destination with what the project promises of the source, table by table;
    /// write and apply corrections (docs/VERIFY.md). Exit 0: equal; 3: differences remain.
    Verify(cmd::verify::VerifyArgs),
    /// Manage the data sources of a `sluice server`.
    Datasource(cmd::server::DatasourceArgs),
    /// Log in to a `sluice server`: prints a token for SLUICE_TOKEN (password from
    /// SLUICE_PASSWORD or standard input).
    Login(cmd::server::LoginArgs),
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Capture(args) => cmd::capture::run(args),
        Command::Run(args) => cmd::run::run(args),
        Command::Status(args) => cmd::run::status(args),
        Command::Project(args) => cmd::run::project(args),
        Command::Server(args) => cmd::server::server(args),
        Command::Precheck(args) => cmd::server::precheck(args),
        Command::Verify(args) => return cmd::verify::verify(args),
        Command::Datasource(args) => cmd::server::datasource(args),
        Command::Login(args) => cmd::server::login(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // Client errors repeat their causes in their own text: show the root cause once.
            let root = e.root_cause().to_string();
            let msg = e.to_string();
            if msg.contains(&root) {
                eprintln!("error: {msg}");
            } else {
                eprintln!("error: {msg}\n  cause: {root}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}
