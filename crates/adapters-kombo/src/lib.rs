//! The Kombo ATS API client that implements the domain's `AtsGateway` port.
//!
//! The wire types under [`generated`] come from Kombo's JSON Schemas (`cargo xtask codegen`).

#[allow(
    missing_docs,
    clippy::doc_markdown,
    clippy::struct_excessive_bools,
    clippy::too_many_lines,
    clippy::enum_variant_names
)]
pub mod generated;
