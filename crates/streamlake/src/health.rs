//! Cluster health checks for operators and probes: brokers reachable, the controller, every
//! partition's replication (under-replicated, under `min.insync.replicas`, offline), topics
//! present with a leader for every partition, and optionally an end-to-end produce and consume.
//!
//! # Guarantees
//! - [`check`] never hangs: every step is bounded by [`HealthOptions::timeout`].
//! - The report says what was checked and what failed, by name (broker, topic, partition);
//!   [`HealthReport::healthy`] is true only if every check passed: a broker named as a replica
//!   but missing from the metadata (down), a partition with fewer in-sync replicas than
//!   replicas, one under its topic's `min.insync.replicas` (acks=all writes are refused) or
//!   one without a leader or whose leader is down (offline) makes the cluster unhealthy,
//!   whichever topic it is in.
//! - The probe writes one small record (value `streamlake health probe <id>`, header
//!   `health_probe`) to the probe topic and reads that very record back.

use crate::admin::{Admin, AdminError};
use crate::config::Config;
use crate::consumer::{Consumer, ConsumerOptions, Received, StartFrom};
use crate::producer::Producer;
use crate::record::Record;
use serde::Serialize;
use std::time::{Duration, Instant};

/// What to check.
#[derive(Debug, Clone)]
pub struct HealthOptions {
    /// Topics that must exist with a leader for every partition.
    pub topics: Vec<String>,
    /// Topic for the end-to-end probe (none: no probe).
    pub probe_topic: Option<String>,
    /// Default 10 s: the longest any step may take.
    pub timeout: Duration,
}

impl Default for HealthOptions {
    fn default() -> Self {
        Self {
            topics: Vec::new(),
            probe_topic: None,
            timeout: Duration::from_secs(10),
        }
    }
}

/// One broker in the metadata.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BrokerHealth {
    /// Broker id.
    pub id: i32,
    /// `host:port`.
    pub address: String,
    /// Whether a TCP connection to `address` opened: the metadata can name a broker for a
    /// while after it died.
    pub reachable: bool,
}

/// Whether a TCP connection to `address` opens within `timeout`.
fn reachable(address: &str, timeout: Duration) -> bool {
    use std::net::ToSocketAddrs;
    address
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| std::net::TcpStream::connect_timeout(&a, timeout).is_ok())
}

/// One topic.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TopicHealth {
    /// Topic name.
    pub name: String,
    /// Whether the cluster knows it.
    pub exists: bool,
    /// Partition count.
    pub partitions: usize,
    /// Partitions with no leader, or whose leader is down (cannot be written or read).
    pub without_leader: Vec<i32>,
    /// Partitions with fewer in-sync replicas than replicas (a warning, not a failure).
    pub under_replicated: Vec<i32>,
}

/// A partition that needs attention, with what the metadata says of it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PartitionProblem {
    /// Topic name.
    pub topic: String,
    /// Partition id.
    pub partition: i32,
    /// Leader broker id (-1: none).
    pub leader: i32,
    /// Replica broker ids.
    pub replicas: Vec<i32>,
    /// In-sync replica broker ids.
    pub isr: Vec<i32>,
    /// The topic's `min.insync.replicas`, when the brokers report it.
    pub min_insync_replicas: Option<i32>,
}

/// The replication state of the whole cluster.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ClusterHealth {
    /// The controller's broker id (none when no broker named one).
    pub controller: Option<i32>,
    /// Broker ids named as replicas of some partition but missing from the metadata, or in
    /// the metadata but not accepting connections.
    pub brokers_down: Vec<i32>,
    /// Partitions with fewer in-sync replicas than replicas.
    pub under_replicated: Vec<PartitionProblem>,
    /// Partitions with fewer in-sync replicas than their topic's `min.insync.replicas`:
    /// acks=all producers are refused there (NOT_ENOUGH_REPLICAS).
    pub under_min_isr: Vec<PartitionProblem>,
    /// Partitions without a leader, or whose leader is down: nothing can be written or read
    /// there.
    pub offline: Vec<PartitionProblem>,
    /// Partitions looked at.
    pub partitions: usize,
    /// Partitions looked at, by topic.
    pub partitions_by_topic: std::collections::BTreeMap<String, usize>,
}

impl ClusterHealth {
    /// Nothing is wrong.
    pub fn ok(&self) -> bool {
        self.brokers_down.is_empty()
            && self.under_replicated.is_empty()
            && self.under_min_isr.is_empty()
            && self.offline.is_empty()
    }

