//! The parts of librdkafka's statistics JSON that the metrics use. Parsed leniently (every
//! field optional, unknown fields ignored) so a newer librdkafka cannot break the metrics.

use serde::Deserialize;
use std::collections::HashMap;

/// One statistics report.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Stats {
    /// Records in the producer's local queue.
    pub msg_cnt: u64,
    /// Bytes in the producer's local queue.
    pub msg_size: u64,
    /// Brokers by name.
    pub brokers: HashMap<String, BrokerStats>,
    /// Topics by name.
    pub topics: HashMap<String, TopicStats>,
}

/// One broker.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct BrokerStats {
    /// `host:port/id`.
    pub name: String,
    /// Broker id (-1 for bootstrap placeholders).
    pub nodeid: i32,
    /// Connection state (`UP` when connected).
    pub state: String,
    /// Bytes sent.
    pub txbytes: u64,
    /// Round-trip times in microseconds.
    pub rtt: Option<Window>,
}

/// A rolling window of samples.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Window {
    /// Average.
    pub avg: i64,
    /// 99th percentile.
    pub p99: i64,
    /// Samples.
    pub cnt: i64,
}

/// One topic.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TopicStats {
    /// Batch sizes in bytes.
    pub batchsize: Window,
    /// Records per batch.
    pub batchcnt: Window,
    /// Partitions by number (as text).
    pub partitions: HashMap<String, PartitionStats>,
}

/// One partition.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PartitionStats {
    /// Partition number (-1 for the internal unassigned partition).
    pub partition: i32,
    /// Records between the consumer's position and the end of the partition (-1: unknown).
    pub consumer_lag: i64,
}

impl Stats {
    /// Parses one report; `None` if it is not JSON.
    pub fn parse(raw: &[u8]) -> Option<Self> {
        serde_json::from_slice(raw).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_missing_fields_are_fine() {
        let s = Stats::parse(
            br#"{"msg_cnt": 3, "new_field": {"x": 1}, "brokers": {"b:1/1": {"name": "b:1/1",
            "nodeid": 1, "state": "UP", "rtt": {"avg": 1500, "p99": 9000}}},
            "topics": {"t": {"partitions": {"0": {"partition": 0, "consumer_lag": 7}}}}}"#,
        )
        .unwrap();
        assert_eq!(s.msg_cnt, 3);
        assert_eq!(s.brokers["b:1/1"].rtt.as_ref().unwrap().p99, 9000);
        assert_eq!(s.topics["t"].partitions["0"].consumer_lag, 7);
    }
}
