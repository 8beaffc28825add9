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
        Ok(self.kept_or_read(ats, integration).await?.0)
    }

    /// Like [`Self::get`], and whether the list was just read from Kombo.
    async fn kept_or_read(
        &self,
        ats: &dyn AtsGateway,
        integration: &IntegrationId,
    ) -> Result<(Arc<Vec<RejectionReason>>, bool), AtsError> {
        let kept = self
            .lists
            .lock()
            .expect("the cache lock is never poisoned")
            .get(integration)
            .filter(|(read_at, _)| read_at.elapsed() < REJECTION_REASONS_TTL)
            .map(|(_, reasons)| Arc::clone(reasons));
        match kept {
            Some(reasons) => Ok((reasons, false)),
            None => Ok((self.refresh(ats, integration).await?, true)),
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
    /// lacks it (a reason added in the ATS since); Kombo is read at most once. `None` when
    /// Kombo does not list it.
    pub async fn find(
        &self,
        ats: &dyn AtsGateway,
        integration: &IntegrationId,
        id: &str,
    ) -> Result<Option<RejectionReason>, AtsError> {
        let named = |reasons: &[RejectionReason]| reasons.iter().find(|r| r.id == id).cloned();
        let (reasons, just_read) = self.kept_or_read(ats, integration).await?;
        if let Some(reason) = named(&reasons) {
            return Ok(Some(reason));
        }
        if just_read {
            return Ok(None);
        }
        Ok(named(&self.refresh(ats, integration).await?))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use domain::ports::{MockAtsGateway, Page};

    use super::*;

    /// A Kombo that lists one reason, `rr-1`, and counts its reads.
    fn kombo(reads: &Arc<AtomicU32>) -> MockAtsGateway {
        let reads = Arc::clone(reads);
        let mut ats = MockAtsGateway::new();
        ats.expect_fetch_rejection_reasons().returning(move |_, _| {
            reads.fetch_add(1, Ordering::SeqCst);
            Ok(Page::last(vec![RejectionReason {
                id: "rr-1".into(),
                remote_id: None,
                name: Some("Not a fit".into()),
            }]))
        });
        ats
    }

    #[tokio::test]
    async fn kombo_is_read_once_per_lookup_at_most() {
        let reads = Arc::new(AtomicU32::new(0));
        let ats = kombo(&reads);
        let integration = IntegrationId::parse("greenhouse:acme").unwrap();
        let cache = RejectionReasonCache::default();

        // Nothing kept: one read, and an id it does not list is not read for again.
        assert_eq!(cache.find(&ats, &integration, "rr-9").await.unwrap(), None);
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        // Kept: a listed id costs nothing; an unlisted one one fresh read.
        let found = cache.find(&ats, &integration, "rr-1").await.unwrap();
        assert_eq!(found.map(|r| r.id), Some("rr-1".to_owned()));
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        assert_eq!(cache.find(&ats, &integration, "rr-9").await.unwrap(), None);
        assert_eq!(reads.load(Ordering::SeqCst), 2);
    }
}
