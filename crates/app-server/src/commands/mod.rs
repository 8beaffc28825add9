//! One module per command of the CLI.

mod api_key;
mod config_check;
pub(crate) mod integrations;
mod migrate;
mod serve;
mod sync;

use std::io::Write;

use crate::cli::{Cli, Command, ConfigCommand};
use crate::config::ConfigSource;
use crate::telemetry;

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let source = ConfigSource { file: cli.config };
    match cli.command {
        Command::Config(ConfigCommand::Check) => return config_check::run(&source),
        Command::ApiKey(command) => return api_key::run(&command),
        Command::Openapi => {
            let document = crate::http::openapi::document_json();
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(document.as_bytes())?;
            return Ok(());
        }
        _ => {}
    }
    let settings = source.load()?;
    match cli.command {
        Command::Demo(args) => crate::demo::run(settings, args).await,
        command => {
            telemetry::init_tracing(&settings.log);
            match command {
                Command::Serve => serve::run(settings).await,
                Command::Migrate(args) => migrate::run(&settings, &args).await,
                Command::Sync(args) => sync::run(&settings, &args).await,
                Command::Integrations(command) => integrations::run(&settings, command).await,
                Command::Config(_) | Command::Demo(_) | Command::ApiKey(_) | Command::Openapi => {
                    unreachable!("handled above")
                }
            }
        }
    }
}

/// Writes command output (tables, summaries) to stdout; logs go to stderr.
pub(crate) fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{text}");
}
