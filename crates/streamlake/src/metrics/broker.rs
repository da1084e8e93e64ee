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
    /// id yet) are left out, and so are brokers this client never tried to connect to
    /// (librdkafka's state `INIT`): librdkafka only connects to the brokers it needs, and a
    /// connection never opened is not a broker down.
    pub fn update(&self, stats: &Stats) {
        let mut state = BTreeMap::new();
        for b in stats
            .brokers
            .values()
            .filter(|b| b.nodeid >= 0 && b.state != "INIT")
        {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brokers_never_tried_have_no_series_and_down_ones_show_zero() {
        let stats = Stats::parse(
            br#"{"brokers": {
            "k:1/bootstrap": {"name": "k:1/bootstrap", "nodeid": -1, "state": "UP"},
            "k:1/1": {"name": "k:1/1", "nodeid": 1, "state": "UP"},
            "k:2/2": {"name": "k:2/2", "nodeid": 2, "state": "INIT"},
            "k:3/3": {"name": "k:3/3", "nodeid": 3, "state": "TRY_CONNECT"}}}"#,
        )
        .unwrap();
        let brokers = BrokerMetrics::default();
        let mut registry = Metrics::new();
        brokers.register(&mut registry);
        assert_eq!(brokers.up_count(), None);
        brokers.update(&stats);
        let page = registry.encode();
        let up: Vec<&str> = page
            .lines()
            .filter(|l| l.starts_with("streamlake_broker_up{"))
            .collect();
        assert_eq!(up.len(), 2, "{page}");
        assert!(
            up.contains(&"streamlake_broker_up{broker=\"k:1/1\"} 1"),
            "{page}"
        );
        assert!(
            up.contains(&"streamlake_broker_up{broker=\"k:3/3\"} 0"),
            "{page}"
        );
        assert_eq!(brokers.up_count(), Some(1));
    }
}
