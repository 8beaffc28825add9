//! The rules the handlers enforce on ids and strings, written into the OpenAPI document, so
//! that a client generated from it (or a fuzzer) knows which values are accepted before it
//! sends them: the document describes the API as it behaves.

use serde_json::{Value, json};

/// The end of the value, for a pattern. Not `$`: in some regex dialects (Python's, which API
/// fuzzers and validators use) `$` also matches before a final line break, so a value with a
/// trailing newline would pass for valid. A negative lookahead means the same in ECMA-262 and
/// everywhere else.
pub(super) const END: &str = r"(?![\s\S])";

/// Every id (`domain::ids`): 1 to `MAX_ID_LEN` characters, none of them whitespace or control.
fn id_rules() -> Value {
    json!({
        "minLength": 1,
        "maxLength": domain::ids::MAX_ID_LEN,
        "pattern": format!(r"^[^\s\u0000-\u001F\u007F-\u009F]*{END}"),
    })
}

/// An integration id: also visible ASCII, since it travels to Kombo in a header.
fn integration_id_rules() -> Value {
    json!({
        "minLength": 1,
        "maxLength": domain::ids::MAX_ID_LEN,
        "pattern": format!("^[!-~]*{END}"),
    })
}

/// A name: at least one character that is not whitespace.
fn non_blank() -> Value {
    json!({ "pattern": r"\S" })
}

/// What `validate_create` accepts as an email address: after trimming, a non-empty part before
/// the first `@` and a dot somewhere after it.
fn email() -> Value {
    json!({ "pattern": format!(r"^\s*[^@\s][^@]*@[\s\S]*\.[\s\S]*{END}") })
}

/// A webhook URL on a server that delivers only to public addresses (the default); with
/// `webhooks.allow_private_urls` any http(s) URL is taken.
fn webhook_url() -> Value {
    json!({ "format": "uri", "pattern": super::webhook_url::PATTERN })
}

/// A list of event types: each a known one.
fn event_type_list() -> Value {
    json!({ "items": { "type": "string", "enum": domain::event::EVENT_TYPES } })
}

/// What `idempotency_key` accepts: printable ASCII (spaces and tabs inside), at least one
/// visible character, at most 255 once trimmed (HTTP strips a header value's outer whitespace).
fn idempotency_key_rules() -> Value {
    json!({
        "type": "string",
        "minLength": 1,
        "maxLength": 255,
        "pattern": format!(r"^[\t\x20-\x7E]*[\x21-\x7E][\t\x20-\x7E]*{END}"),
    })
}

/// The feed's `types`: known event types joined by commas, as a string with a pattern. An array
/// with `style: form` would say the same, but `types=` would then be an empty list to one reader
/// and a list of one empty string to another.
fn event_types_parameter(parameter: &mut Value) {
    let one = format!(
        "({})",
        domain::event::EVENT_TYPES
            .iter()
            .map(|t| t.replace('.', r"\."))
            .collect::<Vec<_>>()
            .join("|")
    );
    parameter["schema"] = json!({
        "type": "string",
        // Empty too: `types=` is no filter, as an absent `types`.
        "pattern": format!("^({one}(,{one})*)?{END}"),
    });
}

/// A replay names one event or a whole time range, never both: serde sees three optional
/// fields, the handler one of two shapes.
fn replay_schema(description: &Value) -> Value {
    let date_time = json!({ "type": "string", "format": "date-time" });
    json!({
        "description": description,
        "oneOf": [
            {
                "title": "One event",
                "type": "object",
                "required": ["event_id"],
                "properties": {
                    "event_id": { "type": "string", "description": "The event's `id`, sent whatever its type." },
                    "from": { "type": "null" },
                    "to": { "type": "null" },
                },
                "additionalProperties": false,
            },
            {
                "title": "A time range",
                "type": "object",
                "required": ["from", "to"],
                "properties": {
                    "event_id": { "type": "null" },
                    "from": { "description": "Start, by `detected_at`, inclusive (after `to`, the range holds no event).", "allOf": [date_time] },
                    "to": { "description": "End, inclusive.", "allOf": [date_time] },
                },
                "additionalProperties": false,
            },
        ],
    })
}

