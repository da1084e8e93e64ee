//! `streamlake produce`: lines in, records out, a truthful summary at the end.

use crate::args::{print_notes, runtime, stop_on_signal, KafkaArgs};
use crate::out::say;
use clap::{Args, ValueEnum};
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use streamlake::config::ClientKind;
use streamlake::io::{
    parse_header, InputError, InputFormat, KeySource, Line, LineParser, LineReader,
};
use streamlake::producer::{
    Accepted, ProduceError, SendError, SpoolingProducer, TransactionalProducer,
};
use streamlake::registry::Role;
use streamlake::serdes::{Format, LocalSchema, Serializer};
use streamlake::stats::thousands;
use streamlake::Producer;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LineFormat {
    /// Each line is a value, as is.
    Lines,
    /// Each line must be a JSON document.
    Jsonl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnError {
    /// Report the bad line and go on with the rest.
    Skip,
    /// Stop at the first bad line (what was read before it is still delivered).
    Fail,
}

#[derive(Debug, Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    kafka: KafkaArgs,
    #[command(flatten)]
    metrics: crate::args::MetricsArgs,
    /// Destination topic
    #[arg(short, long)]
    topic: String,
    /// Read from this file instead of stdin
    #[arg(short, long, value_name = "FILE")]
    file: Option<PathBuf>,
    /// Input format
    #[arg(long, value_enum, default_value_t = LineFormat::Lines)]
    format: LineFormat,
    /// Key from a JSON pointer into each line, e.g. /order_id
    #[arg(long, value_name = "POINTER", conflicts_with_all = ["key", "key_separator"])]
    key_field: Option<String>,
    /// The same key for every record
    #[arg(long, conflicts_with = "key_separator")]
    key: Option<String>,
    /// Lines are key<SEP>value; `\t` means a tab
    #[arg(long, value_name = "SEP")]
    key_separator: Option<String>,
    /// Header added to every record (repeatable)
    #[arg(short = 'H', long = "header", value_name = "NAME=VALUE")]
    headers: Vec<String>,
    /// Write every record to this partition
    #[arg(short, long)]
    partition: Option<i32>,
    /// Stamp every record with an `ingestion_id` header (a UUIDv7): its correlation id, named
    /// in every log event about the record
    #[arg(long)]
    ingestion_ids: bool,
    /// What to do with a line that cannot become a record
    #[arg(long, value_enum, default_value_t = OnError::Fail)]
    on_error: OnError,
    /// Compression codec (overrides producer.compression)
    #[arg(long, value_parser = ["none", "gzip", "snappy", "lz4", "zstd"])]
    compression: Option<String>,
    /// Acknowledgement level (overrides producer.acks)
    #[arg(long, value_parser = ["all", "leader", "none"])]
    acks: Option<String>,
    /// Value format: bytes (each line as is), string, json, or through the schema registry
    /// avro, protobuf or json-schema (each line a JSON document converted to the
    /// schema)
    #[arg(long, default_value = "bytes", value_name = "FORMAT")]
    value_format: Format,
    /// Schema file for the value (.avsc Avro, .json JSON Schema)
    #[arg(long, value_name = "FILE")]
    value_schema: Option<PathBuf>,
    /// Protobuf message to write, e.g. shop.Order (default: the first in the .proto file)
    #[arg(long, value_name = "NAME", requires = "value_schema")]
    value_message: Option<String>,
    /// Key format: bytes (as given), string, json, or through the schema registry avro,
    /// protobuf or json-schema (with --key-field the key keeps its JSON type)
    #[arg(long, default_value = "bytes", value_name = "FORMAT")]
    key_format: Format,
    /// Schema file for the key
    #[arg(long, value_name = "FILE")]
    key_schema: Option<PathBuf>,
    /// Keep records Kafka cannot take in a disk spool in this folder (replayed in order when
    /// the cluster is back, by this run or a later one, or `streamlake spool replay`)
    /// [config: spool.dir]
    #[arg(long, value_name = "DIR")]
    spool_dir: Option<PathBuf>,
    /// Write in transactions under this id (exactly once for read_committed readers): every
    /// --transaction-records records are committed together; a transaction that cannot commit
    /// is aborted and sent again, up to 3 times [config: producer.transactional_id]
    #[arg(long, value_name = "ID", conflicts_with = "spool_dir")]
    transactional_id: Option<String>,
    /// Records per transaction (with --transactional-id)
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1000,
        requires = "transactional_id"
    )]
    transaction_records: usize,
}

