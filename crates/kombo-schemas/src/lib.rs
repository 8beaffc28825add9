//! Kombo's JSON Schemas: one per object stagewatch reads or writes, taken from the models of
//! Kombo's official Python SDK (PyPI `kombo`, pinned in `extract-schemas.py`), with the
//! properties and required ones of Kombo's public OpenAPI document where the two differ.
//!
//! The files under `schemas/` are the source of truth for the Kombo adapter's generated wire
//! types and for the sandbox's conformance tests. Regenerate them with `cargo xtask schemas`.

/// One schema file.
#[derive(Debug, Clone, Copy)]
pub struct Schema {
    /// The file name without `.json`, e.g. `get-ats-applications.response`.
    pub name: &'static str,
    /// The JSON Schema document.
    pub json: &'static str,
}

macro_rules! schema {
    ($name:literal) => {
        Schema {
            name: $name,
            json: include_str!(concat!("../schemas/", $name, ".json")),
        }
    };
}

/// Every schema, by name.
pub const ALL: &[Schema] = &[
    schema!("error.ats"),
    schema!("get-ats-application-stages.response"),
    schema!("get-ats-applications.response"),
    schema!("get-ats-jobs.response"),
    schema!("get-ats-rejection-reasons.response"),
    schema!("get-check-api-key.response"),
    schema!("get-integrations-integration-id.response"),
    schema!("post-ats-applications-application-id-reject.request"),
    schema!("post-ats-applications-application-id-reject.response"),
    schema!("post-ats-import-tracked-application.request"),
    schema!("post-ats-import-tracked-application.response"),
    schema!("post-ats-jobs-job-id-applications.request"),
    schema!("post-ats-jobs-job-id-applications.response"),
    schema!("put-ats-applications-application-id-stage.request"),
    schema!("put-ats-applications-application-id-stage.response"),
    schema!("query-parameters"),
    schema!("webhook.data-changed"),
    schema!("webhook.integration-created"),
    schema!("webhook.integration-deleted"),
    schema!("webhook.integration-state-changed"),
];

/// The schema named `name`, if there is one.
pub fn get(name: &str) -> Option<&'static str> {
    ALL.iter()
        .find(|schema| schema.name == name)
        .map(|schema| schema.json)
}

/// The folder holding the schema files, for tools that read them from disk.
pub fn dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_listed_and_every_listed_file_exists() {
        let mut on_disk: Vec<String> = std::fs::read_dir(dir())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let listed: Vec<&str> = ALL.iter().map(|schema| schema.name).collect();
        assert_eq!(on_disk, listed);
    }

    #[test]
    fn lookup_by_name() {
        assert!(
            get("get-ats-applications.response")
                .unwrap()
                .contains("\"$defs\"")
        );
        assert!(get("no-such-schema").is_none());
    }
}
