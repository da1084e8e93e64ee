//! Cluster metrics from health checks: brokers up and down, the controller, and partitions
//! under-replicated, under `min.insync.replicas` or offline, by topic.
//!
//! # Guarantees
//! - Each [`ClusterMetrics::update`] replaces every cluster series with what one
//!   [`HealthReport`] found: a broker or topic that healed shows 0, one that is gone from the
//!   cluster has no series left.
//! - A check that could not reach the cluster sets `streamlake_cluster_reachable` to 0 and
//!   keeps the last partition counts, which are then stale; the alerts watch `reachable` too.
//! - Labels are broker ids and topic names from the cluster, never record content.

use super::{Counter, Family, Gauge, Metrics, Unit};
use crate::health::{HealthReport, PartitionProblem};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::gauge::Gauge as GaugeOf;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;

/// `broker` label: the broker id.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BrokerIdLabel {
    /// Broker id, as text.
    pub broker: String,
}

/// `topic` and `state` labels of the partition counts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionStateLabels {
    /// Topic.
    pub topic: String,
    /// `all`, `under_replicated`, `under_min_isr` or `offline`.
    pub state: &'static str,
}

/// `result` label of the check counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CheckLabel {
    /// `healthy`, `unhealthy` or `unreachable`.
    pub result: &'static str,
}

/// The partition states counted per topic, in the order of the `state` label's values.
pub const PARTITION_STATES: [&str; 4] = ["all", "under_replicated", "under_min_isr", "offline"];

/// Cluster metrics. Clones share the same values.
#[derive(Debug, Clone, Default)]
pub struct ClusterMetrics {
    reachable: Gauge,
    healthy: Gauge,
    controller: Gauge,
    broker_up: Family<BrokerIdLabel, Gauge>,
    partitions: Family<PartitionStateLabels, Gauge>,
    checks: Family<CheckLabel, Counter>,
    duration: GaugeOf<f64, AtomicU64>,
}

impl ClusterMetrics {
    /// Adds the cluster metrics to `registry`.
    pub fn register(&self, registry: &mut Metrics) {
        registry.register(
            "cluster_reachable",
            "1 when the last health check got the cluster's metadata, else 0",
            self.reachable.clone(),
        );
        registry.register(
            "cluster_healthy",
            "1 when the last health check found nothing wrong, else 0",
            self.healthy.clone(),
        );
        registry.register(
            "cluster_controller",
            "Broker id of the controller in the last health check (-1: none named)",
            self.controller.clone(),
        );
        registry.register(
            "cluster_broker_up",
            "1 while the broker is in the metadata and accepts connections, 0 while it is down",
            self.broker_up.clone(),
        );
        registry.register(
            "cluster_partitions",
            "Partitions by topic and state: all, under_replicated, under_min_isr, offline",
            self.partitions.clone(),
        );
        registry.register(
            "cluster_checks",
            "Health checks run, by result: healthy, unhealthy, unreachable",
            self.checks.clone(),
        );
        registry.register_with_unit(
            "cluster_check_duration",
            "How long the last health check took",
            Unit::Seconds,
            self.duration.clone(),
        );
    }

    /// Takes the state of the cluster from one health check that took `took`.
    pub fn update(&self, report: &HealthReport, took: std::time::Duration) {
        self.duration.set(took.as_secs_f64());
        let reachable = report.cluster_error.is_none() && !report.brokers.is_empty();
        self.reachable.set(i64::from(reachable));
        self.healthy.set(i64::from(report.healthy));
        let result = match (reachable, report.healthy) {
            (false, _) => "unreachable",
            (true, true) => "healthy",
            (true, false) => "unhealthy",
        };
        self.checks.get_or_create(&CheckLabel { result }).inc();
        if !reachable {
            return;
        }
        self.controller
            .set(report.cluster.controller.map_or(-1, i64::from));
        self.broker_up.clear();
        for b in &report.brokers {
            let up = b.reachable && !report.cluster.brokers_down.contains(&b.id);
            self.set_broker(b.id, up);
        }
        for id in &report.cluster.brokers_down {
            self.set_broker(*id, false);
        }
        let mut counts: BTreeMap<&str, [i64; 4]> = report
            .cluster
            .partitions_by_topic
            .iter()
            .map(|(t, n)| (t.as_str(), [*n as i64, 0, 0, 0]))
            .collect();
        let problems: [(&[PartitionProblem], usize); 3] = [
            (&report.cluster.under_replicated, 1),
            (&report.cluster.under_min_isr, 2),
            (&report.cluster.offline, 3),
        ];
        for (list, state) in problems {
            for p in list {
                counts.entry(p.topic.as_str()).or_default()[state] += 1;
            }
        }
        self.partitions.clear();
        for (topic, n) in counts {
            for (state, value) in PARTITION_STATES.iter().zip(n) {
                self.partitions
                    .get_or_create(&PartitionStateLabels {
                        topic: topic.to_owned(),
                        state,
                    })
                    .set(value);
            }
        }
    }

