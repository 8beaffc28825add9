//! `kombo-sandbox`: serves a simulated Kombo ATS API on loopback and prints how to reach it.

// Rendering pages makes many small short-lived allocations, where mimalloc is much cheaper than
// glibc's allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use kombo_sandbox::{Sandbox, SandboxConfig};

#[derive(Debug, Parser)]
#[command(
    name = "kombo-sandbox",
    about = "A simulated Kombo ATS API with seeded hiring activity"
)]
struct Args {
    /// Seed of every random choice: same seed, same history.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Port to listen on (overrides the port of --listen; 0 picks a free one).
    #[arg(long)]
    port: Option<u16>,
    /// Number of identical full-support integrations; without it, one integration per ATS profile.
    #[arg(long)]
    integrations: Option<usize>,
    /// Jobs per integration.
    #[arg(long, default_value_t = 5)]
    jobs: usize,
    /// Tracked applications per job.
    #[arg(long, default_value_t = 20)]
    applications: usize,
    /// Advance the simulation one step this often (e.g. `1s`, `250ms`); without it, only the
    /// control API moves it.
    #[arg(long, value_parser = humantime::parse_duration)]
    tick: Option<Duration>,
    /// Post signed Kombo webhooks to this URL.
    #[arg(long, requires = "webhook_secret")]
    webhook_url: Option<String>,
    /// The secret webhooks are signed with.
    #[arg(long, env = "KOMBO_SANDBOX_WEBHOOK_SECRET", requires = "webhook_url")]
    webhook_secret: Option<String>,
    /// Kombo's rate limit: this many requests per `--rate-window` for the API key, then 429
    /// (default 10 000 per 10 s; Kombo documents 300 per minute as an example).
    #[arg(long)]
    rate_limit: Option<u64>,
    /// The rate limit's window (e.g. `60s`).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    rate_window: Duration,
    /// Hold every API answer this long (e.g. `100ms`), as a remote Kombo's take a network
    /// round trip; immediate without it.
    #[arg(long, value_parser = humantime::parse_duration)]
    answer_time: Option<Duration>,
    /// The API key to accept (default: derived from the seed).
    #[arg(long, env = "KOMBO_SANDBOX_API_KEY")]
    api_key: Option<String>,
    /// Serve each record's raw ATS object (about 1 KB per application) as `remote_data`, as for
    /// a customer whose Kombo plan includes it; `null` without this.
    #[arg(long)]
    remote_data: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let mut config = match args.integrations {
        Some(count) => SandboxConfig::uniform(args.seed, count, args.jobs, args.applications),
        None => SandboxConfig::showcase(args.seed, args.jobs, args.applications),
    };
    if let Some(api_key) = args.api_key {
        config = config.with_api_key(api_key);
    }
    if args.remote_data {
        config = config.with_remote_data();
    }
    if let Some(limit) = args.rate_limit {
        config = config.with_rate_limit(limit, args.rate_window);
    }
    if let Some(answer_time) = args.answer_time {
        config = config.with_answer_time(answer_time);
    }
    let mut listen = args.listen;
    if let Some(port) = args.port {
        listen.set_port(port);
    }
    config = config.with_listen(listen);
    if let Some(every) = args.tick {
        config = config.with_tick(every);
    }
    if let (Some(url), Some(secret)) = (args.webhook_url, args.webhook_secret) {
        config = config.with_webhook(url, secret);
    }
    let sandbox = Sandbox::start(config)
        .await
        .context("starting the sandbox")?;

    // Machine-readable lines on stdout, so scripts can start the binary and read where it is.
    let mut out = std::io::stdout().lock();
    writeln!(out, "KOMBO_SANDBOX_URL={}", sandbox.base_url())?;
    writeln!(out, "KOMBO_SANDBOX_CONTROL_URL={}", sandbox.control_url())?;
    writeln!(out, "KOMBO_API_KEY={}", sandbox.api_key())?;
    writeln!(
        out,
        "KOMBO_INTEGRATION_IDS={}",
        sandbox.integration_ids().join(",")
    )?;
    out.flush()?;
    drop(out);

    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    sandbox.shutdown().await;
    Ok(())
}