    /// The replication state of `topics`, with the live brokers `live` and each topic's
    /// `min.insync.replicas` from `min_isr`.
    pub fn of(
        topics: &[crate::admin::TopicInfo],
        live: &[i32],
        min_isr: &std::collections::BTreeMap<String, String>,
    ) -> Self {
        let mut health = Self::default();
        let mut down = std::collections::BTreeSet::new();
        for t in topics {
            let min = min_isr
                .get(&t.name)
                .and_then(|v| v.trim().parse::<i32>().ok());
            health
                .partitions_by_topic
                .insert(t.name.clone(), t.partitions.len());
            for p in &t.partitions {
                health.partitions += 1;
                down.extend(p.replicas.iter().filter(|r| !live.contains(r)));
                let problem = || PartitionProblem {
                    topic: t.name.clone(),
                    partition: p.id,
                    leader: p.leader,
                    replicas: p.replicas.clone(),
                    isr: p.isr.clone(),
                    min_insync_replicas: min,
                };
                if !has_live_leader(p, live) {
                    health.offline.push(problem());
                }
                if p.isr.len() < p.replicas.len() {
                    health.under_replicated.push(problem());
                }
                if min.is_some_and(|m| (p.isr.len() as i32) < m) {
                    health.under_min_isr.push(problem());
                }
            }
        }
        health.brokers_down = down.into_iter().collect();
        health
    }
}

/// Whether the partition's leader is one of the `live` brokers. A leader that is down leads
/// nothing: crabka, for one, keeps naming the last leader of a partition that has no other
/// replica.
fn has_live_leader(p: &crate::admin::PartitionInfo, live: &[i32]) -> bool {
    p.leader >= 0 && live.contains(&p.leader)
}

/// The end-to-end probe.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProbeHealth {
    /// Probe topic.
    pub topic: String,
    /// Whether the record was written and read back.
    pub ok: bool,
    /// Time to the produce acknowledgement.
    pub produce_ms: Option<f64>,
    /// Time from the send until the record was read back.
    pub end_to_end_ms: Option<f64>,
    /// Where the record landed.
    pub partition: Option<i32>,
    /// Its offset.
    pub offset: Option<i64>,
    /// What went wrong.
    pub error: Option<String>,
}

/// What [`check`] found.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HealthReport {
    /// Every check passed.
    pub healthy: bool,
    /// Brokers in the metadata (empty when the cluster could not be reached).
    pub brokers: Vec<BrokerHealth>,
    /// Why the cluster could not be reached.
    pub cluster_error: Option<String>,
    /// The controller and every partition's replication.
    pub cluster: ClusterHealth,
    /// The topics asked for.
    pub topics: Vec<TopicHealth>,
    /// The probe, when asked for.
    pub probe: Option<ProbeHealth>,
}

/// Runs the checks. Needs a Tokio runtime (for the probe's consumer).
pub async fn check(config: &Config, options: &HealthOptions) -> HealthReport {
    let mut report = HealthReport {
        healthy: false,
        brokers: Vec::new(),
        cluster_error: None,
        cluster: ClusterHealth::default(),
        topics: Vec::new(),
        probe: None,
    };
    let admin = match Admin::new(config, options.timeout) {
        Ok(a) => a,
        Err(e) => {
            report.cluster_error = Some(e.to_string());
            return report;
        }
    };
    match admin.brokers() {
        Ok(b) => {
            let connect = options.timeout.min(Duration::from_secs(2));
            report.brokers = b
                .into_iter()
                .map(|(id, address)| BrokerHealth {
                    reachable: reachable(&address, connect),
                    id,
                    address,
                })
                .collect();
        }
        Err(e) => {
            report.cluster_error = Some(format!("no broker answered: {e}"));
            return report;
        }
    }
    let live: Vec<i32> = report
        .brokers
        .iter()
        .filter(|b| b.reachable)
        .map(|b| b.id)
        .collect();
    match admin.describe(None) {
        Ok(topics) => {
            let names: Vec<String> = topics.iter().map(|t| t.name.clone()).collect();
            let min_isr = admin
                .topic_config(&names, "min.insync.replicas")
                .await
                .unwrap_or_default();
            report.cluster = ClusterHealth::of(&topics, &live, &min_isr);
            // A broker the metadata still names but that does not answer is down too.
            for b in report.brokers.iter().filter(|b| !b.reachable) {
                if !report.cluster.brokers_down.contains(&b.id) {
                    report.cluster.brokers_down.push(b.id);
                }
            }
            report.cluster.brokers_down.sort_unstable();
        }
        Err(e) => report.cluster_error = Some(format!("no metadata: {e}")),
    }
    report.cluster.controller = admin.controller();
    for name in &options.topics {
        report.topics.push(topic_health(&admin, name, &live));
    }
    if let Some(topic) = &options.probe_topic {
        report.probe = Some(probe(config, topic, options.timeout).await);
    }
    report.healthy = !report.brokers.is_empty()
        && report.cluster_error.is_none()
        && report.cluster.ok()
        && report
            .topics
            .iter()
            .all(|t| t.exists && t.without_leader.is_empty() && t.partitions > 0)
        && report.probe.as_ref().is_none_or(|p| p.ok);
    report
}

