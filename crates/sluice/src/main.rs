//! `sluice`: the one binary. Subcommands arrive with the issues that need them; until then it
//! answers `--version` and `--help` so scripts and the demo can check it is built.

use clap::Parser;

/// Change data capture and synchronization for MySQL-family databases.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about, long_about = None, arg_required_else_help = true)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    Ok(())
}
