//! The storage contract: every test runs against PostgreSQL (a fresh database per test) and
//! against SQLite (a fresh file), through the same public API.

mod support;

mod feed;
mod fencing;
mod funnel;
mod funnel_totals;
mod integrations;
mod leases;
mod migrations;
mod pages;
mod reads;
mod retention;
mod sync;
mod webhooks;
