use figment::Figment;
use serde_json::Value;

use super::Settings;

/// Keys whose values are never shown.
const SECRET_KEYS: [&str; 2] = ["kombo.api_key", "kombo.webhook_secret"];
/// Keys whose values are URLs that may carry a password.
const URL_KEYS: [&str; 1] = ["database.url"];

/// One line of `stagewatch config check`: an effective value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigLine {
    pub key: String,
    /// The value as TOML would spell it, secrets masked.
    pub value: String,
    /// `default`, the file it was read from, or the environment variable that set it.
    pub source: String,
}

/// Every effective key, with secrets masked and the source of each value.
pub fn describe(settings: &Settings, figment: &Figment) -> Vec<ConfigLine> {
    let tree = serde_json::to_value(settings).expect("settings serialize to JSON");
    let mut lines = Vec::new();
    flatten("", &tree, &mut lines);
    for line in &mut lines {
        if SECRET_KEYS.contains(&line.key.as_str()) {
            line.value = mask(&line.value);
        } else if URL_KEYS.contains(&line.key.as_str()) {
            line.value = mask_url_password(&line.value);
        }
        line.source = source_of(figment, &line.key);
    }
    lines
}

fn flatten(prefix: &str, value: &Value, lines: &mut Vec<ConfigLine>) {
    if let Value::Object(map) = value {
        for (name, child) in map {
            let key = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            flatten(&key, child, lines);
        }
    } else {
        lines.push(ConfigLine {
            key: prefix.to_owned(),
            value: value.to_string(),
            source: String::new(),
        });
    }
}

fn mask(value: &str) -> String {
    if value == "\"\"" {
        "\"\" (not set)".to_owned()
    } else {
        "\"********\"".to_owned()
    }
}

fn mask_url_password(value: &str) -> String {
    let Ok(mut url) = url::Url::parse(value.trim_matches('"')) else {
        return value.to_owned();
    };
    if url.password().is_some() {
        let _ = url.set_password(Some("********"));
    }
    format!("\"{url}\"")
}

fn source_of(figment: &Figment, key: &str) -> String {
    let Some(metadata) = figment.find_metadata(key) else {
        return "default".to_owned();
    };
    match &metadata.source {
        Some(figment::Source::File(path)) => path.display().to_string(),
        Some(figment::Source::Code(_)) => "default".to_owned(),
        Some(other) => other.to_string(),
        None if metadata.name.contains("environment") => format!(
            "environment variable {}{}",
            super::ENV_PREFIX,
            key.to_uppercase().replace('.', "__")
        ),
        None => "default".to_owned(),
    }
}