/// librdkafka's default `message.max.bytes`.
const LIBRDKAFKA_MESSAGE_MAX_BYTES: usize = 1_000_000;

/// The producer of one run: plain, or spooling when `--spool-dir` is given.
enum Sink {
    Plain(Producer),
    Spooling(SpoolingProducer),
    Transactional(TxnSink),
}

/// Called once with a record's outcome: `Ok(spooled)` or the error.
type OnDone = Box<dyn FnOnce(Result<bool, SendError>) + Send + Sync>;

impl Sink {
    /// Sends one record; `on_done(Ok(spooled))` or `on_done(Err(error))` once.
    fn send<F>(&mut self, record: streamlake::Record, on_done: F) -> Result<(), SendError>
    where
        F: FnOnce(Result<bool, SendError>) + Send + Sync + 'static,
    {
        match self {
            Self::Plain(p) => p.send_with_callback(record, move |o| on_done(o.map(|_| false))),
            Self::Spooling(p) => {
                p.send_with_callback(record, move |o| on_done(o.map(|a| a == Accepted::Spooled)))
            }
            Self::Transactional(t) => t.push(record, Box::new(on_done)),
        }
    }
}

/// Transactions of `per_txn` records. A record's outcome is known at its transaction's
/// commit: delivered when it commits, failed when it could not be committed after
/// [`TXN_ATTEMPTS`] tries.
struct TxnSink {
    producer: TransactionalProducer,
    per_txn: usize,
    batch: Vec<(streamlake::Record, OnDone)>,
    transactions: u64,
}

/// Tries per transaction (the first and two after an abort).
const TXN_ATTEMPTS: u32 = 3;

impl TxnSink {
    fn push(&mut self, record: streamlake::Record, on_done: OnDone) -> Result<(), SendError> {
        if self.batch.is_empty() {
            if let Err(e) = self.producer.begin() {
                return Err(SendError {
                    error: ProduceError::Transaction(e.to_string()),
                    record,
                });
            }
        }
        self.producer.send_with_callback(record.clone(), |_| {})?;
        self.batch.push((record, on_done));
        if self.batch.len() >= self.per_txn {
            self.commit();
        }
        Ok(())
    }

    /// Commits the open transaction, aborting and sending it again when it cannot commit.
    fn commit(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let mut attempt = 1;
        let outcome = loop {
            match self.producer.commit() {
                Ok(()) => break Ok(()),
                Err(e) if e.is_retriable() && attempt < TXN_ATTEMPTS => {}
                Err(e) if e.is_abortable() && attempt < TXN_ATTEMPTS => {
                    say!(
                        "transaction aborted ({e}); sending its {} record(s) again",
                        self.batch.len()
                    );
                    let again = self.producer.abort().and_then(|()| self.producer.begin());
                    if let Err(e) = again {
                        break Err(e.to_string());
                    }
                    for (r, _) in &self.batch {
                        if let Err(e) = self.producer.send_with_callback(r.clone(), |_| {}) {
                            say!("cannot send again: {}", e.error);
                        }
                    }
                }
                Err(e) => {
                    let _ = self.producer.abort();
                    break Err(e.to_string());
                }
            }
            attempt += 1;
        };
        self.transactions += 1;
        for (record, done) in self.batch.drain(..) {
            done(match &outcome {
                Ok(()) => Ok(false),
                Err(e) => Err(SendError {
                    error: ProduceError::Transaction(e.clone()),
                    record,
                }),
            });
        }
    }
}

/// The name of a format as the flags spell it.
fn format_name(format: Format) -> &'static str {
    match format {
        Format::Bytes => "bytes",
        Format::String => "string",
        Format::Json => "json",
        Format::Avro => "avro",
        Format::Protobuf => "protobuf",
        Format::JsonSchema => "json-schema",
    }
}

