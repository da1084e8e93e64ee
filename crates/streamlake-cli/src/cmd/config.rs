//! `streamlake config show|check`.

use crate::args::KafkaArgs;
use crate::out::say;
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;
use streamlake::config::{redact_property, shown_name, ClientKind, ConfigError, ConfigLoader};

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration, the source of every value, and (with --librdkafka)
    /// the client properties it becomes. Secrets are redacted.
    Show {
        #[command(flatten)]
        kafka: KafkaArgs,
        /// Also print the librdkafka properties of the producer and the consumer
        #[arg(long)]
        librdkafka: bool,
    },
    /// Validate a config file (with the built-in defaults) and report every problem by key
    /// path, librdkafka's objections included, all at once
    Check {
        /// The file: YAML, TOML or client.properties
        file: PathBuf,
        /// Print the result as one JSON object on stdout:
        /// {"file", "ok", "problems": [{"key", "message"}], "notes"}
        #[arg(long)]
        json: bool,
    },
}

pub fn run(c: ConfigCommand) -> anyhow::Result<ExitCode> {
    match c {
        ConfigCommand::Show { kafka, librdkafka } => {
            let loaded = kafka.load()?;
            crate::args::print_notes(&loaded);
            print!("{}", loaded.show());
            if librdkafka {
                for (name, kind) in [
                    ("producer", ClientKind::Producer),
                    ("consumer", ClientKind::Consumer),
                ] {
                    println!("\n# librdkafka {name} properties");
                    for (k, v) in loaded.config.client_config(kind)?.config_map() {
                        println!("{} = {}", shown_name(k), redact_property(k, v));
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ConfigCommand::Check { file, json } => {
            let (problems, notes) = match ConfigLoader::new().file(&file).load() {
                Ok(loaded) => (Vec::new(), loaded.notes),
                Err(ConfigError::Invalid(problems)) => (problems, Vec::new()),
                Err(e) => return Err(e.into()),
            };
            let code = if problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            };
            if json {
                let problems: Vec<_> = problems
                    .iter()
                    .map(|p| serde_json::json!({"key": p.key, "message": p.message}))
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({
                        "file": file.display().to_string(),
                        "ok": problems.is_empty(),
                        "problems": problems,
                        "notes": notes,
                    })
                );
                return Ok(code);
            }
            for note in &notes {
                say!("note: {note}");
            }
            if problems.is_empty() {
                println!("{}: ok", file.display());
                return Ok(code);
            }
            say!("{}: {} problem(s)", file.display(), problems.len());
            for p in problems {
                say!("  {}: {}", p.key, p.message);
            }
            Ok(code)
        }
    }
}
