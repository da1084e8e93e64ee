//! `streamlake health`: is the cluster usable? The exit code tells.

use crate::args::{print_notes, runtime, KafkaArgs};
use clap::Args;
use std::process::ExitCode;
use std::time::Duration;
use streamlake::health::{check, ClusterHealth, HealthOptions, PartitionProblem};

#[derive(Debug, Args)]
pub struct HealthArgs {
    #[command(flatten)]
    kafka: KafkaArgs,
    /// A topic that must exist with a leader for every partition (repeatable)
    #[arg(short, long = "topic", value_name = "TOPIC")]
    topics: Vec<String>,
    /// Also write one record to this topic and read it back
    #[arg(long, value_name = "TOPIC")]
    probe: Option<String>,
    /// The longest any check may take, e.g. 10s
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Print the report as one JSON object
    #[arg(long)]
    json: bool,
}

pub fn run(a: HealthArgs) -> anyhow::Result<ExitCode> {
    let loaded = a.kafka.load()?;
    print_notes(&loaded);
    let rt = runtime()?;
    let options = HealthOptions {
        topics: a.topics.clone(),
        probe_topic: a.probe.clone(),
        timeout: a.timeout,
    };
    let report = rt.block_on(check(&loaded.config, &options));
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        match &report.cluster_error {
            Some(e) => println!("brokers: FAIL {e}"),
            None => println!(
                "brokers: {} {}",
                if report.brokers.iter().all(|b| b.reachable) {
                    "ok"
                } else {
                    "FAIL"
                },
                report
                    .brokers
                    .iter()
                    .map(|b| format!(
                        "{}={}{}",
                        b.id,
                        b.address,
                        if b.reachable { "" } else { " (not answering)" }
                    ))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        }
        if report.cluster_error.is_none() {
            print_cluster(&report.cluster);
        }
        for t in &report.topics {
            if !t.exists {
                println!("topic {}: FAIL does not exist", t.name);
            } else if !t.without_leader.is_empty() {
                println!(
                    "topic {}: FAIL partitions without a leader: {:?}",
                    t.name, t.without_leader
                );
            } else {
                let warn = if t.under_replicated.is_empty() {
                    String::new()
                } else {
                    format!(" (under-replicated: {:?})", t.under_replicated)
                };
                println!("topic {}: ok {} partition(s){warn}", t.name, t.partitions);
            }
        }
        if let Some(p) = &report.probe {
            match (&p.error, p.end_to_end_ms) {
                (None, Some(ms)) => println!(
                    "probe {}: ok produced in {:.1} ms, read back in {ms:.1} ms",
                    p.topic,
                    p.produce_ms.unwrap_or_default()
                ),
                (e, _) => println!("probe {}: FAIL {}", p.topic, e.as_deref().unwrap_or("")),
            }
        }
        println!(
            "{}",
            if report.healthy {
                "healthy"
            } else {
                "unhealthy"
            }
        );
    }
    Ok(if report.healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The controller and the replication of every partition, one line each, naming what is wrong.
fn print_cluster(c: &ClusterHealth) {
    match c.controller {
        Some(id) => println!("controller: ok broker {id}"),
        None => println!("controller: unknown (no broker named one)"),
    }
    let list = |ps: &[PartitionProblem], what: &dyn Fn(&PartitionProblem) -> String| {
        ps.iter()
            .map(|p| format!("{}/{} ({})", p.topic, p.partition, what(p)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let ids = |v: &[i32]| v.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
    if !c.brokers_down.is_empty() {
        println!(
            "brokers down: FAIL {} (named as replicas but missing from the metadata, or not answering)",
            ids(&c.brokers_down)
        );
    }
    if !c.offline.is_empty() {
        println!(
            "offline partitions: FAIL {}",
            list(&c.offline, &|p| format!("replicas {}", ids(&p.replicas)))
        );
    }
    if !c.under_min_isr.is_empty() {
        println!(
            "under min.insync.replicas: FAIL {}",
            list(&c.under_min_isr, &|p| format!(
                "in sync {} < {}",
                p.isr.len(),
                p.min_insync_replicas.unwrap_or_default()
            ))
        );
    }
    if !c.under_replicated.is_empty() {
        println!(
            "under-replicated: FAIL {}",
            list(&c.under_replicated, &|p| format!(
                "in sync {} of {}",
                ids(&p.isr),
                ids(&p.replicas)
            ))
        );
    }
    if c.ok() {
        println!(
            "replication: ok {} partition(s), every replica in sync",
            c.partitions
        );
    }
}
