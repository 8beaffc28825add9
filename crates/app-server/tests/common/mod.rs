//! Shared harness of the app-server tests: databases on both backends, a sandbox, the wiring.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use adapters_kombo::{KomboClient, KomboConfig};

/// Each test's own database, on either backend (shared with the storage crate's tests).
pub use adapters_postgres::scratch::ScratchDatabase as TestDatabase;

/// A Kombo client for a running sandbox.
pub fn kombo_client(base_url: &str, api_key: &str) -> Arc<KomboClient> {
    let config = KomboConfig::for_local_sandbox(
        url::Url::parse(base_url).expect("sandbox URL"),
        secrecy::SecretString::from(api_key.to_owned()),
    );
    Arc::new(KomboClient::new(config).expect("client"))
}
