//! Producer metrics: what was produced, how each record ended, how long acknowledgements took.

use super::broker::BrokerMetrics;
use super::{latency_buckets, Counter, Family, Gauge, Histogram, Metrics, Unit};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::gauge::Gauge as GaugeOf;
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// `topic` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabel {
    /// Topic name.
    pub topic: String,
}

/// Records and bytes per topic, with the per-topic counters cached so counting a record
/// allocates no label set. Clones share the same values.
#[derive(Debug, Clone, Default)]
pub(crate) struct TopicCounters {
    pub records: Family<TopicLabel, Counter>,
    pub bytes: Family<TopicLabel, Counter>,
    cache: Arc<RwLock<HashMap<String, (Counter, Counter)>>>,
}

impl TopicCounters {
    /// Counts one record of `bytes` bytes on `topic`.
    pub fn count(&self, topic: &str, bytes: u64) {
        let found = self.cache.read().ok().and_then(|m| m.get(topic).cloned());
        let (records, size) = found.unwrap_or_else(|| {
            let label = TopicLabel {
                topic: topic.to_owned(),
            };
            let pair = (
                self.records.get_or_create(&label).clone(),
                self.bytes.get_or_create(&label).clone(),
            );
            if let Ok(mut m) = self.cache.write() {
                m.insert(topic.to_owned(), pair.clone());
            }
            pair
        });
        records.inc();
        size.inc_by(bytes);
    }
}

/// `outcome` and `reason` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `delivered`, `failed`, `spooled`, `replayed` or `dead_lettered`.
    pub outcome: &'static str,
    /// The error kind for `failed`, `none` otherwise.
    pub reason: &'static str,
}

/// How a record ended, for [`ProducerMetrics::outcome`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordOutcome {
    /// Acknowledged by Kafka.
    Delivered,
    /// Ended in an error (the reason is the error's kind).
    Failed(&'static str),
    /// Written to the disk spool.
    Spooled,
    /// Delivered from the spool.
    Replayed,
    /// Written to the dead-letter topic.
    DeadLettered,
}

/// The producer's metrics. Clones share the same values.
#[derive(Debug, Clone)]
pub struct ProducerMetrics {
    topics: TopicCounters,
    outcomes: Family<OutcomeLabels, Counter>,
    /// The `delivered` outcome, looked up once (it is counted for every record).
    delivered_outcome: Counter,
    latency: Histogram,
    in_flight: Gauge,
    pub(crate) queue_records: Gauge,
    pub(crate) queue_bytes: Gauge,
    pub(crate) batch_bytes: Family<TopicLabel, GaugeOf<f64, AtomicU64>>,
    pub(crate) batch_records: Family<TopicLabel, GaugeOf<f64, AtomicU64>>,
    pub(crate) compression_ratio: GaugeOf<f64, AtomicU64>,
    recreated: Counter,
    spool_pending: Gauge,
    spool_bytes: Gauge,
    circuit_open: Gauge,
    /// Bytes acknowledged in total (for the compression ratio).
    pub(crate) bytes_total: Counter,
    /// Broker state and round trips.
    pub brokers: BrokerMetrics,
}

impl Default for ProducerMetrics {
    fn default() -> Self {
        let outcomes: Family<OutcomeLabels, Counter> = Family::default();
        let delivered_outcome = outcomes
            .get_or_create(&OutcomeLabels {
                outcome: "delivered",
                reason: "none",
            })
            .clone();
        Self {
            topics: TopicCounters::default(),
            outcomes,
            delivered_outcome,
            latency: Histogram::new(latency_buckets()),
            in_flight: Gauge::default(),
            queue_records: Gauge::default(),
            queue_bytes: Gauge::default(),
            batch_bytes: Family::default(),
            batch_records: Family::default(),
            compression_ratio: GaugeOf::default(),
            recreated: Counter::default(),
            spool_pending: Gauge::default(),
            spool_bytes: Gauge::default(),
            circuit_open: Gauge::default(),
            bytes_total: Counter::default(),
            brokers: BrokerMetrics::default(),
        }
    }
}

