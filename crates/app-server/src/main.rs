//! The stagewatch binary. Its commands arrive with the server; for now it only reports what it
//! is, so the workspace builds end to end.

use clap::Parser;

/// stagewatch: change events for the job applications you submitted through Kombo.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    anyhow::bail!("no command is available yet; see `stagewatch --help`")
}
