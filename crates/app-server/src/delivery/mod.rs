//! Outbound webhooks: the delivery worker that drains the outbox to the product's endpoints,
//! signed per the Standard Webhooks specification (with the previous secret too while a
//! rotation's overlap lasts), retried on an exponential schedule, and sent only to public
//! addresses unless private ones are allowed.

pub mod address;
pub mod schedule;
pub mod sign;
mod worker;

pub use worker::{Deliverer, claim_lease};
