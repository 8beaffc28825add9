//! `stagewatch`: see `stagewatch --help`.

// JSON pages and rows make many small short-lived allocations, where mimalloc is much cheaper than
// glibc's allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = app_server::cli::Cli::parse();
    match app_server::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // Logs may not be set up yet (a configuration error), so the reason goes to stderr.
            #[allow(clippy::print_stderr)]
            {
                eprintln!("error: {error:#}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}
