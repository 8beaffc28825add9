//! Validated identifiers. Every id that crosses a boundary is parsed once into one of these
//! newtypes, so a blank or oversized id cannot reach the rules or the store.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest id accepted. Kombo's ids are short (`greenhouse:8Aq…`); remote ids from some ATS are
/// composite but stay far below this.
pub const MAX_ID_LEN: usize = 512;

/// Why a string was refused as an id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{kind} must not be empty")]
    Empty { kind: &'static str },
    #[error("{kind} is {len} characters long; at most {MAX_ID_LEN} are accepted")]
    TooLong { kind: &'static str, len: usize },
    #[error("{kind} must not contain whitespace or control characters")]
    InvalidCharacter { kind: &'static str },
    #[error("{kind} must be printable ASCII, as Kombo's are (`tool:…`)")]
    NotAscii { kind: &'static str },
}

/// Which characters an id may hold beyond the common rule.
#[derive(Clone, Copy)]
enum Alphabet {
    /// Anything but whitespace and control characters: ids the ATS chose.
    Unicode,
    /// Visible ASCII only: ids stagewatch sends back to Kombo in an HTTP header.
    HeaderSafe,
}

fn validate(kind: &'static str, value: &str, alphabet: Alphabet) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::Empty { kind });
    }
    // Characters, not bytes: the limit the API documents (JSON Schema's `maxLength`).
    let len = value.chars().count();
    if len > MAX_ID_LEN {
        return Err(IdError::TooLong { kind, len });
    }
    // The byte order mark is whitespace to JSON Schema's `\s`, which documents this rule.
    if value
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '\u{feff}')
    {
        return Err(IdError::InvalidCharacter { kind });
    }
    if matches!(alphabet, Alphabet::HeaderSafe) && !value.is_ascii() {
        return Err(IdError::NotAscii { kind });
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident, $kind:literal) => {
        id_type!($(#[$meta])* $name, $kind, Alphabet::Unicode);
    };
    ($(#[$meta:meta])* $name:ident, $kind:literal, $alphabet:expr) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses an id, refusing empty, oversized or whitespace-carrying values.
            pub fn parse(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                validate($kind, &value, $alphabet)?;
                Ok(Self(value))
            }

            /// The id as Kombo (or stagewatch) spells it.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, IdError> {
                Self::parse(value)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(value: &str) -> Result<Self, IdError> {
                Self::parse(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }
    };
}

id_type!(
    /// One customer's ATS connection in Kombo, e.g. `greenhouse:8AqXq3Rk…`. Sent to Kombo as
    /// the `X-Integration-Id` header, so ASCII only.
    IntegrationId,
    "integration id",
    Alphabet::HeaderSafe
);
id_type!(
    /// Kombo's id of an application; unique per model across integrations.
    ApplicationId,
    "application id"
);
id_type!(
    /// Kombo's id of a job.
    JobId,
    "job id"
);
id_type!(
    /// Kombo's id of a stage in a job's pipeline.
    StageId,
    "stage id"
);
id_type!(
    /// Kombo's id of a candidate.
    CandidateId,
    "candidate id"
);
id_type!(
    /// The id the ATS itself uses for a record (Kombo's `remote_id`). Kept beside Kombo's id;
    /// never used as a key, since some ATS compose it from several values.
    RemoteId,
    "remote id"
);
id_type!(
    /// A change event's id: `evt_` followed by 32 hex digits derived from what the event says,
    /// so detecting the same change twice yields the same id.
    EventId,
    "event id"
);

impl IntegrationId {
    /// The ATS tool named by the id's prefix (`greenhouse` in `greenhouse:8Aq…`), if it has one.
    pub fn tool(&self) -> Option<&str> {
        self.0
            .split_once(':')
            .map(|(tool, _)| tool)
            .filter(|tool| !tool.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_kombo_ids() {
        let id = IntegrationId::parse("greenhouse:8AqXq3RkP1").unwrap();
        assert_eq!(id.as_str(), "greenhouse:8AqXq3RkP1");
        assert_eq!(id.tool(), Some("greenhouse"));
    }

    #[test]
    fn parse_refuses_blank_and_whitespace() {
        assert_eq!(
            ApplicationId::parse(""),
            Err(IdError::Empty {
                kind: "application id"
            })
        );
        assert_eq!(
            JobId::parse("26v 1"),
            Err(IdError::InvalidCharacter { kind: "job id" })
        );
        assert!(StageId::parse("x\n").is_err());
    }

    #[test]
    fn parse_refuses_oversized_ids() {
        let long = "a".repeat(MAX_ID_LEN + 1);
        assert!(
            matches!(CandidateId::parse(long), Err(IdError::TooLong { len, .. }) if len == MAX_ID_LEN + 1)
        );
        assert!(CandidateId::parse("a".repeat(MAX_ID_LEN)).is_ok());
    }

    #[test]
    fn integration_ids_are_ascii_other_ids_need_not_be() {
        assert_eq!(
            IntegrationId::parse("greenhouse:Zürich"),
            Err(IdError::NotAscii {
                kind: "integration id"
            })
        );
        assert!(ApplicationId::parse("Zürich-17").is_ok());
    }

    #[test]
    fn tool_is_absent_without_prefix() {
        assert_eq!(IntegrationId::parse("plain").unwrap().tool(), None);
        assert_eq!(IntegrationId::parse(":x").unwrap().tool(), None);
    }

    #[test]
    fn deserialization_validates() {
        let ok: Result<JobId, _> = serde_json::from_str("\"26v\"");
        assert!(ok.is_ok());
        let err: Result<JobId, _> = serde_json::from_str("\"\"");
        assert!(err.unwrap_err().to_string().contains("must not be empty"));
    }
}
