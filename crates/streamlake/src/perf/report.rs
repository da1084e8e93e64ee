//! What a performance run found, ready for `--json` (field names are part of the interface).

use crate::stats::{Latency, LatencyHistogram};
use serde::Serialize;
use std::collections::BTreeMap;

/// Bytes in a megabyte of `mb_per_sec` (MiB, as Kafka's own performance tools count).
pub const BYTES_PER_MB: f64 = 1024.0 * 1024.0;

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl From<Latency> for Percentiles {
    fn from(l: Latency) -> Self {
        Self {
            p50_ms: l.p50_ms,
            p95_ms: l.p95_ms,
            p99_ms: l.p99_ms,
            p999_ms: l.p999_ms,
            max_ms: l.max_ms,
        }
    }
}

impl From<&LatencyHistogram> for Percentiles {
    fn from(h: &LatencyHistogram) -> Self {
        h.summary().into()
    }
}

/// The result of a producer run (`streamlake perf`).
///
/// Every record sent ends in `delivered` or in `errors`; warm-up records are sent and accounted
/// for (their failures count in `errors`) but are not in `records`, the rates or the latency.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PerfReport {
    /// Topic written to.
    pub topic: String,
    /// Records measured: sent after the warm-up (each ended delivered or failed).
    pub records: u64,
    /// Of `records`, acknowledged by the cluster.
    pub delivered: u64,
    /// Records that failed, warm-up included.
    pub errors: u64,
    /// `errors` by kind (`timeout`, `queue_full`, `unknown_topic`, …).
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Key, value and header bytes of the delivered measured records (before compression).
    pub bytes: u64,
    /// From the start of the measurement to the last measured record's outcome.
    pub duration_secs: f64,
    /// Delivered measured records per second of `duration_secs`.
    pub records_per_sec: f64,
    /// `bytes` per second of `duration_secs`, in MiB.
    pub mb_per_sec: f64,
    /// Delivery latency median: acknowledgement time minus intended send time.
    pub p50_ms: f64,
    /// Delivery latency, 95th percentile.
    pub p95_ms: f64,
    /// Delivery latency, 99th percentile.
    pub p99_ms: f64,
    /// Delivery latency, 99.9th percentile.
    pub p999_ms: f64,
    /// Largest delivery latency.
    pub max_ms: f64,
    /// Latency from the moment each record was actually handed to the producer instead of its
    /// intended time: what a tester without coordinated-omission correction reports. Equal to
    /// the corrected figures without a throughput target; far below them when the producer
    /// was held up.
    pub uncorrected: Percentiles,
    /// Records sent during the warm-up (not measured).
    pub warmup_records: u64,
    /// Producers that sent in parallel.
    pub producers: usize,
    /// Records per second asked for with `--throughput`, if any.
    pub target_throughput: Option<f64>,
    /// Average value bytes of the measured records.
    pub avg_value_bytes: f64,
    /// The run was stopped early (Ctrl-C).
    pub interrupted: bool,
}

/// The result of a consumer run (`streamlake perf consume`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConsumeReport {
    /// Topic read.
    pub topic: String,
    /// Partitions read.
    pub partitions: usize,
    /// Records read.
    pub records: u64,
    /// Key, value and header bytes read.
    pub bytes: u64,
    /// From the first record read to the last.
    pub duration_secs: f64,
    /// Records per second of `duration_secs`.
    pub records_per_sec: f64,
    /// `bytes` per second of `duration_secs`, in MiB.
    pub mb_per_sec: f64,
    /// End-to-end latency median: read time minus the record's send time.
    pub p50_ms: f64,
    /// End-to-end latency, 95th percentile.
    pub p95_ms: f64,
    /// End-to-end latency, 99th percentile.
    pub p99_ms: f64,
    /// End-to-end latency, 99.9th percentile.
    pub p999_ms: f64,
    /// Largest end-to-end latency.
    pub max_ms: f64,
    /// Records whose send time came from the `perf_sent_us` header (µs precision).
    pub latency_from_header: u64,
    /// Records whose send time came from the record timestamp (ms precision).
    pub latency_from_timestamp: u64,
    /// Records that could not be measured (no header and no timestamp).
    pub latency_unknown: u64,
    /// Errors the consumer reported while reading (retried; the run went on).
    pub errors: u64,
    /// `--records` was asked for and that many were read.
    pub complete: bool,
    /// The run ended because no record came for the idle timeout.
    pub idle_timeout: bool,
    /// The run was stopped early (Ctrl-C).
    pub interrupted: bool,
}

