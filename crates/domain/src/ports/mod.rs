//! The ports: what the domain needs from the outside world, as async traits that the adapters
//! implement. Each has its own error type, so an adapter's failure is translated at the boundary
//! and never leaks a `reqwest` or `sea-orm` error into the domain.
//!
//! With the `mocks` feature, mockall generates `MockAtsGateway`, `MockTrackerStore`,
//! `MockEventReader` and `MockClock`.

mod ats;
mod clock;
mod feed;
mod store;

pub use ats::*;
pub use clock::*;
pub use feed::*;
pub use store::*;
