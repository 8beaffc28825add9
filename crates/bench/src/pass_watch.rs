//! Watches the sync passes of every replica in this process, through their `sync_pass` spans:
//! an integration whose pass starts while another of its passes is running was synced twice at
//! once, which the leases must never let happen.
//!
//! A pass is running from its span's creation until its `duration_ms` is recorded, which the
//! scheduler does before it releases the lease (the span itself closes after the release, when
//! another replica may rightly have claimed the integration already).

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Filter, Layer};
use tracing_subscriber::registry::LookupSpan;

const PASS_SPAN: &str = "sync_pass";
const INTEGRATION_FIELD: &str = "integration";
const PASS_END_FIELD: &str = "duration_ms";

static RUNNING: Mutex<Tally> = Mutex::new(Tally {
    running: BTreeMap::new(),
    started: 0,
    twice_at_once: 0,
});

struct Tally {
    /// Passes running, by integration.
    running: BTreeMap<String, usize>,
    started: u64,
    twice_at_once: u64,
}

/// Passes seen so far, and those that started while their integration was already being synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PassCount {
    pub(crate) started: u64,
    pub(crate) twice_at_once: u64,
}

pub(crate) fn count() -> PassCount {
    let tally = RUNNING.lock().unwrap_or_else(PoisonError::into_inner);
    PassCount {
        started: tally.started,
        twice_at_once: tally.twice_at_once,
    }
}

/// The layer, to install beside the log's; it sees `sync_pass` spans only.
pub(crate) fn layer<S>() -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    PassWatch.with_filter(PassSpansOnly)
}

struct PassWatch;

/// The integration a running pass syncs, kept in its span until the pass ends.
struct Running(String);

impl<S> Layer<S> for PassWatch
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attributes: &Attributes<'_>, id: &Id, context: Context<'_, S>) {
        let mut integration = IntegrationField(None);
        attributes.record(&mut integration);
        let (Some(integration), Some(span)) = (integration.0, context.span(id)) else {
            return;
        };
        let mut tally = RUNNING.lock().unwrap_or_else(PoisonError::into_inner);
        tally.started += 1;
        let running = tally.running.entry(integration.clone()).or_default();
        *running += 1;
        if *running > 1 {
            tally.twice_at_once += 1;
        }
        span.extensions_mut().insert(Running(integration));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, context: Context<'_, S>) {
        let mut end = PassEnd(false);
        values.record(&mut end);
        if end.0 {
            ended(id, &context);
        }
    }

    fn on_close(&self, id: Id, context: Context<'_, S>) {
        ended(&id, &context);
    }
}

fn ended<S>(id: &Id, context: &Context<'_, S>)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let Some(span) = context.span(id) else {
        return;
    };
    let Some(Running(integration)) = span.extensions_mut().remove::<Running>() else {
        return;
    };
    let mut tally = RUNNING.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(running) = tally.running.get_mut(&integration) {
        *running -= 1;
        if *running == 0 {
            tally.running.remove(&integration);
        }
    }
}

struct IntegrationField(Option<String>);

impl Visit for IntegrationField {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == INTEGRATION_FIELD {
            self.0 = Some(format!("{value:?}"));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == INTEGRATION_FIELD {
            self.0 = Some(value.to_owned());
        }
    }
}

/// Whether a record carries the pass's end.
struct PassEnd(bool);

impl Visit for PassEnd {
    fn record_debug(&mut self, field: &Field, _: &dyn std::fmt::Debug) {
        self.0 |= field.name() == PASS_END_FIELD;
    }
}

/// Decided once per call site: the watch costs nothing where no pass span is made.
struct PassSpansOnly;

impl<S> Filter<S> for PassSpansOnly {
    fn enabled(&self, metadata: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        is_pass_span(metadata)
    }

    fn callsite_enabled(&self, metadata: &'static Metadata<'static>) -> Interest {
        if is_pass_span(metadata) {
            Interest::always()
        } else {
            Interest::never()
        }
    }
}

fn is_pass_span(metadata: &Metadata<'_>) -> bool {
    metadata.is_span() && metadata.name() == PASS_SPAN
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    fn pass(integration: &str) -> tracing::Span {
        tracing::info_span!(
            "sync_pass",
            integration = %integration,
            duration_ms = tracing::field::Empty
        )
    }

    /// The only test of the process-wide tally, so that no other counts into it meanwhile.
    #[test]
    fn counts_a_pass_that_starts_while_its_integration_is_synced() {
        let subscriber = tracing_subscriber::registry().with(layer());
        tracing::subscriber::with_default(subscriber, || {
            let before = count();
            let first = pass("acme");
            first.record("duration_ms", 5_u64);
            // Ended (its duration recorded) though not yet closed: the lease is released then.
            let after_the_first = pass("acme");
            let elsewhere = pass("globex");
            let middle = count();
            let twice = pass("acme");
            let end = count();
            drop((first, after_the_first, elsewhere, twice));
            let closed = pass("acme");
            assert_eq!(
                (
                    middle.started - before.started,
                    middle.twice_at_once - before.twice_at_once,
                ),
                (3, 0)
            );
            assert_eq!(end.twice_at_once - before.twice_at_once, 1);
            assert_eq!(count().twice_at_once - before.twice_at_once, 1);
            drop(closed);
        });
    }
}