/// Records per second and MiB per second over `secs` (zero for an empty interval).
pub fn rates(records: u64, bytes: u64, secs: f64) -> (f64, f64) {
    if secs <= 0.0 {
        return (0.0, 0.0);
    }
    (records as f64 / secs, bytes as f64 / BYTES_PER_MB / secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn report() -> PerfReport {
        let mut h = LatencyHistogram::default();
        for ms in 1..=1000 {
            h.record(Duration::from_millis(ms));
        }
        let p = Percentiles::from(&h);
        let (records_per_sec, mb_per_sec) = rates(20_000, 2 * 1024 * 1024, 2.0);
        PerfReport {
            topic: "t".into(),
            records: 20_000,
            delivered: 20_000,
            errors: 1,
            errors_by_kind: BTreeMap::from([("timeout".to_owned(), 1)]),
            bytes: 2 * 1024 * 1024,
            duration_secs: 2.0,
            records_per_sec,
            mb_per_sec,
            p50_ms: p.p50_ms,
            p95_ms: p.p95_ms,
            p99_ms: p.p99_ms,
            p999_ms: p.p999_ms,
            max_ms: p.max_ms,
            uncorrected: p,
            warmup_records: 2_000,
            producers: 1,
            target_throughput: None,
            avg_value_bytes: 120.0,
            interrupted: false,
        }
    }

    #[test]
    fn json_has_the_documented_fields() {
        let v = serde_json::to_value(report()).unwrap();
        let obj = v.as_object().unwrap();
        let mut names: Vec<&str> = obj.keys().map(String::as_str).collect();
        names.sort_unstable();
        let mut want = vec![
            "topic",
            "records",
            "delivered",
            "errors",
            "errors_by_kind",
            "bytes",
            "duration_secs",
            "records_per_sec",
            "mb_per_sec",
            "p50_ms",
            "p95_ms",
            "p99_ms",
            "p999_ms",
            "max_ms",
            "uncorrected",
            "warmup_records",
            "producers",
            "target_throughput",
            "avg_value_bytes",
            "interrupted",
        ];
        want.sort_unstable();
        assert_eq!(names, want);
        assert_eq!(v["records"], 20_000);
        assert_eq!(v["records_per_sec"], 10_000.0);
        assert_eq!(v["mb_per_sec"], 1.0);
        assert_eq!(v["errors_by_kind"], serde_json::json!({"timeout": 1}));
        assert_eq!(v["target_throughput"], Value::Null);
        assert!((v["p50_ms"].as_f64().unwrap() - 500.0).abs() < 1.0, "{v}");
        assert!((v["p999_ms"].as_f64().unwrap() - 999.0).abs() < 1.0, "{v}");
        let u = v["uncorrected"].as_object().unwrap();
        let mut unames: Vec<&str> = u.keys().map(String::as_str).collect();
        unames.sort_unstable();
        assert_eq!(unames, ["max_ms", "p50_ms", "p95_ms", "p999_ms", "p99_ms"]);
    }

    use serde_json::Value;

    #[test]
    fn rates_handle_an_empty_interval() {
        assert_eq!(rates(10, 10, 0.0), (0.0, 0.0));
        assert_eq!(rates(10, 1024 * 1024, 0.5), (20.0, 2.0));
    }
}
