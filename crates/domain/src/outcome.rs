//! How an application ended, as Kombo computes it per ATS.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Kombo's `outcome` of an application. `Option<Outcome>` is used wherever the ATS cannot tell
/// (Kombo sends `null`).
///
/// A value Kombo adds after this release is kept as [`Outcome::Unrecognized`] rather than refused,
/// so syncing goes on; it is compared like any other value but has no sharp event of its own.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum Outcome {
    /// Still in process.
    Pending,
    /// Hired.
    Hired,
    /// Rejected by the employer, or withdrawn by the candidate: Kombo does not tell them apart.
    Declined,
    /// A value this release does not know, kept verbatim.
    Unrecognized(String),
}

impl Outcome {
    /// Kombo's wire spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Pending => "PENDING",
            Self::Hired => "HIRED",
            Self::Declined => "DECLINED",
            Self::Unrecognized(raw) => raw,
        }
    }

    /// Hired or declined: the application has ended.
    pub fn is_decided(&self) -> bool {
        matches!(self, Self::Hired | Self::Declined)
    }
}

impl From<String> for Outcome {
    fn from(raw: String) -> Self {
        match raw.as_str() {
            "PENDING" => Self::Pending,
            "HIRED" => Self::Hired,
            "DECLINED" => Self::Declined,
            _ => Self::Unrecognized(raw),
        }
    }
}

impl From<&str> for Outcome {
    fn from(raw: &str) -> Self {
        Self::from(raw.to_owned())
    }
}

impl From<Outcome> for String {
    fn from(outcome: Outcome) -> String {
        match outcome {
            Outcome::Unrecognized(raw) => raw,
            known => known.as_str().to_owned(),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_round_trip() {
        for (wire, outcome) in [
            ("PENDING", Outcome::Pending),
            ("HIRED", Outcome::Hired),
            ("DECLINED", Outcome::Declined),
        ] {
            assert_eq!(Outcome::from(wire), outcome);
            assert_eq!(String::from(outcome), wire);
        }
    }

    #[test]
    fn unknown_values_are_kept_not_refused() {
        let outcome: Outcome = serde_json::from_str("\"ON_HOLD\"").unwrap();
        assert_eq!(outcome, Outcome::Unrecognized("ON_HOLD".into()));
        assert!(!outcome.is_decided());
        assert_eq!(serde_json::to_string(&outcome).unwrap(), "\"ON_HOLD\"");
    }

    #[test]
    fn only_hired_and_declined_are_decided() {
        assert!(Outcome::Hired.is_decided());
        assert!(Outcome::Declined.is_decided());
        assert!(!Outcome::Pending.is_decided());
    }
}
