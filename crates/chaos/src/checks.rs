//! The checks after each scenario: the feed is gap-free and duplicate-free, each application's
//! events form a consistent chain, and the state they leave equals what the sandbox serves.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// An application as the feed's events leave it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct FeedState {
    stage: Option<String>,
    outcome: Option<String>,
    job: Option<String>,
    deleted: bool,
}

fn text(value: &Value) -> Option<String> {
    value.as_str().map(str::to_owned)
}

/// Problems with the feed itself and with each application's chain of events. Answers the
/// states the chains end in, keyed by (integration, application).
fn check_chains(
    events: &[Value],
    problems: &mut Vec<String>,
) -> BTreeMap<(String, String), FeedState> {
    let mut ids = BTreeSet::new();
    for (index, event) in events.iter().enumerate() {
        let sequence = event["sequence"].as_i64().unwrap_or(-1);
        let expected = i64::try_from(index).unwrap_or(i64::MAX) + 1;
        if sequence != expected {
            problems.push(format!(
                "sequence gap: event #{expected} of the feed has sequence {sequence}"
            ));
            break;
        }
    }
    for event in events {
        let id = event["id"].as_str().unwrap_or_default().to_owned();
        if !ids.insert(id.clone()) {
            problems.push(format!("event id {id} appears twice"));
        }
    }

    let mut states: BTreeMap<(String, String), FeedState> = BTreeMap::new();
    for event in events {
        let kind = event["type"].as_str().unwrap_or_default();
        if !kind.starts_with("application.") {
            continue;
        }
        let key = (
            text(&event["integration"]["id"]).unwrap_or_default(),
            text(&event["application"]["id"]).unwrap_or_default(),
        );
        let sequence = event["sequence"].as_i64().unwrap_or(-1);
        let data = &event["data"];
        let who = format!("{}/{} (#{sequence} {kind})", key.0, key.1);
        if matches!(kind, "application.created" | "application.discovered") {
            if states.contains_key(&key) {
                problems.push(format!("{who}: a second baseline event"));
            }
            states.insert(
                key,
                FeedState {
                    stage: text(&data["stage"]["stage_id"]),
                    outcome: text(&data["outcome"]),
                    job: text(&event["application"]["job_id"]),
                    deleted: data["deleted"].as_bool().unwrap_or(false),
                },
            );
            continue;
        }
        let Some(state) = states.get_mut(&key) else {
            problems.push(format!("{who}: an event before the application's baseline"));
            continue;
        };
        match kind {
            "application.stage_changed" => {
                let from = text(&data["from"]["stage_id"]);
                if from.is_some() && from != state.stage {
                    problems.push(format!(
                        "{who}: moves from {from:?} but the feed left it in {:?}",
                        state.stage
                    ));
                }
                state.stage = text(&data["to"]["stage_id"]);
            }
            "application.outcome_changed" => {
                let from = text(&data["from"]);
                if from.is_some() && from != state.outcome {
                    problems.push(format!(
                        "{who}: outcome from {from:?} but the feed left it {:?}",
                        state.outcome
                    ));
                }
                state.outcome = text(&data["to"]);
            }
            "application.job_changed" => {
                let from = text(&data["from"]["id"]);
                if from.is_some() && from != state.job {
                    problems.push(format!(
                        "{who}: job from {from:?} but the feed left it in {:?}",
                        state.job
                    ));
                }
                state.job = text(&data["to"]["id"]);
            }
            "application.deleted" => {
                if state.deleted {
                    problems.push(format!("{who}: deleted twice"));
                }
                state.deleted = true;
            }
            "application.restored" => {
                if !state.deleted {
                    problems.push(format!("{who}: restored but not deleted"));
                }
                state.deleted = false;
            }
            _ => {}
        }
    }
    states
}

