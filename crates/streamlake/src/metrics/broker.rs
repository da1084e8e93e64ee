//! Broker metrics from librdkafka's statistics: connection state and round-trip times.

use super::stats::Stats;
use super::{Family, Gauge, Metrics, Unit};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::gauge::Gauge as GaugeOf;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

/// `broker` label: `host:port/id`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BrokerLabel {
    /// The broker's name as librdkafka gives it.
    pub broker: String,
}

/// Broker metrics. Clones share the same values.
#[derive(Debug, Clone, Default)]
pub struct BrokerMetrics {
    up: Family<BrokerLabel, Gauge>,
    rtt_avg: Family<BrokerLabel, GaugeOf<f64, AtomicU64>>,
    rtt_p99: Family<BrokerLabel, GaugeOf<f64, AtomicU64>>,
    /// Connection state by broker, from the last report.
    state: Arc<Mutex<Option<BTreeMap<String, bool>>>>,
}

impl BrokerMetrics {
    /// Adds the broker metrics to `registry`.
    pub fn register(&self, registry: &mut Metrics) {
        registry.register(
            "broker_up",
            "1 while the connection to the broker is up, else 0",
            self.up.clone(),
        );
        registry.register_with_unit(
            "broker_rtt_avg",
            "Average request round-trip time over the last statistics window",
            Unit::Seconds,
            self.rtt_avg.clone(),
        );
        registry.register_with_unit(
            "broker_rtt_p99",
            "99th percentile request round-trip time over the last statistics window",
            Unit::Seconds,
            self.rtt_p99.clone(),
        );
    }

    /// Takes the brokers' state from one statistics report. Bootstrap placeholders (no broker
    /// id yet) are left out.
    pub fn update(&self, stats: &Stats) {
        let mut state = BTreeMap::new();
        for b in stats.brokers.values().filter(|b| b.nodeid >= 0) {
            state.insert(b.name.clone(), b.state == "UP");
            let label = BrokerLabel {
                broker: b.name.clone(),
            };
            self.up
                .get_or_create(&label)
                .set(i64::from(b.state == "UP"));
            if let Some(rtt) = &b.rtt {
                self.rtt_avg.get_or_create(&label).set(rtt.avg as f64 / 1e6);
                self.rtt_p99.get_or_create(&label).set(rtt.p99 as f64 / 1e6);
            }
        }
        if let Ok(mut s) = self.state.lock() {
            *s = Some(state);
        }
    }

    /// How many brokers are connected, per the last statistics (`None` before the first).
    pub fn up_count(&self) -> Option<usize> {
        let state = self.state.lock().ok()?;
        state.as_ref().map(|s| s.values().filter(|up| **up).count())
    }
}
