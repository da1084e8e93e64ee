//! The `streamlake` command. Parses flags and wires library parts together; all behaviour lives
//! in the `streamlake` crate.

// Printing results is this binary's job; the library never prints.
#![allow(clippy::print_stdout)]

mod args;
mod cmd;
mod out;

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use streamlake::logging::{LogFormat, LogOptions};

/// jemalloc instead of the system allocator, for Rust and, through its unprefixed `malloc`,
/// for librdkafka too: records and their headers are allocated on the sending thread and freed
/// on librdkafka's threads, a pattern glibc's allocator serves slowly (the producer benchmark
/// in docs/benchmarks.md ran about 2.5 times faster with jemalloc).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read when it starts (before `main`); `MALLOC_CONF` in the environment
/// still overrides them. Two arenas instead of jemalloc's four per CPU: the allocating threads
/// that matter are the senders and librdkafka's broker threads, and every further arena keeps
/// its own partly used pages. An idle `serve` stays about 1 MiB smaller, the peak of `perf`
/// flat out is lower too, and its throughput did not change measurably (docs/benchmarks.md).
// The exported name replaces jemalloc's weak default; jemalloc reads it as a C string, which
// this is: a pointer to the first byte of a NUL-terminated literal.
#[allow(unsafe_code, non_upper_case_globals)]
#[unsafe(no_mangle)]
static malloc_conf: Option<&'static u8> = Some(&b"narenas:2\0"[0]);

/// StreamLake: get data into Kafka reliably and fast, and read it back.
#[derive(Debug, Parser)]
#[command(name = "streamlake", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines on stderr: human-readable text, or one JSON object per line (every record
    /// event carries its ingestion_id)
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "STREAMLAKE_LOG_FORMAT"
    )]
    log_format: LogFormatArg,
    /// Which log events to show, as a filter: warn, info, debug, or e.g. info,librdkafka=debug
    #[arg(
        long,
        global = true,
        value_name = "FILTER",
        env = "STREAMLAKE_LOG",
        default_value = "warn"
    )]
    log_level: String,
    /// Export spans over OTLP/HTTP to this collector, e.g. http://127.0.0.1:4318
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "OTEL_EXPORTER_OTLP_ENDPOINT"
    )]
    otlp_endpoint: Option<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormatArg {
    Text,
    Json,
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
    let cli = Cli::parse();
    let json = matches!(cli.log_format, LogFormatArg::Json);
    out::set_json(json);
    let options = LogOptions {
        format: if json {
            LogFormat::Json
        } else {
            LogFormat::Text
        },
        filter: cli.log_level.clone(),
        always: vec![format!("{}=info", out::TARGET)],
        otlp_endpoint: cli.otlp_endpoint.clone(),
        service_name: "streamlake".to_owned(),
    };
    let _logging = match streamlake::logging::init(&options) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    out::set_command(cli.command.name());
    let span = tracing::info_span!(target: out::TARGET, "streamlake", command = cli.command.name());
    let _entered = span.enter();
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
            out::error(format_args!("{e:#}"));
            ExitCode::FAILURE
        }
    }
}

impl Command {
    /// The subcommand's name, for the command's span.
    fn name(&self) -> &'static str {
        match self {
            Self::Demo(_) => "demo",
            Self::Dev(_) => "dev",
            Self::Produce(_) => "produce",
            Self::Consume(_) => "consume",
            Self::Datagen(_) => "datagen",
            Self::Perf(_) => "perf",
            Self::Topics(_) => "topics",
            Self::Serve(_) => "serve",
            Self::Schema(_) => "schema",
            Self::Spool(_) => "spool",
            Self::Health(_) => "health",
            Self::Config(_) => "config",
        }
    }
}
