//! `streamlake perf`: producer throughput and delivery latency (from intended send time);
//! `streamlake perf consume`: consumer throughput and end-to-end latency.

use crate::args::{print_notes, runtime, stop_on_signal, KafkaArgs};
use crate::out::say;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use streamlake::consumer::StartFrom;
use streamlake::datagen::{Generator, Spec};
use streamlake::perf::consume::ConsumeProgress;
use streamlake::perf::options::{DEFAULT_IDLE_TIMEOUT, DEFAULT_KEYS, DEFAULT_PRODUCERS};
use streamlake::perf::payload::{
    values_from_generator, values_from_lines, GENERATED_VALUES, SYNTHETIC_SCHEMA,
};
use streamlake::perf::produce::Progress;
use streamlake::perf::{
    ConsumeOptions, ConsumeReport, CreateTopic, PayloadSpec, Percentiles, PerfError, PerfOptions,
    PerfReport, Warmup,
};
use streamlake::registry::Role;
use streamlake::serdes::{Format, LocalSchema, Serializer};
use streamlake::stats::thousands;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct PerfArgs {
    #[command(subcommand)]
    command: Option<PerfCommand>,
    #[command(flatten)]
    produce: ProducePerfArgs,
}

#[derive(Debug, Subcommand)]
enum PerfCommand {
    /// Measure consumer throughput and end-to-end latency (read time minus the send time
    /// `streamlake perf` puts in each record, or the record timestamp)
    Consume(ConsumePerfArgs),
}

#[derive(Debug, Args)]
struct ProducePerfArgs {
    #[command(flatten)]
    kafka: KafkaArgs,
    #[command(flatten)]
    metrics: crate::args::MetricsArgs,
    /// Topic to write to
    #[arg(short, long, required = true)]
    topic: Option<String>,
    /// Measured records to send (the warm-up comes on top)
    #[arg(short = 'n', long, value_name = "N")]
    records: Option<u64>,
    /// How long to measure, e.g. 30s, 5m (the warm-up comes first). With neither --records nor
    /// --duration the run goes on until Ctrl-C
    #[arg(short, long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Value bytes of each record: an order as JSON padded to exactly this size
    #[arg(short = 's', long, value_name = "BYTES", default_value_t = streamlake::perf::options::DEFAULT_RECORD_SIZE,
          conflicts_with_all = ["payload_file", "value_schema"])]
    record_size: usize,
    /// Send the non-empty lines of this file as values, cycled (each checked as JSON with
    /// --value-format json, encoded to the schema with a registry format)
    #[arg(long, value_name = "FILE")]
    payload_file: Option<PathBuf>,
    /// Keys are drawn from this many distinct keys
    #[arg(long, value_name = "N", default_value_t = DEFAULT_KEYS)]
    keys: u64,
    /// Send records without keys
    #[arg(long, conflicts_with = "keys")]
    no_keys: bool,
    /// Send records without headers (no ingestion_id, source, schema, traceparent,
    /// content_type and perf_sent_us; perf consume then measures from the record timestamp)
    #[arg(long)]
    no_headers: bool,
    /// Value format: json, or through the schema registry avro, protobuf or json-schema
    /// (records generated from --value-schema, or the --payload-file lines encoded)
    #[arg(long, default_value = "json", value_name = "FORMAT")]
    value_format: Format,
    /// Schema file for a registry value format (.avsc Avro, .proto Protobuf, .json JSON Schema)
    #[arg(long, value_name = "FILE")]
    value_schema: Option<PathBuf>,
    /// Protobuf message to write, e.g. shop.Order (default: the first in the .proto file)
    #[arg(long, value_name = "NAME", requires = "value_schema")]
    value_message: Option<String>,
    /// Producers sending in parallel, each with its own client and connections
    #[arg(short = 'P', long, value_name = "N", default_value_t = DEFAULT_PRODUCERS)]
    producers: usize,
    /// Target records per second over all producers (default: as fast as the cluster takes
    /// them). Latency is measured from each record's scheduled send time
    #[arg(long, value_name = "RECORDS_PER_SEC")]
    throughput: Option<f64>,
    /// Warm-up, sent but not measured: a record count (5000), a duration (2s), 0, or auto
    /// (a tenth of --records, or of --duration up to 2s)
    #[arg(long, value_name = "N|DURATION", default_value_t = Warmup::Auto)]
    warmup: Warmup,
    /// Acknowledgement level (overrides producer.acks)
    #[arg(long, value_parser = ["all", "leader", "none"])]
    acks: Option<String>,
    /// Compression codec (overrides producer.compression)
    #[arg(long, value_parser = ["none", "gzip", "snappy", "lz4", "zstd"])]
    compression: Option<String>,
    /// Create the topic with this many partitions if it does not exist
    #[arg(long, value_name = "N")]
    create_partitions: Option<i32>,
    /// Replicas of a topic created by --create-partitions
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1,
        requires = "create_partitions"
    )]
    replication_factor: i32,
    /// Print the result as one JSON object on stdout (progress still goes to stderr)
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ConsumePerfArgs {
    #[command(flatten)]
    kafka: KafkaArgs,
    #[command(flatten)]
    metrics: crate::args::MetricsArgs,
    /// Topic to read (every partition, without a consumer group: nothing is committed)
    #[arg(short, long)]
    topic: String,
    /// Stop after this many records
    #[arg(short = 'n', long, value_name = "N")]
    records: Option<u64>,
    /// Stop after reading for this long, e.g. 30s
    #[arg(short, long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Start: beginning, end, an offset, -N (N before the end), @<ms>, or an RFC 3339 time
    #[arg(
        long,
        value_name = "POSITION",
        default_value = "beginning",
        allow_hyphen_values = true
    )]
    from: StartFrom,
    /// Stop when no record came for this long (from the end: only once the first has come)
    #[arg(long, value_name = "DURATION", default_value_t = DEFAULT_IDLE_TIMEOUT.into())]
    idle_timeout: humantime::Duration,
    /// Print the result as one JSON object on stdout (progress still goes to stderr)
    #[arg(long)]
    json: bool,
}