    fn set_broker(&self, id: i32, up: bool) {
        self.broker_up
            .get_or_create(&BrokerIdLabel {
                broker: id.to_string(),
            })
            .set(i64::from(up));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::{PartitionInfo, TopicInfo};
    use crate::health::{BrokerHealth, ClusterHealth};
    use std::time::Duration;

    fn report(live: &[i32], isr: &[i32]) -> HealthReport {
        let topics = [TopicInfo {
            name: "orders".into(),
            partitions: (0..2)
                .map(|id| PartitionInfo {
                    id,
                    leader: if id == 1 && isr.is_empty() { -1 } else { 1 },
                    replicas: vec![1, 2, 3],
                    isr: if id == 1 { isr.to_vec() } else { vec![1, 2, 3] },
                })
                .collect(),
        }];
        let min = [("orders".to_owned(), "2".to_owned())]
            .into_iter()
            .collect();
        let cluster = ClusterHealth {
            controller: Some(2),
            ..ClusterHealth::of(&topics, live, &min)
        };
        HealthReport {
            healthy: cluster.ok(),
            brokers: live
                .iter()
                .map(|id| BrokerHealth {
                    id: *id,
                    address: format!("k{id}:9092"),
                    reachable: true,
                })
                .collect(),
            cluster_error: None,
            cluster,
            topics: Vec::new(),
            probe: None,
        }
    }

    fn series(page: &str, prefix: &str) -> Vec<String> {
        let mut s: Vec<String> = page
            .lines()
            .filter(|l| l.starts_with(prefix))
            .map(str::to_owned)
            .collect();
        s.sort();
        s
    }

    #[test]
    fn a_broker_down_shows_and_heals_to_zero() {
        let metrics = ClusterMetrics::default();
        let mut registry = Metrics::new();
        metrics.register(&mut registry);
        metrics.update(&report(&[1, 2], &[1]), Duration::from_millis(20));
        let page = registry.encode();
        assert_eq!(
            series(&page, "streamlake_cluster_broker_up{"),
            [
                "streamlake_cluster_broker_up{broker=\"1\"} 1",
                "streamlake_cluster_broker_up{broker=\"2\"} 1",
                "streamlake_cluster_broker_up{broker=\"3\"} 0",
            ],
            "{page}"
        );
        assert_eq!(
            series(&page, "streamlake_cluster_partitions{"),
            [
                "streamlake_cluster_partitions{topic=\"orders\",state=\"all\"} 2",
                "streamlake_cluster_partitions{topic=\"orders\",state=\"offline\"} 0",
                "streamlake_cluster_partitions{topic=\"orders\",state=\"under_min_isr\"} 1",
                "streamlake_cluster_partitions{topic=\"orders\",state=\"under_replicated\"} 1",
            ],
            "{page}"
        );
        assert!(page.contains("streamlake_cluster_healthy 0\n"), "{page}");
        assert!(page.contains("streamlake_cluster_controller 2\n"), "{page}");

        metrics.update(&report(&[1, 2, 3], &[1, 2, 3]), Duration::from_millis(20));
        let page = registry.encode();
        assert!(
            page.contains("streamlake_cluster_broker_up{broker=\"3\"} 1"),
            "{page}"
        );
        assert!(
            page.contains(
                "streamlake_cluster_partitions{topic=\"orders\",state=\"under_replicated\"} 0"
            ),
            "{page}"
        );
        assert!(page.contains("streamlake_cluster_healthy 1\n"), "{page}");
        assert!(
            page.contains("streamlake_cluster_checks_total{result=\"healthy\"} 1"),
            "{page}"
        );
        assert!(
            page.contains("streamlake_cluster_checks_total{result=\"unhealthy\"} 1"),
            "{page}"
        );
    }

    #[test]
    fn an_offline_partition_is_counted_and_an_unreachable_cluster_keeps_the_last_counts() {
        let metrics = ClusterMetrics::default();
        let mut registry = Metrics::new();
        metrics.register(&mut registry);
        metrics.update(&report(&[1], &[]), Duration::from_millis(5));
        let page = registry.encode();
        assert!(
            page.contains("streamlake_cluster_partitions{topic=\"orders\",state=\"offline\"} 1"),
            "{page}"
        );
        let gone = HealthReport {
            brokers: Vec::new(),
            cluster_error: Some("no broker answered".into()),
            healthy: false,
            ..report(&[1], &[])
        };
        metrics.update(&gone, Duration::from_secs(10));
        let page = registry.encode();
        assert!(page.contains("streamlake_cluster_reachable 0\n"), "{page}");
        assert!(
            page.contains("streamlake_cluster_partitions{topic=\"orders\",state=\"offline\"} 1"),
            "{page}"
        );
        assert!(
            page.contains("streamlake_cluster_checks_total{result=\"unreachable\"} 1"),
            "{page}"
        );
        assert!(
            page.contains("streamlake_cluster_check_duration_seconds 10.0"),
            "{page}"
        );
    }
}