impl ProducerMetrics {
    /// Adds every producer metric (and the broker ones) to `registry`.
    pub fn register(&self, registry: &mut Metrics) {
        registry.register(
            "producer_records",
            "Records acknowledged by Kafka, by topic",
            self.topics.records.clone(),
        );
        registry.register_with_unit(
            "producer",
            "Key, value and header bytes of acknowledged records (before compression), by topic",
            Unit::Bytes,
            self.topics.bytes.clone(),
        );
        registry.register(
            "producer_outcomes",
            "How accepted records ended: delivered, failed (by reason), spooled, replayed, dead_lettered",
            self.outcomes.clone(),
        );
        registry.register_with_unit(
            "producer_delivery_latency",
            "Time from send to acknowledgement",
            Unit::Seconds,
            self.latency.clone(),
        );
        registry.register(
            "producer_in_flight",
            "Records accepted and not yet ended",
            self.in_flight.clone(),
        );
        registry.register(
            "producer_queue_records",
            "Records in the client's local queue (librdkafka statistics)",
            self.queue_records.clone(),
        );
        registry.register_with_unit(
            "producer_queue",
            "Bytes in the client's local queue (librdkafka statistics)",
            Unit::Bytes,
            self.queue_bytes.clone(),
        );
        registry.register_with_unit(
            "producer_batch_size",
            "Average produce batch size (compressed) over the last statistics window, by topic",
            Unit::Bytes,
            self.batch_bytes.clone(),
        );
        registry.register(
            "producer_batch_records",
            "Average records per produce batch over the last statistics window, by topic",
            self.batch_records.clone(),
        );
        registry.register(
            "producer_compression_ratio",
            "Bytes before compression divided by bytes sent to the brokers (protocol overhead included)",
            self.compression_ratio.clone(),
        );
        registry.register(
            "producer_recreated",
            "Producer clients recreated after a fatal (idempotence) error",
            self.recreated.clone(),
        );
        registry.register(
            "spool_records_pending",
            "Records in the disk spool waiting to be replayed",
            self.spool_pending.clone(),
        );
        registry.register_with_unit(
            "spool",
            "Bytes of the disk spool's segment files",
            Unit::Bytes,
            self.spool_bytes.clone(),
        );
        registry.register(
            "circuit_open",
            "1 while the circuit breaker keeps records from Kafka (spooled or failed fast), else 0",
            self.circuit_open.clone(),
        );
        self.brokers.register(registry);
    }

    /// A record was accepted by the client.
    pub(crate) fn accepted(&self) {
        self.in_flight.inc();
    }

    /// A record accepted earlier ended (acknowledged or failed).
    pub(crate) fn ended(&self) {
        self.in_flight.dec();
    }

    /// A record was acknowledged after `latency`; its outcome is `dead_lettered` when it was an
    /// invalid event written to a dead-letter topic, `delivered` otherwise.
    pub(crate) fn delivered(&self, topic: &str, bytes: u64, latency: Duration, dead_letter: bool) {
        self.topics.count(topic, bytes);
        self.bytes_total.inc_by(bytes);
        self.latency.observe(latency.as_secs_f64());
        if dead_letter {
            self.outcome(RecordOutcome::DeadLettered);
        } else {
            self.delivered_outcome.inc();
        }
    }

    /// Counts how a record ended.
    pub fn outcome(&self, outcome: RecordOutcome) {
        let (outcome, reason) = match outcome {
            RecordOutcome::Delivered => {
                self.delivered_outcome.inc();
                return;
            }
            RecordOutcome::Failed(reason) => ("failed", reason),
            RecordOutcome::Spooled => ("spooled", "none"),
            RecordOutcome::Replayed => ("replayed", "none"),
            RecordOutcome::DeadLettered => ("dead_lettered", "none"),
        };
        self.outcomes
            .get_or_create(&OutcomeLabels { outcome, reason })
            .inc();
    }

    /// A producer client was recreated after a fatal error.
    pub(crate) fn recreated(&self) {
        self.recreated.inc();
    }

    /// The spool's current size.
    pub(crate) fn spool(&self, pending_records: u64, bytes: u64) {
        self.spool_pending.set(pending_records as i64);
        self.spool_bytes.set(bytes as i64);
    }

    /// Whether the circuit keeps records from Kafka.
    pub(crate) fn circuit(&self, open: bool) {
        self.circuit_open.set(i64::from(open));
    }

    /// Records accepted and not ended, as counted here.
    pub fn in_flight(&self) -> i64 {
        self.in_flight.get()
    }

    /// Records of `outcome`/`reason` so far (for reports and tests).
    pub fn outcome_count(&self, outcome: &'static str, reason: &'static str) -> u64 {
        self.outcomes
            .get_or_create(&OutcomeLabels { outcome, reason })
            .get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivered_and_dead_lettered_records_are_counted_per_topic_with_bytes_latency_and_outcome() {
        let m = ProducerMetrics::default();
        let mut reg = Metrics::new();
        m.register(&mut reg);
        m.accepted();
        m.accepted();
        m.delivered("orders", 120, Duration::from_millis(3), false);
        m.ended();
        m.outcome(RecordOutcome::Failed("timeout"));
        m.ended();
        m.delivered("orders", 80, Duration::from_millis(1), false);
        m.delivered("orders-dlq", 50, Duration::from_millis(2), true);
        let text = reg.encode();
        for line in [
            "streamlake_producer_records_total{topic=\"orders\"} 2",
            "streamlake_producer_bytes_total{topic=\"orders\"} 200",
            "streamlake_producer_outcomes_total{outcome=\"delivered\",reason=\"none\"} 2",
            "streamlake_producer_outcomes_total{outcome=\"failed\",reason=\"timeout\"} 1",
            "streamlake_producer_outcomes_total{outcome=\"dead_lettered\",reason=\"none\"} 1",
            "streamlake_producer_records_total{topic=\"orders-dlq\"} 1",
            "streamlake_producer_delivery_latency_seconds_count 3",
            "streamlake_producer_in_flight 0",
            "streamlake_circuit_open 0",
        ] {
            assert!(text.contains(line), "{line}\n{text}");
        }
    }
}
