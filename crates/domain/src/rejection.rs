//! Rejection reasons: the ATS's own list of why an application is declined, which a rejection
//! through Kombo must name.

use serde::{Deserialize, Serialize};

use crate::ids::RemoteId;

/// One entry of `GET /ats/rejection-reasons`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectionReason {
    /// Kombo's id: what a rejection sends as `rejection_reason_id`.
    pub id: String,
    pub remote_id: Option<RemoteId>,
    /// The reason as the ATS shows it; becomes the application's `rejection_reason_name`.
    pub name: Option<String>,
}