/// Path and query parameters that are ids, by name.
const ID_PARAMETERS: &[(&str, &str)] = &[
    ("path", "application_id"),
    ("path", "job_id"),
    ("query", "job"),
    ("query", "stage"),
];

/// Adds the rules to a document serialised as JSON.
pub(super) fn annotate(document: &mut Value) {
    if let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut().filter_map(Value::as_object_mut) {
            for operation in item.values_mut() {
                let Some(parameters) = operation
                    .get_mut("parameters")
                    .and_then(Value::as_array_mut)
                else {
                    continue;
                };
                for parameter in parameters {
                    let location = parameter["in"].as_str().unwrap_or_default();
                    let name = parameter["name"].as_str().unwrap_or_default();
                    if matches!(
                        (location, name),
                        ("path", "integration_id") | ("query", "integration")
                    ) {
                        merge(&mut parameter["schema"], &integration_id_rules());
                    } else if ID_PARAMETERS.contains(&(location, name)) {
                        merge(&mut parameter["schema"], &id_rules());
                    } else if (location, name) == ("header", "Idempotency-Key") {
                        parameter["schema"] = idempotency_key_rules();
                    } else if (location, name) == ("query", "types") {
                        event_types_parameter(parameter);
                    }
                }
            }
        }
    }
    let replay = &mut document["components"]["schemas"]["Replay"];
    assert!(replay.is_object(), "the document has no schema Replay");
    *replay = replay_schema(&replay["description"]);
    let properties: [(&str, &str, Value); 13] = [
        ("RegisterIntegration", "id", integration_id_rules()),
        ("CreateApplication", "job_id", id_rules()),
        ("CreateApplication", "stage_id", id_rules()),
        ("ImportApplication", "tool", non_blank()),
        ("MoveToStage", "stage_id", id_rules()),
        ("RejectApplication", "rejection_reason_id", non_blank()),
        ("CandidateInput", "first_name", non_blank()),
        ("CandidateInput", "last_name", non_blank()),
        ("CandidateInput", "email_address", email()),
        ("CreateEndpoint", "url", webhook_url()),
        ("UpdateEndpoint", "url", webhook_url()),
        ("CreateEndpoint", "event_types", event_type_list()),
        ("UpdateEndpoint", "event_types", event_type_list()),
    ];
    for (schema, property, rules) in properties {
        let target = &mut document["components"]["schemas"][schema]["properties"][property];
        assert!(
            target.is_object(),
            "the document has no property {schema}.{property}"
        );
        merge(target, &rules);
    }
}

/// Adds `rules` to a property's schema; for an optional property (`type: [string, null]`) the
/// string rules apply to the string.
fn merge(schema: &mut Value, rules: &Value) {
    if let (Some(schema), Some(rules)) = (schema.as_object_mut(), rules.as_object()) {
        for (key, rule) in rules {
            schema.insert(key.clone(), rule.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    fn patterns(value: &Value, found: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(pattern)) = map.get("pattern") {
                    found.push(pattern.clone());
                }
                map.values().for_each(|v| patterns(v, found));
            }
            Value::Array(items) => items.iter().for_each(|v| patterns(v, found)),
            _ => {}
        }
    }

    /// A pattern anchored with `$` lets `"PENDING\n"` pass for valid where `$` may match before
    /// a final line break; a generated client or fuzzer would then send what the server refuses.
    #[test]
    fn no_pattern_in_the_document_ends_with_a_bare_dollar() {
        let document = serde_json::from_str(&super::super::openapi::document_json()).unwrap();
        let mut found = Vec::new();
        patterns(&document, &mut found);
        assert!(found.len() > 5, "the document has patterns: {found:?}");
        let loose: Vec<_> = found.iter().filter(|p| p.ends_with('$')).collect();
        assert!(loose.is_empty(), "patterns ending in `$`: {loose:?}");
    }
}
