use std::io::Read;

use super::out;
use crate::cli::ApiKeyCommand;
use crate::http::auth::{generate_key, hash_key};

/// `stagewatch api-key new|hash`.
pub(super) fn run(command: &ApiKeyCommand) -> anyhow::Result<()> {
    match command {
        ApiKeyCommand::New => {
            let key = generate_key();
            out(&format!(
                "API key (give it to the caller; it is not stored): {key}"
            ));
            out(&format!(
                "add to api.key_hashes:                          \"{}\"",
                hash_key(&key)
            ));
        }
        ApiKeyCommand::Hash => {
            let mut key = String::new();
            std::io::stdin().read_to_string(&mut key)?;
            out(&hash_key(key.trim()));
        }
    }
    Ok(())
}