/// Refuses flags that would be ignored or could never work, before anything is read or sent.
fn check_flags(a: &ProduceArgs, key: &KeySource) -> anyhow::Result<()> {
    for (what, format, schema) in [
        ("value", a.value_format, &a.value_schema),
        ("key", a.key_format, &a.key_schema),
    ] {
        if schema.is_some() && !format.uses_registry() {
            anyhow::bail!(
                "--{what}-schema is given but --{what}-format {} takes no schema; use avro, protobuf or json-schema, or drop --{what}-schema",
                format_name(format)
            );
        }
    }
    if a.value_message.is_some() && a.value_format != Format::Protobuf {
        anyhow::bail!(
            "--value-message names a Protobuf message but --value-format is {}",
            format_name(a.value_format)
        );
    }
    let flag = match key {
        KeySource::Separator(_) => "--key-separator",
        _ => "--key-field",
    };
    key.check().map_err(|e| anyhow::anyhow!("{flag}: {e}"))?;
    Ok(())
}

pub fn run(a: ProduceArgs) -> anyhow::Result<ExitCode> {
    let key = match (&a.key_field, &a.key, &a.key_separator) {
        (Some(p), _, _) => KeySource::Field(p.clone()),
        (_, Some(k), _) => KeySource::Fixed(k.clone().into()),
        (_, _, Some(sep)) => KeySource::Separator(sep.replace("\\t", "\t")),
        _ => KeySource::None,
    };
    check_flags(&a, &key)?;
    let mut loader = a.kafka.loader()?;
    if let Some(c) = &a.compression {
        loader = loader.flag("producer.compression", c.as_str(), "--compression");
    }
    if let Some(acks) = &a.acks {
        loader = loader.flag("producer.acks", acks.as_str(), "--acks");
    }
    if let Some(dir) = &a.spool_dir {
        loader = loader.flag("spool.dir", dir.display().to_string(), "--spool-dir");
    }
    if let Some(id) = &a.transactional_id {
        loader = loader.flag(
            "producer.transactional_id",
            id.as_str(),
            "--transactional-id",
        );
    }
    let loaded = loader.load()?;
    print_notes(&loaded);
    // No line longer than the largest message the producer may send is held in memory.
    let max_line = loaded
        .config
        .client_config(ClientKind::Producer)?
        .get("message.max.bytes")
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(LIBRDKAFKA_MESSAGE_MAX_BYTES);
    let headers = a
        .headers
        .iter()
        .map(|h| parse_header(h).map_err(|e| anyhow::anyhow!("--header {e}")))
        .collect::<Result<_, _>>()?;
    let format = match a.format {
        LineFormat::Lines => InputFormat::Lines,
        LineFormat::Jsonl => InputFormat::Jsonl,
    };
    let parser = LineParser {
        topic: a.topic.clone(),
        format,
        key,
        headers,
        partition: a.partition,
        structured_keys: a.key_format.uses_registry(),
    };
    let reader: Box<dyn BufRead + Send> = match &a.file {
        Some(path) => Box::new(std::io::BufReader::new(
            std::fs::File::open(path)
                .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?,
        )),
        None => Box::new(std::io::BufReader::new(std::io::stdin())),
    };

    let rt = runtime()?;
    let stop = stop_on_signal(&rt);
    let local = match (a.value_schema.as_deref(), &a.value_message) {
        (Some(path), Some(message)) => {
            Some(LocalSchema::from_file(path, None)?.with_message(message)?)
        }
        (Some(path), None) => Some(LocalSchema::from_file(path, None)?),
        (None, _) => None,
    };
    let registry = crate::args::registry(&loaded.config)?;
    let settings = &loaded.config.schema_registry;
    let serializer = Serializer::new(
        a.value_format,
        Role::Value,
        local,
        registry.clone(),
        settings,
    )?;
    let key_local = a
        .key_schema
        .as_deref()
        .map(|p| LocalSchema::from_file(p, None))
        .transpose()?;
    let key_serializer = Serializer::new(a.key_format, Role::Key, key_local, registry, settings)?;
    for (what, ser) in [("value", &serializer), ("key", &key_serializer)] {
        if ser.format().uses_registry() {
            let id = rt.block_on(ser.prepare(&a.topic))?;
            say!("{what} schema id {id}");
        }
    }
    let spooling = loaded.config.spool.enabled();
    let mut producer = if loaded.config.producer.transactional_id.is_some() {
        Sink::Transactional(TxnSink {
            producer: TransactionalProducer::new(&loaded.config)?,
            per_txn: a.transaction_records.max(1),
            batch: Vec::new(),
            transactions: 0,
        })
    } else if spooling {
        let _in_runtime = rt.enter();
        let (p, report) = SpoolingProducer::from_config(&loaded.config)?;
        for d in report.iter().flat_map(|r| r.damage.iter()) {
            say!("spool damage: {d}");
        }
        let emergency = p.emergency();
        crate::args::on_second_signal(move || {
            let r = emergency.spool_in_flight(Duration::from_secs(2));
            say!(
                "second signal: {} record(s) in the spool over this run, {} without an outcome",
                r.spooled,
                r.unsettled
            );
        });
        Sink::Spooling(p)
    } else {
        let p = Producer::new(&loaded.config)?;
        let counters = p.counters_handle();
        crate::args::on_second_signal(move || {
            let n = counters.in_flight();
            if n > 0 {
                say!(
                    "second signal: {n} record(s) still in flight are not confirmed and may not \
                     have been delivered (use --spool-dir to keep them on disk)"
                );
            }
        });
        Sink::Plain(p)
    };
    let delivery_timeout = Duration::from_millis(loaded.config.producer.delivery_timeout_ms);
    let producer_metrics = match &producer {
        Sink::Plain(p) => p.metrics().clone(),
        Sink::Spooling(p) => p.producer().metrics().clone(),
        Sink::Transactional(t) => t.producer.producer().metrics().clone(),
    };
    a.metrics.serve(
        &rt,
        |m| producer_metrics.register(m),
        producer_metrics.brokers.clone(),
    )?;

    // Reading happens on its own thread so a signal is noticed even while stdin is idle. The
    // lines read ahead hold at most about 64 MiB, however long each may be.
    let read_ahead = ((64usize << 20) / max_line.max(1)).clamp(8, 1024);
    let (tx, rx) = sync_channel::<std::io::Result<Line>>(read_ahead);
    std::thread::spawn(move || {
        for line in LineReader::new(reader, max_line) {
            let failed = line.is_err();
            if tx.send(line).is_err() || failed {
                break;
            }
        }
    });

    let failed = Arc::new(AtomicU64::new(0));
    // Failed records are reported from this thread, in the order their outcomes arrive: the
    // delivery callbacks (on librdkafka's threads, and on this one while it flushes) only pass
    // them on, so every report is written, and written before the summary.
    let (failures_tx, failures) = std::sync::mpsc::channel::<(usize, Option<String>, String)>();
    let report_failures =
        |failures: &std::sync::mpsc::Receiver<(usize, Option<String>, String)>| {
            for (line, id, reason) in failures.try_iter() {
                crate::out::record("failed", line, id.as_deref(), &reason);
            }
        };
    let bytes = Arc::new(AtomicU64::new(0));
    let spooled = Arc::new(AtomicU64::new(0));
    let direct = Arc::new(AtomicU64::new(0));
    let mut sent = 0u64;
    let (mut line_no, mut skipped, mut input_failed) = (0usize, 0u64, false);
    let started = Instant::now();
    loop {
        if stop.load(Ordering::SeqCst) {
            say!("interrupted after line {line_no}: no more lines are read");
            break;
        }
        report_failures(&failures);
        let line = match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(Ok(line)) => line,
            Ok(Err(e)) => {
                crate::out::error(format_args!("line {}: cannot read input: {e}", line_no + 1));
                input_failed = true;
                break;
            }
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        line_no += 1;
        let line = match line {
            Line::Bytes(bytes) => Ok(bytes),
            Line::TooLong { len } => Err(InputError::TooLong {
                line: line_no,
                len,
                max: max_line,
            }),
        };
        let parsed = line
            .and_then(|line| Ok((parser.parse_bytes(line_no, &line)?, line)))
            .map_err(|e| e.to_string())
            .and_then(|(r, line)| match r {
                Some(mut r) => {
                    if a.value_format != Format::Bytes {
                        let value = r.value.take().unwrap_or_default();
                        let bytes = serializer
                            .serialize(&a.topic, &value)
                            .map_err(|e| format!("line {line_no}: {e}"))?;
                        r.value = Some(bytes.into());
                    }
                    if a.key_format != Format::Bytes {
                        if let Some(key) = r.key.take() {
                            let text = String::from_utf8_lossy(&line);
                            let bytes =
                                serialize_key(&key_serializer, &a.topic, &parser.key, &text, &key)
                                    .map_err(|e| format!("line {line_no}: key: {e}"))?;
                            r.key = Some(bytes.into());
                        }
                    }
                    Ok(Some(r))
                }
                None => Ok(None),
            });
        let record = match parsed {
            Ok(Some(r)) if a.ingestion_ids => r.header(
                streamlake::record::INGESTION_ID,
                streamlake::record::new_ingestion_id(),
            ),
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(e) if a.on_error == OnError::Skip => {
                let prefix = format!("line {line_no}: ");
                let reason = e.strip_prefix(&prefix).unwrap_or(&e);
                crate::out::record("skipped", line_no, None, &reason);
                skipped += 1;
                continue;
            }
            Err(e) => {
                let e = streamlake::logging::escape_control(&e);
                crate::out::error(format_args!(
                    "{e} (use --on-error skip to go on past bad lines)"
                ));
                input_failed = true;
                break;
            }
        };
        let size = record.size() as u64;
        let (cb_failed, cb_bytes, cb_spooled, cb_direct) = (
            Arc::clone(&failed),
            Arc::clone(&bytes),
            Arc::clone(&spooled),
            Arc::clone(&direct),
        );
        sent += 1;
        let n = line_no;
        let failures_tx = failures_tx.clone();
        let sent = producer.send(record, move |outcome| match outcome {
            Ok(false) => {
                cb_bytes.fetch_add(size, Ordering::Relaxed);
                cb_direct.fetch_add(1, Ordering::Relaxed);
            }
            Ok(true) => {
                cb_spooled.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                cb_failed.fetch_add(1, Ordering::Relaxed);
                let id = e.record.ingestion_id().map(str::to_owned);
                let _ = failures_tx.send((n, id, e.error.to_string()));
            }
        });
        if let Err(e) = sent {
            failed.fetch_add(1, Ordering::Relaxed);
            crate::out::record("failed", n, e.record.ingestion_id(), &e.error);
        }
    }
    let close_timeout = delivery_timeout + Duration::from_secs(5);
    let transactional = matches!(producer, Sink::Transactional(_));
    let (report, spool_report) = match producer {
        Sink::Plain(p) => (p.close(close_timeout), None),
        Sink::Transactional(mut t) => {
            t.commit();
            say!("{} transaction(s)", t.transactions);
            let producer = t.producer.producer();
            let c = producer.counters();
            (
                streamlake::producer::CloseReport {
                    accepted: c.accepted(),
                    delivered: c.delivered(),
                    failed: c.failed(),
                    purged: 0,
                },
                None,
            )
        }
        Sink::Spooling(p) => {
            let r = rt.block_on(p.close(close_timeout));
            (r.producer, Some(r))
        }
    };
    drop(failures_tx);
    report_failures(&failures);
    let elapsed = started.elapsed().as_secs_f64();
    let failed = failed.load(Ordering::Relaxed);
    let spooled = spooled.load(Ordering::Relaxed);
    let delivered = direct.load(Ordering::Relaxed);
    say!(
        "produced to {}: {} delivered, {} failed, {} skipped, {} bytes in {:.2}s ({} records/s)",
        a.topic,
        delivered,
        failed,
        skipped,
        bytes.load(Ordering::Relaxed),
        elapsed,
        thousands(delivered as f64 / elapsed.max(1e-9)),
    );
    let undelivered = match &spool_report {
        // Spooled records are safe on disk: replayed later by this folder's next producer or
        // `streamlake spool replay`.
        Some(r) => {
            say!(
                "spooled {spooled} record(s): {} replayed to Kafka so far, {} wait in the spool",
                r.replayed,
                r.left_in_spool
            );
            delivered + spooled + failed < sent
        }
        None if transactional => delivered + failed < sent,
        None => !report.all_delivered(),
    };
    Ok(if failed > 0 || input_failed || undelivered {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// A key in its format. For registry formats the key is JSON: with `--key-field` the field's own
/// JSON value, otherwise the key text as a JSON string.
fn serialize_key(
    ser: &Serializer,
    topic: &str,
    source: &KeySource,
    line: &str,
    key: &[u8],
) -> Result<Vec<u8>, String> {
    if !ser.format().uses_registry() {
        return ser.serialize(topic, key).map_err(|e| e.to_string());
    }
    let doc = match source {
        KeySource::Field(pointer) => serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v.pointer(pointer).cloned()),
        _ => None,
    }
    .unwrap_or_else(|| serde_json::Value::String(String::from_utf8_lossy(key).into_owned()));
    ser.serialize_value(topic, &doc).map_err(|e| e.to_string())
}
