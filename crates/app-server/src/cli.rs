//! The command line: what each command does, in `--help`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// stagewatch: change events for the job applications you submitted through Kombo.
///
/// Configuration comes from built-in defaults, then `stagewatch.toml` (or the file given with
/// `--config`), then `STAGEWATCH_*` environment variables; `stagewatch config check` shows the
/// result.
#[derive(Debug, Parser)]
#[command(name = "stagewatch", version, about, long_about)]
pub struct Cli {
    /// Configuration file to read instead of `./stagewatch.toml`.
    #[arg(long, global = true, env = "STAGEWATCH_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the HTTP API and the workers (sync and webhook delivery) until SIGINT or SIGTERM.
    Serve,
    /// Applies pending database migrations, then exits.
    Migrate(MigrateArgs),
    /// Runs one sync pass for one integration in the foreground, with progress and a summary,
    /// under the integration's lease (refused, naming the holder, while another process syncs it).
    Sync(SyncArgs),
    /// Tries stagewatch with no setup: a simulated Kombo, an embedded database in a temporary
    /// folder, applications created and tracked, every change printed as it is detected.
    Demo(DemoArgs),
    /// Registers and inspects the Kombo integrations stagewatch tracks.
    #[command(subcommand)]
    Integrations(IntegrationsCommand),
    /// Inspects the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Creates API keys for the HTTP API.
    #[command(subcommand, name = "api-key")]
    ApiKey(ApiKeyCommand),
    /// Prints the OpenAPI document of the HTTP API.
    #[command(hide = true)]
    Openapi,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Then recount the funnel totals from the stored applications and stays: after an upgrade
    /// during which replicas of a version without them (before 2026-12-05) kept writing.
    #[arg(long)]
    pub recount_funnel_totals: bool,
}

#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Prints a new random API key and the hash to add to `api.key_hashes`.
    New,
    /// Prints the hash of an existing key (read from stdin) for `api.key_hashes`.
    Hash,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Kombo integration id, e.g. `greenhouse:8Ft2nQ9cLuo7Wd…`.
    #[arg(long, value_name = "ID")]
    pub integration: String,
    /// Read every application, deleted ones included, instead of those changed since the last
    /// pass.
    #[arg(long)]
    pub full: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Seed of the simulated hiring activity; the same seed replays the same story.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Time between two steps of simulated activity.
    #[arg(long, default_value = "500ms", value_parser = humantime::parse_duration)]
    pub tick: Duration,
    /// Stop by itself after this long (otherwise on Ctrl-C).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Address of stagewatch's HTTP API during the demo.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Keep the demo's database in this folder instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum IntegrationsCommand {
    /// Starts tracking a Kombo integration; its first pass runs at once.
    Add(AddIntegrationArgs),
    /// Lists integrations with their status, capabilities and sync health.
    List,
    /// Releases deletions held by the mass-deletion guard after you checked they are real.
    ConfirmDeletions {
        /// Kombo integration id.
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct AddIntegrationArgs {
    /// Kombo integration id.
    pub id: String,
    /// The ATS (Kombo's tool name), for display; taken from the id's prefix when omitted.
    #[arg(long)]
    pub tool: Option<String>,
    /// A name for people, e.g. the customer's.
    #[arg(long)]
    pub label: Option<String>,
    /// Time between passes for this integration, overriding `sync.poll_interval`.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub poll_interval: Option<Duration>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Prints the effective configuration, secrets masked, with where each value came from.
    Check,
}
