//! `streamlake schema`: register, fetch and check schemas, for scripts and CI.

use crate::args::{runtime, KafkaArgs};
use crate::out::say;
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;
use streamlake::registry::{Registry, SchemaType};
use streamlake::serdes::LocalSchema;

#[derive(Debug, Subcommand)]
pub enum SchemaCommand {
    /// Register a schema file under a subject; prints its id
    Register {
        #[command(flatten)]
        kafka: KafkaArgs,
        /// Subject, e.g. orders-value
        #[arg(short, long)]
        subject: String,
        /// Schema file (.avsc Avro, .json JSON Schema)
        file: PathBuf,
    },
    /// Print a registered schema: the latest version of a subject, a given version, or by id
    Get {
        #[command(flatten)]
        kafka: KafkaArgs,
        /// Subject
        #[arg(short, long, required_unless_present = "id")]
        subject: Option<String>,
        /// Version (default: latest)
        #[arg(short, long, requires = "subject")]
        version: Option<i32>,
        /// Schema id
        #[arg(long, conflicts_with = "subject")]
        id: Option<u32>,
    },
    /// Check whether a schema file may be registered under a subject; exit 1 with the
    /// registry's reasons if not
    Check {
        #[command(flatten)]
        kafka: KafkaArgs,
        /// Subject
        #[arg(short, long)]
        subject: String,
        /// Schema file
        file: PathBuf,
    },
    /// List subjects
    Subjects {
        #[command(flatten)]
        kafka: KafkaArgs,
    },
}

fn client(kafka: &KafkaArgs) -> anyhow::Result<Registry> {
    Ok(Registry::new(&kafka.load()?.config.schema_registry)?)
}

fn type_name(t: SchemaType) -> &'static str {
    t.as_str()
}

pub fn run(c: SchemaCommand) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    match c {
        SchemaCommand::Register {
            kafka,
            subject,
            file,
        } => {
            let local = LocalSchema::from_file(&file, None)?;
            let id = rt.block_on(client(&kafka)?.register(
                &subject,
                local.schema_type,
                &local.text,
                &[],
            ))?;
            println!("{id}");
            say!(
                "{} registered under {subject} ({}): id {id}",
                file.display(),
                type_name(local.schema_type)
            );
        }
        SchemaCommand::Get {
            kafka,
            subject,
            version,
            id,
        } => {
            let registry = client(&kafka)?;
            let schema = match (subject, id) {
                (_, Some(id)) => rt.block_on(registry.by_id(id))?,
                (Some(subject), None) => rt.block_on(registry.version(&subject, version))?,
                (None, None) => anyhow::bail!("give --subject or --id"),
            };
            let text = serde_json::from_str::<serde_json::Value>(&schema.schema)
                .ok()
                .and_then(|v| serde_json::to_string_pretty(&v).ok())
                .unwrap_or_else(|| schema.schema.clone());
            println!("{text}");
            let version = schema
                .version
                .as_ref()
                .map(|(s, v)| format!(", {s} version {v}"))
                .unwrap_or_default();
            say!(
                "id {} ({}{version})",
                schema.id,
                type_name(schema.schema_type)
            );
        }
        SchemaCommand::Check {
            kafka,
            subject,
            file,
        } => {
            let local = LocalSchema::from_file(&file, None)?;
            let verdict = rt.block_on(client(&kafka)?.check_compatibility(
                &subject,
                local.schema_type,
                &local.text,
            ))?;
            if verdict.compatible {
                println!(
                    "compatible: {} may be registered under {subject}",
                    file.display()
                );
            } else {
                println!(
                    "incompatible: {} may not be registered under {subject}",
                    file.display()
                );
                for m in &verdict.messages {
                    println!("  {m}");
                }
                return Ok(ExitCode::FAILURE);
            }
        }
        SchemaCommand::Subjects { kafka } => {
            for s in rt.block_on(client(&kafka)?.subjects())? {
                println!("{s}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