pub fn run(a: PerfArgs) -> anyhow::Result<ExitCode> {
    match a.command {
        Some(PerfCommand::Consume(c)) => consume(c),
        None => produce(a.produce),
    }
}

fn produce(a: ProducePerfArgs) -> anyhow::Result<ExitCode> {
    let topic = a.topic.clone().unwrap_or_default();
    let mut loader = a.kafka.loader()?;
    if let Some(c) = &a.compression {
        loader = loader.flag("producer.compression", c.as_str(), "--compression");
    }
    if let Some(acks) = &a.acks {
        loader = loader.flag("producer.acks", acks.as_str(), "--acks");
    }
    let loaded = loader.load()?;
    print_notes(&loaded);
    let config = &loaded.config;
    let options = PerfOptions {
        records: a.records,
        duration: a.duration,
        record_size: a.record_size,
        keys: (!a.no_keys).then_some(a.keys),
        headers: !a.no_headers,
        producers: a.producers,
        throughput: a.throughput,
        warmup: a.warmup,
        ..PerfOptions::new(topic.clone())
    };
    options.validate()?;
    if options.records.is_none() && options.duration.is_none() {
        say!("no --records or --duration: sending until Ctrl-C");
    }

    let rt = runtime()?;
    let stop = stop_on_signal(&rt);
    let create = a.create_partitions.map(|partitions| CreateTopic {
        partitions,
        replication: a.replication_factor,
    });
    let ready = match rt.block_on(streamlake::perf::ensure_topic(config, &topic, create)) {
        Ok(r) => r,
        Err(PerfError::UnknownTopic(t)) => anyhow::bail!(
            "topic `{t}` does not exist: create it (`streamlake topics create`) or pass --create-partitions N"
        ),
        Err(e) => return Err(e.into()),
    };
    if ready.created {
        say!(
            "created topic {topic} with {} partition(s)",
            ready.partitions
        );
    }
    let payload = Arc::new(payload(&a, &options, config, &rt)?);

    let metrics = streamlake::metrics::ProducerMetrics::default();
    a.metrics
        .serve(&rt, |m| metrics.register(m), metrics.brokers.clone())?;
    let report = streamlake::perf::produce::run_with_metrics(
        config,
        &options,
        &payload,
        &metrics,
        &stop,
        print_progress,
    )?;
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_report(&report, ready.partitions);
    }
    if report.errors > 0 {
        say!(
            "{} record(s) failed: {}",
            thousands(report.errors as f64),
            kinds(&report)
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// What the records carry: synthetic JSON, file lines, or schema-true generated values.
fn payload(
    a: &ProducePerfArgs,
    options: &PerfOptions,
    config: &streamlake::Config,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<PayloadSpec> {
    let format = a.value_format;
    if !matches!(
        format,
        Format::Json | Format::Avro | Format::Protobuf | Format::JsonSchema
    ) {
        anyhow::bail!("--value-format takes json, avro, protobuf or json-schema");
    }
    if format.uses_registry() && a.payload_file.is_none() && a.value_schema.is_none() {
        anyhow::bail!("a registry --value-format needs --value-schema FILE to generate records from (or --payload-file with JSON lines to encode)");
    }
    if a.payload_file.is_none() && !format.uses_registry() {
        return Ok(PayloadSpec::synthetic(
            options.record_size,
            options.keys,
            options.headers,
        )?);
    }
    let schema = match &a.value_schema {
        Some(path) => {
            let s = LocalSchema::from_file(path, None)?;
            Some(match &a.value_message {
                Some(m) => s.with_message(m)?,
                None => s,
            })
        }
        None => None,
    };
    let registry = crate::args::registry(config)?;
    let serializer = Serializer::new(
        format,
        Role::Value,
        schema.clone().filter(|_| format.uses_registry()),
        registry,
        &config.schema_registry,
    )?;
    if format.uses_registry() {
        let id = rt.block_on(serializer.prepare(&options.topic))?;
        say!("value schema id {id}");
    }
    let name = schema
        .as_ref()
        .and_then(|s| s.record_name.clone())
        .unwrap_or_else(|| SYNTHETIC_SCHEMA.to_owned());
    let values = match &a.payload_file {
        Some(path) => {
            let file = std::fs::File::open(path)
                .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
            values_from_lines(std::io::BufReader::new(file), &serializer, &options.topic)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        None => {
            let Some(schema) = schema.as_ref() else {
                anyhow::bail!("--value-schema is needed to generate records");
            };
            let mut generator = Generator::new(schema, Spec::default(), None)?;
            values_from_generator(
                &mut generator,
                &serializer,
                &options.topic,
                GENERATED_VALUES,
            )?
        }
    };
    Ok(PayloadSpec::cycled(
        values,
        format,
        name,
        options.keys,
        options.headers,
    )?)
}

fn print_progress(p: &Progress) {
    let phase = if p.warming_up { "warm-up" } else { "measure" };
    let behind = if p.behind >= Duration::from_millis(10) {
        format!(
            " | {:.0} ms behind schedule",
            p.behind.as_secs_f64() * 1000.0
        )
    } else {
        String::new()
    };
    say!(
        "[{:>6.1}s] {phase} {} sent, {} acked, {} errors | {} records/s, {:.2} MB/s | p50 {} p99 {} max {} ms{behind}",
        p.elapsed.as_secs_f64(),
        thousands(p.sent as f64),
        thousands(p.delivered as f64),
        thousands(p.errors as f64),
        thousands(p.records_per_sec),
        p.mb_per_sec,
        ms(p.interval.p50_ms),
        ms(p.interval.p99_ms),
        ms(p.interval.max_ms),
    );
}

/// Milliseconds with 3 significant digits, at most 3 decimals.
fn ms(v: f64) -> String {
    let decimals = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else if v >= 1.0 {
        2
    } else {
        3
    };
    format!("{v:.decimals$}")
}

fn latency_row(label: &str, p: &Percentiles) -> String {
    format!(
        "  {label:<16}{:>9}{:>9}{:>9}{:>9}{:>9}",
        ms(p.p50_ms),
        ms(p.p95_ms),
        ms(p.p99_ms),
        ms(p.p999_ms),
        ms(p.max_ms)
    )
}

fn kinds(r: &PerfReport) -> String {
    r.errors_by_kind
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn print_report(r: &PerfReport, partitions: usize) {
    let pacing = match r.target_throughput {
        Some(t) => format!("target {} records/s", thousands(t)),
        None => "as fast as the cluster takes them".to_owned(),
    };
    println!("topic           {} ({partitions} partitions)", r.topic);
    println!("producers       {} ({pacing})", r.producers);
    println!(
        "records         {} measured, {} delivered (+{} warm-up, not measured)",
        thousands(r.records as f64),
        thousands(r.delivered as f64),
        thousands(r.warmup_records as f64)
    );
    println!(
        "errors          {}{}",
        thousands(r.errors as f64),
        if r.errors > 0 {
            format!(" ({})", kinds(r))
        } else {
            String::new()
        }
    );
    println!("duration        {:.3} s", r.duration_secs);
    println!(
        "throughput      {} records/s, {:.2} MB/s ({:.0} B values)",
        thousands(r.records_per_sec),
        r.mb_per_sec,
        r.avg_value_bytes
    );
    println!(
        "latency (ms)    {:>9}{:>9}{:>9}{:>9}{:>9}",
        "p50", "p95", "p99", "p99.9", "max"
    );
    let corrected = Percentiles {
        p50_ms: r.p50_ms,
        p95_ms: r.p95_ms,
        p99_ms: r.p99_ms,
        p999_ms: r.p999_ms,
        max_ms: r.max_ms,
    };
    println!("{}", latency_row("from intended", &corrected));
    println!("{}", latency_row("from hand-over", &r.uncorrected));
    if r.interrupted {
        println!("(stopped early by a signal)");
    }
}

fn consume(a: ConsumePerfArgs) -> anyhow::Result<ExitCode> {
    let loaded = a.kafka.load()?;
    print_notes(&loaded);
    let options = ConsumeOptions {
        records: a.records,
        duration: a.duration,
        from: a.from,
        idle_timeout: a.idle_timeout.into(),
        ..ConsumeOptions::new(a.topic.clone())
    };
    let rt = runtime()?;
    let stop = stop_on_signal(&rt);
    let metrics = streamlake::metrics::ConsumerMetrics::default();
    a.metrics
        .serve(&rt, |m| metrics.register(m), metrics.brokers.clone())?;
    let report = rt.block_on(streamlake::perf::consume::run_with_metrics(
        &loaded.config,
        &options,
        &metrics,
        &stop,
        print_consume_progress,
    ))?;
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_consume_report(&report);
    }
    if let Some(n) = options.records {
        if !report.complete && !report.interrupted {
            say!(
                "read {} of {} records: none came for {}",
                thousands(report.records as f64),
                thousands(n as f64),
                a.idle_timeout
            );
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_consume_progress(p: &ConsumeProgress) {
    let latency = if p.records_per_sec > 0.0 {
        format!(
            " | end-to-end p50 {} p99 {} max {} ms",
            ms(p.interval.p50_ms),
            ms(p.interval.p99_ms),
            ms(p.interval.max_ms)
        )
    } else {
        String::new()
    };
    say!(
        "[{:>6.1}s] {} read | {} records/s, {:.2} MB/s{latency}",
        p.elapsed.as_secs_f64(),
        thousands(p.records as f64),
        thousands(p.records_per_sec),
        p.mb_per_sec,
    );
}

fn print_consume_report(r: &ConsumeReport) {
    println!("topic           {} ({} partitions)", r.topic, r.partitions);
    println!(
        "records         {} read, {} errors",
        thousands(r.records as f64),
        r.errors
    );
    println!(
        "duration        {:.3} s (first record to last)",
        r.duration_secs
    );
    println!(
        "throughput      {} records/s, {:.2} MB/s",
        thousands(r.records_per_sec),
        r.mb_per_sec
    );
    println!(
        "latency (ms)    {:>9}{:>9}{:>9}{:>9}{:>9}",
        "p50", "p95", "p99", "p99.9", "max"
    );
    let p = Percentiles {
        p50_ms: r.p50_ms,
        p95_ms: r.p95_ms,
        p99_ms: r.p99_ms,
        p999_ms: r.p999_ms,
        max_ms: r.max_ms,
    };
    println!("{}", latency_row("end-to-end", &p));
    println!(
        "send time from  {} perf_sent_us headers, {} record timestamps, {} unknown",
        thousands(r.latency_from_header as f64),
        thousands(r.latency_from_timestamp as f64),
        thousands(r.latency_unknown as f64)
    );
    if r.idle_timeout {
        println!("(ended: no record came for the idle timeout)");
    }
    if r.interrupted {
        println!("(stopped early by a signal)");
    }
}