/// Compares the states the feed leaves with the applications the sandbox serves now
/// (`served`: integration → applications as Kombo renders them).
fn check_against_sandbox(
    states: &BTreeMap<(String, String), FeedState>,
    served: &BTreeMap<String, Vec<Value>>,
    problems: &mut Vec<String>,
) {
    let mut known = BTreeSet::new();
    for (integration, applications) in served {
        for application in applications {
            let id = text(&application["id"]).unwrap_or_default();
            let key = (integration.clone(), id);
            known.insert(key.clone());
            let who = format!("{}/{}", key.0, key.1);
            let Some(state) = states.get(&key) else {
                problems.push(format!("{who}: served by the sandbox, never in the feed"));
                continue;
            };
            let deleted = !application["remote_deleted_at"].is_null();
            if deleted != state.deleted {
                problems.push(format!(
                    "{who}: deleted in the sandbox: {deleted}, in the feed: {}",
                    state.deleted
                ));
                continue;
            }
            if deleted {
                // A deleted application's fields are no transitions (they are nulled later).
                continue;
            }
            let truth = FeedState {
                stage: text(&application["current_stage_id"]),
                outcome: text(&application["outcome"]),
                job: text(&application["job_id"]),
                deleted,
            };
            if truth != *state {
                problems.push(format!(
                    "{who}: the sandbox has {truth:?}, the feed ends in {state:?}"
                ));
            }
        }
    }
    for key in states.keys() {
        if !known.contains(key) {
            problems.push(format!(
                "{}/{}: in the feed, never served by the sandbox",
                key.0, key.1
            ));
        }
    }
}

/// Every check on a scenario's feed; answers the problems found.
pub(crate) fn check_feed(events: &[Value], served: &BTreeMap<String, Vec<Value>>) -> Vec<String> {
    let mut problems = Vec::new();
    let states = check_chains(events, &mut problems);
    check_against_sandbox(&states, served, &mut problems);
    problems
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[allow(clippy::needless_pass_by_value)] // the cases read best with `json!` inline
    fn event(sequence: i64, kind: &str, data: Value) -> Value {
        json!({
            "sequence": sequence,
            "id": format!("evt_{sequence}"),
            "type": kind,
            "integration": {"id": "i"},
            "application": {"id": "a", "job_id": "j"},
            "data": data,
        })
    }

    fn baseline() -> Value {
        event(
            1,
            "application.discovered",
            json!({"stage": {"stage_id": "s1"}, "outcome": "PENDING", "deleted": false}),
        )
    }

    fn served(stage: &str, deleted: bool) -> BTreeMap<String, Vec<Value>> {
        let deleted_at = if deleted {
            json!("2026-01-01T00:00:00.000Z")
        } else {
            Value::Null
        };
        BTreeMap::from([(
            "i".to_owned(),
            vec![json!({
                "id": "a", "current_stage_id": stage, "outcome": "PENDING", "job_id": "j",
                "remote_deleted_at": deleted_at,
            })],
        )])
    }

    #[test]
    fn a_consistent_feed_equal_to_the_sandbox_has_no_problem() {
        let events = [
            baseline(),
            event(
                2,
                "application.stage_changed",
                json!({"from": {"stage_id": "s1"}, "to": {"stage_id": "s2"}}),
            ),
        ];
        assert_eq!(
            check_feed(&events, &served("s2", false)),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_move_counted_twice_breaks_the_chain() {
        // A→C, then a stale A→B, B→C: the second move does not start where the first ended.
        let events = [
            baseline(),
            event(
                2,
                "application.stage_changed",
                json!({"from": {"stage_id": "s1"}, "to": {"stage_id": "s3"}}),
            ),
            event(
                3,
                "application.stage_changed",
                json!({"from": {"stage_id": "s1"}, "to": {"stage_id": "s2"}}),
            ),
            event(
                4,
                "application.stage_changed",
                json!({"from": {"stage_id": "s2"}, "to": {"stage_id": "s3"}}),
            ),
        ];
        let problems = check_feed(&events, &served("s3", false));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("moves from"), "{problems:?}");
    }

    #[test]
    fn gaps_duplicates_double_deletes_and_drift_are_all_reported() {
        let mut duplicate = event(3, "application.deleted", json!({}));
        duplicate["id"] = json!("evt_1");
        let events = [
            baseline(),
            event(2, "application.deleted", json!({})),
            duplicate,
            event(5, "application.restored", json!({})),
        ];
        let problems = check_feed(&events, &served("s9", false));
        let joined = problems.join("\n");
        assert!(joined.contains("sequence gap"), "{joined}");
        assert!(joined.contains("appears twice"), "{joined}");
        assert!(joined.contains("deleted twice"), "{joined}");
        assert!(joined.contains("the sandbox has"), "{joined}");
    }

    #[test]
    fn an_application_missing_from_the_feed_is_reported() {
        let problems = check_feed(&[], &served("s1", false));
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("never in the feed"));
    }
}
