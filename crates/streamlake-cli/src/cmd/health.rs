//! `streamlake health`: is the cluster usable? The exit code tells.

use crate::args::{print_notes, runtime, KafkaArgs};
use clap::Args;
use std::process::ExitCode;
use std::time::Duration;
use streamlake::health::{check, HealthOptions};

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
                "brokers: ok {}",
                report
                    .brokers
                    .iter()
                    .map(|b| format!("{}={}", b.id, b.address))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
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
