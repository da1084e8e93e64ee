//! The librdkafka consumer context: rebalance hook and commit on revocation.

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::TopicPartitionList;
use std::sync::Arc;

/// A change of the partitions this consumer owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RebalanceEvent {
    /// Partitions given to this consumer.
    Assigned(Vec<(String, i32)>),
    /// Partitions taken away; their processed offsets were committed first.
    Revoked(Vec<(String, i32)>),
    /// The rebalance failed.
    Failed(String),
}

/// Called on every rebalance.
pub type RebalanceHook = Arc<dyn Fn(&RebalanceEvent) + Send + Sync>;

pub(crate) struct Context {
    pub hook: Option<RebalanceHook>,
    pub metrics: crate::metrics::ConsumerMetrics,
}

fn list(tpl: &TopicPartitionList) -> Vec<(String, i32)> {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_owned(), e.partition()))
        .collect()
}

impl ClientContext for Context {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        crate::logging::librdkafka_log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        crate::logging::librdkafka_error(&error, reason);
    }

    fn stats_raw(&self, raw: &[u8]) {
        if let Some(stats) = crate::metrics::stats::Stats::parse(raw) {
            self.metrics.update(&stats);
        }
    }
}

impl ConsumerContext for Context {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            // Commit what was processed so the next owner resumes right after it.
            match consumer.commit_consumer_state(CommitMode::Sync) {
                Ok(()) => {}
                Err(e) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::NoOffset) => {}
                Err(e) => tracing::warn!(error = %e, "commit before revocation failed"),
            }
            if let Some(hook) = &self.hook {
                hook(&RebalanceEvent::Revoked(list(tpl)));
            }
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let event = match rebalance {
            Rebalance::Assign(tpl) => RebalanceEvent::Assigned(list(tpl)),
            Rebalance::Revoke(_) => return,
            Rebalance::Error(e) => RebalanceEvent::Failed(e.to_string()),
        };
        tracing::info!(?event, "rebalance");
        if let Some(hook) = &self.hook {
            hook(&event);
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) => {
                self.metrics.committed(true);
                tracing::debug!(partitions = offsets.count(), "offsets committed");
            }
            Err(e) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::NoOffset) => {}
            Err(e) => {
                self.metrics.committed(false);
                tracing::warn!(error = %e, "offset commit failed");
            }
        }
    }
}