fn topic_health(admin: &Admin, name: &str, live: &[i32]) -> TopicHealth {
    let mut health = TopicHealth {
        name: name.to_owned(),
        exists: false,
        partitions: 0,
        without_leader: Vec::new(),
        under_replicated: Vec::new(),
    };
    match admin.describe(Some(name)) {
        Ok(topics) => {
            if let Some(t) = topics.into_iter().find(|t| t.name == name) {
                health.exists = true;
                health.partitions = t.partitions.len();
                for p in &t.partitions {
                    if !has_live_leader(p, live) {
                        health.without_leader.push(p.id);
                    }
                    if p.isr.len() < p.replicas.len() {
                        health.under_replicated.push(p.id);
                    }
                }
            }
        }
        Err(AdminError::UnknownTopic(_)) => {}
        Err(_) => {}
    }
    health
}

async fn probe(config: &Config, topic: &str, timeout: Duration) -> ProbeHealth {
    let mut out = ProbeHealth {
        topic: topic.to_owned(),
        ok: false,
        produce_ms: None,
        end_to_end_ms: None,
        partition: None,
        offset: None,
        error: None,
    };
    let mut pc = config.clone();
    pc.producer.delivery_timeout_ms = timeout.as_millis() as u64;
    pc.producer.request_timeout_ms = pc
        .producer
        .request_timeout_ms
        .min(pc.producer.delivery_timeout_ms);
    pc.producer.linger_ms = 0;
    let producer = match Producer::new(&pc) {
        Ok(p) => p,
        Err(e) => {
            out.error = Some(e.to_string());
            return out;
        }
    };
    let id = uuid::Uuid::now_v7().to_string();
    let value = format!("streamlake health probe {id}");
    let started = Instant::now();
    let delivery = match producer
        .send(Record::new(topic, value.clone()).header("health_probe", id.clone()))
        .await
    {
        Ok(d) => d,
        Err(e) => {
            out.error = Some(format!("produce: {}", e.error));
            return out;
        }
    };
    out.produce_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
    out.partition = Some(delivery.partition);
    out.offset = Some(delivery.offset);
    let mut cc = config.clone();
    cc.consumer.group_id = None;
    let consumer = match Consumer::new(&cc, ConsumerOptions::default()) {
        Ok(c) => c,
        Err(e) => {
            out.error = Some(format!("consume: {e}"));
            return out;
        }
    };
    if let Err(e) = consumer.assign(
        topic,
        Some(&[delivery.partition]),
        StartFrom::Offset(delivery.offset),
    ) {
        out.error = Some(format!("consume: {e}"));
        return out;
    }
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Ok(Ok(Received::Record(r))) if r.header("health_probe") == Some(id.as_bytes()) => {
                out.end_to_end_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
                out.ok = true;
                return out;
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                out.error = Some(format!("consume: {e}"));
                return out;
            }
            Err(_) => {
                out.error = Some(format!(
                    "the probe record ({}/{}) was not read back within {timeout:?}",
                    delivery.partition, delivery.offset
                ));
                return out;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::{PartitionInfo, TopicInfo};

    fn topic(name: &str, partitions: &[(i32, &[i32], &[i32])]) -> TopicInfo {
        TopicInfo {
            name: name.into(),
            partitions: partitions
                .iter()
                .enumerate()
                .map(|(i, (leader, replicas, isr))| PartitionInfo {
                    id: i as i32,
                    leader: *leader,
                    replicas: replicas.to_vec(),
                    isr: isr.to_vec(),
                })
                .collect(),
        }
    }

    #[test]
    fn replication_problems_are_named_by_topic_and_partition() {
        let topics = [
            topic(
                "orders",
                &[(1, &[1, 2, 3], &[1, 2, 3]), (2, &[1, 2, 3], &[2])],
            ),
            topic("audit", &[(-1, &[3], &[])]),
            topic("clicks", &[(3, &[3], &[3])]),
        ];
        let min = [("orders".to_owned(), "2".to_owned())]
            .into_iter()
            .collect();
        let h = ClusterHealth::of(&topics, &[1, 2], &min);
        assert!(!h.ok());
        assert_eq!(h.partitions, 4);
        assert_eq!(h.brokers_down, [3]);
        let names = |ps: &[PartitionProblem]| {
            ps.iter()
                .map(|p| format!("{}/{}", p.topic, p.partition))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&h.under_replicated), ["orders/1", "audit/0"]);
        assert_eq!(names(&h.under_min_isr), ["orders/1"]);
        assert_eq!(h.under_min_isr[0].min_insync_replicas, Some(2));
        // clicks/0 still names broker 3, which is down, as its leader.
        assert_eq!(names(&h.offline), ["audit/0", "clicks/0"]);
        let fine = ClusterHealth::of(&topics[..1], &[1, 2, 3], &Default::default());
        assert_eq!(names(&fine.under_replicated), ["orders/1"]);
        assert!(fine.brokers_down.is_empty() && fine.under_min_isr.is_empty());
    }
}
