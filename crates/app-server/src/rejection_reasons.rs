//! The ATS's rejection reasons per integration, kept for a while: they change rarely, a
//! rejection checks its reason against them, and a console lists them for every rejection.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use domain::ports::{AtsError, AtsGateway};
use domain::{IntegrationId, RejectionReason};

/// How long a list read from Kombo is served before it is read again.
pub const REJECTION_REASONS_TTL: Duration = Duration::from_secs(10 * 60);

/// One integration's reasons and when they were read.
type KeptList = (Instant, Arc<Vec<RejectionReason>>);

/// Rejection reasons by integration, each list read from Kombo at most once per TTL.
#[derive(Debug, Default)]
pub struct RejectionReasonCache {
    lists: Mutex<HashMap<IntegrationId, KeptList>>,
}

impl RejectionReasonCache {
    /// The integration's reasons: kept ones while fresh, else read from Kombo.
    pub async fn get(
        &self,
        ats: &dyn AtsGateway,
        integration: &IntegrationId,
    ) -> Result<Arc<Vec<RejectionReason>>, AtsError> {
        let kept = self
            .lists
            .lock()
            .expect("the cache lock is never poisoned")
            .get(integration)
            .filter(|(read_at, _)| read_at.elapsed() < REJECTION_REASONS_TTL)
            .map(|(_, reasons)| Arc::clone(reasons));
        match kept {
            Some(reasons) => Ok(reasons),
            None => self.refresh(ats, integration).await,
        }
    }

    /// Reads the integration's reasons from Kombo and keeps them.
    pub async fn refresh(
        &self,
        ats: &dyn AtsGateway,
        integration: &IntegrationId,
    ) -> Result<Arc<Vec<RejectionReason>>, AtsError> {
        let reasons = Arc::new(domain::actions::rejection_reasons(ats, integration).await?);
        let mut lists = self.lists.lock().expect("the cache lock is never poisoned");
        // Expired lists of other integrations go too, so the map never outgrows the integrations
        // in use.
        lists.retain(|_, (read_at, _)| read_at.elapsed() < REJECTION_REASONS_TTL);
        lists.insert(integration.clone(), (Instant::now(), Arc::clone(&reasons)));
        Ok(reasons)
    }

    /// The reason with this id: from the kept list, or from a fresh one when the kept list
    /// lacks it (a reason added in the ATS since). `None` when Kombo does not list it.
    pub async fn find(
        &self,
        ats: &dyn AtsGateway,
        integration: &IntegrationId,
        id: &str,
    ) -> Result<Option<RejectionReason>, AtsError> {
        let named = |reasons: &[RejectionReason]| reasons.iter().find(|r| r.id == id).cloned();
        if let Some(reason) = named(&self.get(ats, integration).await?) {
            return Ok(Some(reason));
        }
        Ok(named(&self.refresh(ats, integration).await?))
    }
}
