//! Prometheus metrics.
//!
//! # Guarantees
//! - Names follow Prometheus conventions: a `streamlake_` prefix, the unit in the name
//!   (`_seconds`, `_bytes`), and `_total` on counters.
//! - Labels are bounded: they take configured names (datasets, topics, key names) and fixed
//!   outcome words, never values from requests or records.
//! - [`Metrics::encode`] renders the OpenMetrics text format that Prometheus scrapes.

pub mod broker;
pub mod cluster;
pub mod consumer;
mod http;
pub mod producer;
pub mod stats;

pub use broker::BrokerMetrics;
pub use cluster::ClusterMetrics;
pub use consumer::ConsumerMetrics;
pub use http::{serve, Readiness};
pub use producer::{ProducerMetrics, RecordOutcome};

use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;

pub use prometheus_client::metrics::counter::Counter;
pub use prometheus_client::metrics::family::Family;
pub use prometheus_client::metrics::gauge::Gauge;
pub use prometheus_client::metrics::histogram::Histogram;
pub use prometheus_client::registry::Unit;

/// The `Content-Type` of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Latency buckets in seconds, from 0.5 ms to about 16 s.
pub fn latency_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(0.0005, 2.0, 16)
}

/// A set of metrics to expose. Register families once at start-up, then share it.
#[derive(Debug, Default)]
pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    /// An empty set, every name prefixed with `streamlake_`.
    pub fn new() -> Self {
        Self {
            registry: Registry::with_prefix("streamlake"),
        }
    }

    /// Adds a metric (a counter's `_total` is added by the encoder).
    pub fn register<M>(&mut self, name: &str, help: &str, metric: M)
    where
        M: prometheus_client::registry::Metric,
    {
        self.registry.register(name, help, metric);
    }

    /// Adds a metric whose name ends with its unit.
    pub fn register_with_unit<M>(&mut self, name: &str, help: &str, unit: Unit, metric: M)
    where
        M: prometheus_client::registry::Metric,
    {
        self.registry.register_with_unit(name, help, unit, metric);
    }

    /// The current values in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_get_total_and_prefix() {
        let mut m = Metrics::new();
        let c: Family<Vec<(String, String)>, Counter> = Family::default();
        m.register("things", "Things seen", c.clone());
        c.get_or_create(&vec![("kind".into(), "a".into())])
            .inc_by(3);
        let text = m.encode();
        assert!(
            text.contains("streamlake_things_total{kind=\"a\"} 3"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
