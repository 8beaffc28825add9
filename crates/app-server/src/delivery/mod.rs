//! Outbound webhooks: the delivery worker that drains the outbox to the product's endpoints,
//! signed per the Standard Webhooks specification, retried on an exponential schedule.

pub mod schedule;
pub mod sign;
mod worker;

pub use worker::Deliverer;
