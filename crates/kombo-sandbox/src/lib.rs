//! A faithful simulation of Kombo's unified ATS API, served on loopback.
//!
//! It speaks Kombo's wire format (the objects and envelopes of the JSON Schemas in
//! `kombo-schemas`), authenticates like Kombo, paginates with opaque cursors, applies every
//! documented filter, and moves seeded hiring activity along: stage moves, hires, rejections,
//! withdrawals, deletions, stage renames and more. Every change lands in a ground-truth log
//! that tests compare a consumer's view against. Faults (rate limits, 5xx, slow responses,
//! dropped connections, truncated bodies, expired cursors, duplicate webhooks) can be switched
//! on per endpoint, integration, schedule or probability, and signed `data-changed` webhooks go
//! out after changes.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kombo_sandbox::SandboxError> {
//! use kombo_sandbox::{Sandbox, SandboxConfig};
//! let sandbox = Sandbox::start(SandboxConfig::showcase(42, 5, 20).with_manual_clock()).await?;
//! let handle = sandbox.handle();
//! let changes = handle.advance(10);
//! println!("{} at {} (key {})", changes.len(), sandbox.base_url(), sandbox.api_key());
//! sandbox.shutdown().await;
//! # Ok(()) }
//! ```

mod activity;
mod api;
mod config;
mod control;
mod errors;
mod faults;
mod gate;
mod model;
mod query;
mod rate_window;
mod remote_data;
mod server;
mod truth;
mod webhooks;
mod wire;
mod world;

pub use config::{AtsProfile, IntegrationConfig, SandboxConfig};
pub use faults::{Endpoint, Fault, FaultRule, Trigger};
pub use query::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
pub use rate_window::RateLimit;
pub use server::{RunningSandbox, Sandbox, SandboxError, SandboxHandle};
pub use truth::{TruthChange, TruthEntry};
pub use webhooks::{SIGNATURE_HEADER, sign};
