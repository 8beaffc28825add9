//! The stagewatch binary's library: configuration, the command line, telemetry, the sync
//! workers, the demo and the wiring of the domain to its adapters. `main.rs` only parses the
//! command line and calls [`run`].

pub mod cli;
pub mod commands;
pub mod config;
pub mod delivery;
pub mod demo;
pub mod http;
pub mod rejection_reasons;
pub mod shutdown;
pub mod telemetry;
pub mod wiring;
pub mod worker;

pub use commands::run;
