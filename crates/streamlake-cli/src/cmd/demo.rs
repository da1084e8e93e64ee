//! `streamlake demo`: the main job. Events through a StreamLake producer and back through a
//! consumer, on the embedded cluster unless a cluster is configured.

use crate::args::{print_notes, runtime, KafkaArgs};
use crate::out::say;
use clap::Args;
use std::process::ExitCode;
use std::time::Duration;
use streamlake::admin::{Admin, AdminError};
use streamlake::config::Source;
use streamlake::demo::{self, DemoOptions, Tick};
use streamlake::embedded::EmbeddedCluster;
use streamlake::stats::thousands;

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    kafka: KafkaArgs,
    /// How long to produce, e.g. 10s, 1m
    #[arg(short, long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Events per second (default: as fast as the cluster takes them)
    #[arg(short, long)]
    rate: Option<u64>,
    /// Topic to use (created if missing)
    #[arg(short, long, default_value = "streamlake.demo.orders")]
    topic: String,
    /// Partitions of the topic
    #[arg(long, default_value_t = 6)]
    partitions: i32,
    /// Brokers of the embedded cluster
    #[arg(long, default_value_t = 3)]
    brokers: i32,
    /// Distinct keys (customers)
    #[arg(long, default_value_t = 1000)]
    keys: u64,
}

pub fn run(a: DemoArgs) -> anyhow::Result<ExitCode> {
    let mut loaded = a.kafka.load()?;
    print_notes(&loaded);
    let external = loaded.source_of("bootstrap_servers") != Source::Default;
    let rt = runtime()?;
    // Kept alive until the end of the run.
    let _cluster: Option<EmbeddedCluster> = if external {
        say!("cluster: {} (configured)", loaded.config.bootstrap_servers);
        let admin = Admin::new(&loaded.config, Duration::from_secs(30))?;
        let replication = 3.min(admin.describe(None).map(|_| 3).unwrap_or(1));
        match rt.block_on(admin.create_topic(&a.topic, a.partitions, replication, &[])) {
            Ok(()) | Err(AdminError::TopicExists(_)) => {}
            Err(e) => anyhow::bail!("cannot create topic {}: {e}", a.topic),
        }
        None
    } else {
        let cluster = EmbeddedCluster::start(a.brokers)?;
        let replication = a.brokers.min(3);
        cluster.create_topic(&a.topic, a.partitions, replication)?;
        loaded.config.bootstrap_servers = cluster.bootstrap_servers();
        say!(
            "cluster: embedded, {} brokers at {} (topic {}: {} partitions, replication factor {replication})",
            a.brokers, loaded.config.bootstrap_servers, a.topic, a.partitions
        );
        Some(cluster)
    };
    let p = &loaded.config.producer;
    say!(
        "producer: acks={:?} idempotence={} compression={:?} linger={}ms; events: JSON orders with a key and 5 headers",
        p.acks, p.enable_idempotence, p.compression, p.linger_ms
    );
    // Without --rate: first as fast as the cluster takes events (throughput; latency there is
    // queueing time), then at half that rate (latency as a service would see it).
    let phases: Vec<(String, Option<u64>, Duration)> = match a.rate {
        Some(rate) => vec![(a.topic.clone(), Some(rate), a.duration)],
        None => vec![
            (a.topic.clone(), None, a.duration / 2),
            (format!("{}.steady", a.topic), None, a.duration / 2),
        ],
    };
    // The embedded cluster keeps about 5 MB per partition and drops older batches; a lead
    // of 10,000 events per partition (about 3.5 MB uncompressed) stays inside it.
    let max_lead = _cluster
        .as_ref()
        .map(|_| 10_000 * u64::from(a.partitions.max(1).unsigned_abs()));
    let mut verified = true;
    let mut max_rate = 0.0;
    for (i, (topic, rate, duration)) in phases.into_iter().enumerate() {
        let rate = if i == 1 {
            Some(((max_rate / 2.0) as u64).max(1))
        } else {
            rate
        };
        if i == 1 {
            match &_cluster {
                Some(cluster) => cluster.create_topic(&topic, a.partitions, a.brokers.min(3))?,
                None => {
                    let admin = Admin::new(&loaded.config, Duration::from_secs(30))?;
                    match rt.block_on(admin.create_topic(
                        &topic,
                        a.partitions,
                        3.min(a.brokers),
                        &[],
                    )) {
                        Ok(()) | Err(AdminError::TopicExists(_)) => {}
                        Err(e) => anyhow::bail!("cannot create topic {topic}: {e}"),
                    }
                }
            }
        }
        match (rate, max_lead) {
            (None, None) => say!(
                "phase 1: as fast as the cluster takes events, for {}",
                humantime::format_duration(duration)
            ),
            (None, Some(lead)) => say!(
                "phase 1: as fast as the cluster takes events and the consumer reads them back (the embedded cluster keeps a bounded log, so the producer stays at most {} events ahead), for {}",
                thousands(lead as f64),
                humantime::format_duration(duration)
            ),
            (Some(r), _) if a.rate.is_none() => {
                say!(
                    "phase 2: {} events/s (half of phase 1), for {}",
                    thousands(r as f64),
                    humantime::format_duration(duration)
                )
            }
            (Some(r), _) => say!(
                "{} events/s for {}",
                thousands(r as f64),
                humantime::format_duration(duration)
            ),
        }
        let options = DemoOptions {
            topic,
            duration,
            rate,
            keys: a.keys.max(1),
            max_lead,
        };
        let report = rt.block_on(demo::run(&loaded.config, &options, |t: &Tick| {
            say!(
                "[{:>4.0}s] delivered {:>9}/s  consumed {:>9}/s  latency p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  total {} / {}",
                t.elapsed.as_secs_f64(),
                thousands(t.delivered_per_sec),
                thousands(t.consumed_per_sec),
                t.latency.p50_ms,
                t.latency.p99_ms,
                t.latency.max_ms,
                thousands(t.delivered as f64),
                thousands(t.consumed as f64),
            );
        }))?;
        let secs = report.produce_time.as_secs_f64().max(1e-9);
        max_rate = report.delivered as f64 / secs;
        println!(
            "sent {} events in {:.1}s ({} events/s): {} delivered, {} failed; delivery latency p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
            thousands(report.sent as f64),
            secs,
            thousands(max_rate),
            thousands(report.delivered as f64),
            report.failed,
            report.latency.p50_ms,
            report.latency.p99_ms,
            report.latency.p999_ms,
            report.latency.max_ms,
        );
        println!(
            "read back {} events: {} missing, {} duplicates, {} out of order per key",
            thousands(report.consumed as f64),
            report.missing,
            report.duplicates,
            report.out_of_order
        );
        verified &= report.verified();
    }
    if verified {
        println!("verified: every event delivered and read back exactly once, in order per key");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("NOT verified: see the counts above");
        Ok(ExitCode::FAILURE)
    }
}
