//! `streamlake datagen`: schema-true random records into a topic, or to stdout.

use crate::args::{print_notes, runtime, stop_on_signal, KafkaArgs};
use crate::out::say;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use streamlake::datagen::{self, Burst, Generator, Progress, RunOptions, Spec};
use streamlake::registry::{Role, SchemaType};
use streamlake::serdes::{Format, LocalSchema, Serializer};
use streamlake::stats::thousands;
use streamlake::Producer;

#[derive(Debug, Args)]
pub struct DatagenArgs {
    #[command(flatten)]
    kafka: KafkaArgs,
    #[command(flatten)]
    metrics: crate::args::MetricsArgs,
    /// Schema file: .proto (Protobuf), .avsc (Avro) or .json (JSON Schema)
    #[arg(short, long, value_name = "FILE")]
    schema: PathBuf,
    /// Protobuf message to generate (default: the first in the file)
    #[arg(long, value_name = "NAME")]
    message: Option<String>,
    /// Destination topic (not needed with --dry-run)
    #[arg(short, long, required_unless_present = "dry_run")]
    topic: Option<String>,
    /// Records to send
    #[arg(short = 'n', long)]
    count: Option<u64>,
    /// How long to send, e.g. 30s, 5m
    #[arg(short, long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Records per second (default: as fast as the cluster takes them)
    #[arg(short, long)]
    rate: Option<f64>,
    /// Records per second during bursts
    #[arg(long, requires = "burst_every")]
    burst_rate: Option<f64>,
    /// Time between burst starts, e.g. 60s
    #[arg(long, value_parser = humantime::parse_duration, requires = "burst_rate")]
    burst_every: Option<Duration>,
    /// Length of each burst
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    burst_for: Duration,
    /// JSON pointer of the record key, e.g. /id
    #[arg(long, value_name = "POINTER")]
    key_field: Option<String>,
    /// Seed for reproducible records
    #[arg(long)]
    seed: Option<u64>,
    /// Per-field overrides (YAML): choices, min/max/decimals, sequence, constant, null_rate
    #[arg(long, value_name = "FILE")]
    spec: Option<PathBuf>,
    /// Value format; default: the schema's own through the registry. `json` sends plain JSON
    #[arg(long, value_name = "FORMAT")]
    format: Option<Format>,
    /// Print the records as JSON lines instead of producing them
    #[arg(long)]
    dry_run: bool,
}

pub fn run(a: DatagenArgs) -> anyhow::Result<ExitCode> {
    let mut schema = LocalSchema::from_file(&a.schema, None)?;
    if let Some(m) = &a.message {
        schema = schema.with_message(m)?;
    }
    let spec = a
        .spec
        .as_deref()
        .map(Spec::from_file)
        .transpose()?
        .unwrap_or_default();
    let mut generator = Generator::new(&schema, spec, a.seed)?;
    if a.dry_run {
        let n = a.count.unwrap_or(10);
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        for _ in 0..n {
            writeln!(out, "{}", generator.next_record())?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let topic = a.topic.clone().unwrap_or_default();
    if a.count.is_none() && a.duration.is_none() {
        say!("no --count or --duration: sending until Ctrl-C");
    }
    let loaded = a.kafka.load()?;
    print_notes(&loaded);
    let format = a.format.unwrap_or(match schema.schema_type {
        SchemaType::Avro => Format::Avro,
        SchemaType::Protobuf => Format::Protobuf,
        SchemaType::Json => Format::JsonSchema,
    });
    let registry = crate::args::registry(&loaded.config)?;
    let local = format.uses_registry().then(|| schema.clone());
    let serializer = Serializer::new(
        format,
        Role::Value,
        local,
        registry,
        &loaded.config.schema_registry,
    )?;
    let rt = runtime()?;
    let stop = stop_on_signal(&rt);
    if format.uses_registry() {
        let id = rt.block_on(serializer.prepare(&topic))?;
        say!(
            "schema {} registered for {topic}: id {id}",
            schema.record_name.as_deref().unwrap_or("(unnamed)")
        );
    }
    let producer = Producer::new(&loaded.config)?;
    let producer_metrics = producer.metrics().clone();
    a.metrics.serve(
        &rt,
        |m| producer_metrics.register(m),
        producer_metrics.brokers.clone(),
    )?;
    let options = RunOptions {
        topic: topic.clone(),
        count: a.count,
        duration: a.duration,
        rate: a.rate,
        burst: a.burst_rate.zip(a.burst_every).map(|(rate, every)| Burst {
            rate,
            every,
            length: a.burst_for,
        }),
        key_field: a.key_field.clone(),
    };
    let started = Instant::now();
    let mut last = (Instant::now(), 0u64);
    let result = datagen::run(
        &producer,
        &serializer,
        &mut generator,
        &options,
        &stop,
        |p: &Progress| {
            let rate = (p.delivered - last.1) as f64 / last.0.elapsed().as_secs_f64().max(1e-9);
            last = (Instant::now(), p.delivered);
            let total = a
                .count
                .map(|n| format!(" of {}", thousands(n as f64)))
                .unwrap_or_default();
            eprint!(
                "\r[{:>5.0}s] {}{total} sent, {} delivered, {} failed, {} records/s   ",
                p.elapsed.as_secs_f64(),
                thousands(p.sent as f64),
                thousands(p.delivered as f64),
                p.failed,
                thousands(rate)
            );
        },
    );
    let delivery_timeout = Duration::from_millis(loaded.config.producer.delivery_timeout_ms);
    let report = producer.close(delivery_timeout + Duration::from_secs(5));
    say!();
    let progress = result?;
    // From the first record until every record had its outcome.
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    say!(
        "generated {} records for {topic} in {:.3}s ({} records/s): {} delivered, {} failed",
        thousands(progress.sent as f64),
        secs,
        thousands(progress.sent as f64 / secs),
        thousands(report.delivered as f64),
        report.failed
    );
    Ok(if report.failed > 0 || !report.all_delivered() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
