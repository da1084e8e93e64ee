//! `streamlake topics`.

use crate::args::{runtime, KafkaArgs};
use clap::Subcommand;
use std::process::ExitCode;
use std::time::Duration;
use streamlake::admin::{Admin, ConfigChange};

#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// List topics with partition counts
    List {
        #[command(flatten)]
        kafka: KafkaArgs,
    },
    /// Show partitions, leaders, replicas, in-sync replicas and offsets of a topic
    Describe {
        #[command(flatten)]
        kafka: KafkaArgs,
        /// Topic
        topic: String,
        /// Print one JSON object
        #[arg(long)]
        json: bool,
    },
    /// Show a topic's configs, or change some (the others are kept)
    Config {
        #[command(flatten)]
        kafka: KafkaArgs,
        /// Topic
        topic: String,
        /// Set a config, e.g. --set retention.ms=3600000 (repeatable)
        #[arg(long, value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Return a config to the broker's default (repeatable)
        #[arg(long, value_name = "KEY")]
        delete: Vec<String>,
        /// Show every config, not only those set on the topic
        #[arg(long)]
        all: bool,
        /// Print the configs as one JSON array
        #[arg(long)]
        json: bool,
    },
    /// Create a topic
    Create {
        #[command(flatten)]
        kafka: KafkaArgs,
        /// Topic
        topic: String,
        /// Partitions
        #[arg(short, long, default_value_t = 6)]
        partitions: i32,
        /// Replication factor
        #[arg(short, long, default_value_t = 3)]
        replication: i32,
        /// Topic config, e.g. -c retention.ms=86400000 (repeatable)
        #[arg(short, long = "config-entry", value_name = "KEY=VALUE")]
        config_entries: Vec<String>,
    },
    /// Delete a topic
    Delete {
        #[command(flatten)]
        kafka: KafkaArgs,
        /// Topic
        topic: String,
    },
}

const TIMEOUT: Duration = Duration::from_secs(30);

pub fn run(c: TopicsCommand) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    match c {
        TopicsCommand::List { kafka } => {
            let admin = Admin::new(&kafka.load()?.config, TIMEOUT)?;
            for t in admin.describe(None)? {
                println!("{}\t{} partition(s)", t.name, t.partitions.len());
            }
        }
        TopicsCommand::Describe { kafka, topic, json } => {
            let admin = Admin::new(&kafka.load()?.config, TIMEOUT)?;
            for t in admin.describe(Some(&topic))? {
                // Offsets need each partition's leader: a partition without one has none.
                let offsets: Vec<Option<(i64, i64)>> = t
                    .partitions
                    .iter()
                    .map(|p| admin.watermarks(&t.name, p.id).ok())
                    .collect();
                if json {
                    let partitions: Vec<_> = t
                        .partitions
                        .iter()
                        .zip(&offsets)
                        .map(|(p, o)| {
                            serde_json::json!({
                                "partition": p.id, "leader": p.leader, "replicas": p.replicas,
                                "isr": p.isr, "low": o.map(|o| o.0), "high": o.map(|o| o.1),
                            })
                        })
                        .collect();
                    println!(
                        "{}",
                        serde_json::json!({"topic": t.name, "partitions": partitions})
                    );
                    continue;
                }
                println!("{}", t.name);
                for (p, o) in t.partitions.iter().zip(&offsets) {
                    let offsets = match o {
                        Some((low, high)) => {
                            format!("offsets {low}..{high} ({} records)", high - low)
                        }
                        None => "offsets unknown (no leader)".to_owned(),
                    };
                    println!(
                        "  partition {}\tleader {}\treplicas {:?}\tisr {:?}\t{offsets}",
                        p.id, p.leader, p.replicas, p.isr
                    );
                }
            }
        }
        TopicsCommand::Config {
            kafka,
            topic,
            set,
            delete,
            all,
            json,
        } => {
            let admin = Admin::new(&kafka.load()?.config, TIMEOUT)?;
            let entries = if set.is_empty() && delete.is_empty() {
                rt.block_on(admin.topic_configs(&topic))?
            } else {
                let change = ConfigChange {
                    set: set
                        .iter()
                        .map(|e| {
                            e.split_once('=')
                                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                                .ok_or_else(|| anyhow::anyhow!("--set {e}: expected KEY=VALUE"))
                        })
                        .collect::<Result<_, _>>()?,
                    delete,
                };
                rt.block_on(admin.alter_topic_config(&topic, &change))?
            };
            let shown: Vec<_> = entries
                .into_iter()
                .filter(|e| all || e.source == "topic")
                .collect();
            if json {
                println!("{}", serde_json::to_string(&shown)?);
            } else {
                for e in &shown {
                    println!(
                        "{}={}\t({}{})",
                        e.name,
                        e.value.as_deref().unwrap_or("(hidden)"),
                        e.source,
                        if e.read_only { ", read-only" } else { "" }
                    );
                }
                if shown.is_empty() {
                    println!("{topic}: no config set on the topic (--all shows the defaults)");
                }
            }
        }
        TopicsCommand::Create {
            kafka,
            topic,
            partitions,
            replication,
            config_entries,
        } => {
            let admin = Admin::new(&kafka.load()?.config, TIMEOUT)?;
            let entries: Vec<(&str, &str)> = config_entries
                .iter()
                .map(|e| {
                    e.split_once('=')
                        .ok_or_else(|| anyhow::anyhow!("--config-entry {e}: expected KEY=VALUE"))
                })
                .collect::<Result<_, _>>()?;
            rt.block_on(admin.create_topic(&topic, partitions, replication, &entries))?;
            println!("created {topic} ({partitions} partitions, replication {replication})");
        }
        TopicsCommand::Delete { kafka, topic } => {
            let admin = Admin::new(&kafka.load()?.config, TIMEOUT)?;
            rt.block_on(admin.delete_topic(&topic))?;
            println!("deleted {topic}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
