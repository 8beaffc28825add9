//! The Kombo ATS API client that implements the domain's `AtsGateway` port.
//!
//! - [`KomboClient`] talks to Kombo (or the sandbox) over HTTP: bearer API key, `X-Integration-Id`,
//!   rate limits, retries of reads, errors mapped from Kombo's `error.code` to [`AtsError`].
//! - `mapping` turns Kombo's wire types into the domain's entities; `query` encodes filters;
//!   `chunks` reads long id lists chunk by chunk behind one cursor.
//! - [`webhook`] verifies and parses the webhooks Kombo sends.
//! - `generated` holds the wire types, generated from Kombo's JSON Schemas by
//!   `cargo xtask codegen`.
//!
//! Only the client, its configuration and errors, and the webhook functions are public: the
//! wire types and their mapping are this crate's business.
//!
//! [`AtsError`]: domain::ports::AtsError

mod budget;
mod chunks;
mod client;
mod config;
mod error;
mod gateway;
#[allow(
    missing_docs,
    // Generated for every object the adapter reads; some (page envelopes) only document.
    dead_code,
    unreachable_pub,
    clippy::doc_markdown,
    clippy::struct_excessive_bools,
    clippy::too_many_lines,
    clippy::enum_variant_names
)]
pub(crate) mod generated;
pub(crate) mod mapping;
pub(crate) mod query;
pub mod webhook;

pub use client::KomboClient;
pub use config::{
    DEFAULT_BASE_URL, DEFAULT_REQUESTS_PER_SECOND_PER_INTEGRATION, KomboConfig,
    WRITES_IN_FLIGHT_PER_INTEGRATION,
};
pub use error::{EXCERPT_LIMIT, KomboError};
