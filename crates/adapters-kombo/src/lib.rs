//! The Kombo ATS API client that implements the domain's `AtsGateway` port.
//!
//! Not built yet: this crate holds the place of the adapter in the workspace.
