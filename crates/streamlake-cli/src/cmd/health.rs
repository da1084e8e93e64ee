//! `streamlake health`: is the cluster usable? The exit code tells.

use crate::args::{print_notes, runtime, serve_metrics, KafkaArgs};
use clap::Args;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use streamlake::health::{check, ClusterHealth, HealthOptions, HealthReport, PartitionProblem};
use streamlake::metrics::{ClusterMetrics, Readiness};

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
    /// Print the report as one JSON object (with --watch, one per line)
    #[arg(long)]
    json: bool,
    /// Check again at this interval until stopped, e.g. 15s, printing the report whenever it
    /// changes
    #[arg(long, value_name = "INTERVAL", value_parser = humantime::parse_duration)]
    watch: Option<Duration>,
    /// With --watch: serve the cluster metrics (streamlake_cluster_*) at /metrics, and
    /// /healthz and /readyz, on this address, e.g. 127.0.0.1:9465
    #[arg(long, value_name = "HOST:PORT", requires = "watch")]
    metrics_addr: Option<std::net::SocketAddr>,
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
    let Some(every) = a.watch else {
        let report = rt.block_on(check(&loaded.config, &options));
        print_report(&report, a.json)?;
        return Ok(if report.healthy {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    };
    if every.is_zero() {
        anyhow::bail!("--watch: the interval must be more than 0");
    }
    rt.block_on(watch(
        &loaded.config,
        &options,
        every,
        a.json,
        a.metrics_addr,
    ))
}

/// Checks every `every` until the process is stopped, printing each report that differs from
/// the one before and keeping the cluster metrics up to date. `/readyz` answers 503 until the
/// first check has finished, then 200: the exporter is ready, whatever the cluster's state.
async fn watch(
    config: &streamlake::Config,
    options: &HealthOptions,
    every: Duration,
    json: bool,
    metrics_addr: Option<std::net::SocketAddr>,
) -> anyhow::Result<ExitCode> {
    let metrics = ClusterMetrics::default();
    let checked = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if let Some(addr) = metrics_addr {
        let flag = Arc::clone(&checked);
        let ready: Readiness = Arc::new(move || {
            if flag.load(std::sync::atomic::Ordering::SeqCst) {
                Ok(())
            } else {
                Err("the first health check has not finished".into())
            }
        });
        serve_metrics(addr, |registry| metrics.register(registry), ready).await?;
    }
    let mut last: Option<HealthReport> = None;
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let started = Instant::now();
        let report = check(config, options).await;
        metrics.update(&report, started.elapsed());
        checked.store(true, std::sync::atomic::Ordering::SeqCst);
        if last.as_ref().is_none_or(|l| !same_state(l, &report)) {
            print_report(&report, json)?;
            if !json {
                println!();
            }
        }
        last = Some(report);
    }
}

/// Two reports say the same of the cluster (the probe's timings and offsets aside).
fn same_state(a: &HealthReport, b: &HealthReport) -> bool {
    let probe = |r: &HealthReport| r.probe.as_ref().map(|p| (p.ok, p.error.clone()));
    a.healthy == b.healthy
        && a.brokers == b.brokers
        && a.cluster_error == b.cluster_error
        && a.cluster == b.cluster
        && a.topics == b.topics
        && probe(a) == probe(b)
}

/// The report as one JSON line, or as one line per check ending in `healthy`/`unhealthy`.
fn print_report(report: &HealthReport, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(report)?);
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
    Ok(())
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
