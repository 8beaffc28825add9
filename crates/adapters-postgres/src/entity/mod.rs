//! sea-orm entities: one module per table, as the migrations create them.

pub mod application;
pub mod console_session;
pub mod event;
pub mod feed_counter;
pub mod held_change;
pub mod idempotency_key;
pub mod integration;
pub mod job;
pub mod kombo_webhook;
pub mod stage;
pub mod stage_visit;
pub mod webhook_attempt;
pub mod webhook_delivery;
pub mod webhook_endpoint;
