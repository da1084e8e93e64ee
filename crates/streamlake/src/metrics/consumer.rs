//! Consumer metrics: records read, lag per partition, commits.

use super::broker::BrokerMetrics;
use super::producer::TopicCounters;
use super::stats::Stats;
use super::{Counter, Family, Gauge, Metrics, Unit};
use prometheus_client::encoding::EncodeLabelSet;

/// `topic` and `partition` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabels {
    /// Topic.
    pub topic: String,
    /// Partition number.
    pub partition: String,
}

/// `result` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// `ok` or `error`.
    pub result: &'static str,
}

/// The consumer's metrics. Clones share the same values.
#[derive(Debug, Clone, Default)]
pub struct ConsumerMetrics {
    topics: TopicCounters,
    lag: Family<PartitionLabels, Gauge>,
    commits: Family<ResultLabel, Counter>,
    /// Broker state and round trips.
    pub brokers: BrokerMetrics,
}

impl ConsumerMetrics {
    /// Adds every consumer metric (and the broker ones) to `registry`.
    pub fn register(&self, registry: &mut Metrics) {
        registry.register(
            "consumer_records",
            "Records read, by topic",
            self.topics.records.clone(),
        );
        registry.register_with_unit(
            "consumer",
            "Key and value bytes of records read, by topic",
            Unit::Bytes,
            self.topics.bytes.clone(),
        );
        registry.register(
            "consumer_lag_records",
            "Records between the consumer's position and the end of the partition",
            self.lag.clone(),
        );
        registry.register(
            "consumer_commits",
            "Offset commits, by result (ok or error)",
            self.commits.clone(),
        );
        self.brokers.register(registry);
    }

    /// A record was read.
    pub(crate) fn read(&self, topic: &str, bytes: u64) {
        self.topics.count(topic, bytes);
    }

    /// An offset commit finished.
    pub(crate) fn committed(&self, ok: bool) {
        self.commits
            .get_or_create(&ResultLabel {
                result: if ok { "ok" } else { "error" },
            })
            .inc();
    }

    /// Takes lag and broker state from one statistics report.
    pub(crate) fn update(&self, stats: &Stats) {
        self.brokers.update(stats);
        for (topic, t) in &stats.topics {
            for p in t.partitions.values() {
                // -1 is librdkafka's internal unassigned partition; a lag of -1 is unknown.
                if p.partition >= 0 && p.consumer_lag >= 0 {
                    self.lag(topic, p.partition, p.consumer_lag);
                }
            }
        }
    }

    /// Sets the lag of one partition.
    pub(crate) fn lag(&self, topic: &str, partition: i32, lag: i64) {
        self.lag
            .get_or_create(&PartitionLabels {
                topic: topic.to_owned(),
                partition: partition.to_string(),
            })
            .set(lag);
    }
}
