//! Cluster health checks for operators and probes: brokers reachable, topics present with a
//! leader for every partition, and optionally an end-to-end produce and consume.
//!
//! # Guarantees
//! - [`check`] never hangs: every step is bounded by [`HealthOptions::timeout`].
//! - The report says what was checked and what failed, by name (broker, topic, partition);
//!   [`HealthReport::healthy`] is true only if every check passed.
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
    /// Partitions with no leader (cannot be written or read).
    pub without_leader: Vec<i32>,
    /// Partitions with fewer in-sync replicas than replicas (a warning, not a failure).
    pub under_replicated: Vec<i32>,
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
            report.brokers = b
                .into_iter()
                .map(|(id, address)| BrokerHealth { id, address })
                .collect();
        }
        Err(e) => {
            report.cluster_error = Some(format!("no broker answered: {e}"));
            return report;
        }
    }
    for name in &options.topics {
        report.topics.push(topic_health(&admin, name));
    }
    if let Some(topic) = &options.probe_topic {
        report.probe = Some(probe(config, topic, options.timeout).await);
    }
    report.healthy = !report.brokers.is_empty()
        && report
            .topics
            .iter()
            .all(|t| t.exists && t.without_leader.is_empty() && t.partitions > 0)
        && report.probe.as_ref().is_none_or(|p| p.ok);
    report
}

fn topic_health(admin: &Admin, name: &str) -> TopicHealth {
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
                    if p.leader < 0 {
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
