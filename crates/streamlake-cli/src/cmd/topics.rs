//! `streamlake topics`.

use crate::args::{runtime, KafkaArgs};
use clap::Subcommand;
use std::process::ExitCode;
use std::time::Duration;
use streamlake::admin::Admin;

#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// List topics with partition counts
    List {
        #[command(flatten)]
        kafka: KafkaArgs,
    },
    /// Show partitions, leaders, replicas and in-sync replicas of a topic
    Describe {
        #[command(flatten)]
        kafka: KafkaArgs,
        /// Topic
        topic: String,
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
        TopicsCommand::Describe { kafka, topic } => {
            let admin = Admin::new(&kafka.load()?.config, TIMEOUT)?;
            for t in admin.describe(Some(&topic))? {
                println!("{}", t.name);
                for p in t.partitions {
                    println!(
                        "  partition {}\tleader {}\treplicas {:?}\tisr {:?}",
                        p.id, p.leader, p.replicas, p.isr
                    );
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
