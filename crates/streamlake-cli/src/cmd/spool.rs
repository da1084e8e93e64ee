//! `streamlake spool`: look into a disk spool and replay it.

use crate::args::{print_notes, runtime, stop_on_signal, KafkaArgs};
use crate::out::say;
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;
use streamlake::producer::{CircuitConfig, SpoolingProducer};
use streamlake::spool::{inspect, InspectEntry, SpoolConfig};

#[derive(Debug, Subcommand)]
pub enum SpoolCommand {
    /// Segments, bytes, pending records and damage of a spool (read-only; works while a
    /// producer has it open). Exit code 1 when damage is found.
    Status {
        /// The spool folder
        dir: PathBuf,
    },
    /// Every record of a spool with its position and state (read-only)
    Inspect {
        /// The spool folder
        dir: PathBuf,
        /// Show records already replayed too
        #[arg(long)]
        all: bool,
        /// At most this many records
        #[arg(short = 'n', long)]
        limit: Option<usize>,
    },
    /// Replays a spool to Kafka, in order, and exits when it is empty (exit code 1 if records
    /// are left, for example because Kafka stayed away until --timeout)
    Replay {
        #[command(flatten)]
        kafka: KafkaArgs,
        #[command(flatten)]
        metrics: crate::args::MetricsArgs,
        /// The spool folder
        dir: PathBuf,
        /// Give up after this long (e.g. 5m)
        #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
}

pub fn run(c: SpoolCommand) -> anyhow::Result<ExitCode> {
    match c {
        SpoolCommand::Status { dir } => {
            let s = inspect(&dir)?.summarize()?;
            println!("spool {}", s.dir.display());
            println!(
                "  {} segment(s), {} bytes, {} record(s), {} pending",
                s.segments, s.bytes, s.records, s.pending_records
            );
            for f in &s.corrupt_files {
                println!("  set aside: {f}");
            }
            if let Some(p) = &s.checkpoint_problem {
                println!("  checkpoint: {p}");
            }
            for d in &s.damage {
                println!("  damage: {d}");
            }
            Ok(if s.damage.is_empty() && s.checkpoint_problem.is_none() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        SpoolCommand::Inspect { dir, all, limit } => {
            let mut shown = 0;
            let mut damaged = false;
            for entry in inspect(&dir)? {
                match entry? {
                    InspectEntry::Segment { name, bytes } => println!("# {name} ({bytes} bytes)"),
                    InspectEntry::Record {
                        position,
                        acked,
                        record,
                        ..
                    } => {
                        if acked && !all {
                            continue;
                        }
                        let show = |b: Option<&[u8]>| {
                            b.map_or("null".to_owned(), |v| String::from_utf8_lossy(v).into())
                        };
                        println!(
                            "{}:{} {} topic={} key={} value={}",
                            position.segment(),
                            position.offset(),
                            if acked { "replayed" } else { "pending" },
                            record.topic,
                            show(record.key.as_deref()),
                            show(record.value.as_deref())
                        );
                        shown += 1;
                        if limit.is_some_and(|n| shown >= n) {
                            break;
                        }
                    }
                    InspectEntry::Damage(d) => {
                        damaged = true;
                        println!("damage: {d}");
                    }
                    _ => {}
                }
            }
            Ok(if damaged {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        SpoolCommand::Replay {
            kafka,
            metrics,
            dir,
            timeout,
        } => {
            let loaded = kafka.load()?;
            print_notes(&loaded);
            let rt = runtime()?;
            let stop = stop_on_signal(&rt);
            rt.block_on(async {
                let (p, report) = SpoolingProducer::new(
                    &loaded.config,
                    &SpoolConfig::with_dir(&dir),
                    CircuitConfig::default(),
                )?;
                if let Some(r) = report.filter(|r| !r.is_clean()) {
                    for d in &r.damage {
                        say!("damage: {d}");
                    }
                }
                let m = p.producer().metrics().clone();
                metrics.start(|r| m.register(r), m.brokers.clone()).await?;
                let deadline = tokio::time::Instant::now() + timeout;
                while p.spooled_pending() > 0
                    && tokio::time::Instant::now() < deadline
                    && !stop.load(Ordering::SeqCst)
                {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                let report = p.close(Duration::from_secs(30)).await;
                say!(
                    "replayed {} record(s); {} left in the spool",
                    report.replayed,
                    report.left_in_spool
                );
                Ok(if report.left_in_spool == 0 {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                })
            })
        }
    }
}
