//! The `streamlake` command. Parses flags and wires library parts together; all behaviour lives
//! in the `streamlake` crate.

// Printing results is this binary's job; the library never prints.
#![allow(clippy::print_stdout)]

mod args;
mod cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// StreamLake: get data into Kafka reliably and fast, and read it back.
#[derive(Debug, Parser)]
#[command(name = "streamlake", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run events through a producer and back through a consumer, with live throughput and
    /// latency. Uses an embedded 3-broker cluster unless a cluster is configured.
    Demo(cmd::demo::DemoArgs),
    /// Run an embedded Kafka-compatible cluster until Ctrl-C, for trying the other commands.
    Dev(cmd::dev::DevArgs),
    /// Produce records from stdin or a file, one per line.
    Produce(cmd::produce::ProduceArgs),
    /// Consume records and print them.
    Consume(cmd::consume::ConsumeArgs),
    /// Generate schema-true random records (Protobuf, Avro, JSON Schema) into a topic.
    Datagen(cmd::datagen::DatagenArgs),
    /// Measure producer (or, with `consume`, consumer) throughput and latency.
    Perf(cmd::perf::PerfArgs),
    /// List, create, describe and delete topics.
    #[command(subcommand)]
    Topics(cmd::topics::TopicsCommand),
    /// Run the HTTP ingestion gateway.
    Serve(cmd::serve::ServeArgs),
    /// Register, fetch and check schemas in the Schema Registry.
    #[command(subcommand)]
    Schema(cmd::schema::SchemaCommand),
    /// Look into a disk spool, or replay it to Kafka.
    #[command(subcommand)]
    Spool(cmd::spool::SpoolCommand),
    /// Check the cluster: brokers reachable, topics present with leaders, and optionally an
    /// end-to-end produce and consume. Exit code 0 when healthy, 1 when not.
    Health(cmd::health::HealthArgs),
    /// Show the effective configuration or check a config file.
    #[command(subcommand)]
    Config(cmd::config::ConfigCommand),
}

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STREAMLAKE_LOG")
        .unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(a) => cmd::demo::run(a),
        Command::Dev(a) => cmd::dev::run(a),
        Command::Produce(a) => cmd::produce::run(a),
        Command::Consume(a) => cmd::consume::run(a),
        Command::Datagen(a) => cmd::datagen::run(a),
        Command::Perf(a) => cmd::perf::run(a),
        Command::Topics(c) => cmd::topics::run(c),
        Command::Serve(a) => cmd::serve::run(a),
        Command::Schema(c) => cmd::schema::run(c),
        Command::Config(c) => cmd::config::run(c),
        Command::Health(a) => cmd::health::run(a),
        Command::Spool(c) => cmd::spool::run(c),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
