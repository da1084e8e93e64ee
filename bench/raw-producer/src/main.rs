//! The baseline of the `producer` section of `bench/run.sh`: a minimal rust-rdkafka producer
//! loop, the ceiling of the client stack StreamLake is built on.
//!
//! It sends the same records as `streamlake perf` (a JSON order value padded to exactly
//! `--record-size` bytes, a key from `--keys` distinct keys, the five metadata headers and the
//! send-time header) with StreamLake's producer defaults (acks=all, idempotence, lz4, 5 ms
//! linger, 1 MiB batches, a 10,000-record / 32 MiB queue; `-X` overrides any of them), counts
//! outcomes in delivery callbacks and records each record's latency from its send time
//! (waiting for room in a full queue included, as `streamlake perf` counts it) in an HDR
//! histogram. A tenth of the run is sent first as a warm-up and not measured; measuring starts
//! once every warm-up record has its outcome. Prints one JSON object with the fields of
//! `streamlake perf --json` it can fill.
//!
//! Nothing else: no metrics, no statistics, no record carried back on failure, no recovery.

use anyhow::{bail, Context as _};
use clap::Parser;
use hdrhistogram::Histogram;
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer as _, ProducerContext, ThreadedProducer};
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// StreamLake's producer defaults (`crates/streamlake/src/config`), as librdkafka properties.
const SETTINGS: &[(&str, &str)] = &[
    ("acks", "all"),
    ("enable.idempotence", "true"),
    ("compression.type", "lz4"),
    ("linger.ms", "5"),
    ("batch.size", "1048576"),
    ("queue.buffering.max.messages", "10000"),
    ("queue.buffering.max.kbytes", "32768"),
    ("message.timeout.ms", "30000"),
    ("request.timeout.ms", "10000"),
    ("retry.backoff.ms", "100"),
    ("retry.backoff.max.ms", "1000"),
    ("max.in.flight.requests.per.connection", "5"),
    ("partitioner", "murmur2_random"),
];

/// How long a send waits before trying a full queue again (as StreamLake's producer does).
const QUEUE_FULL_WAIT: Duration = Duration::from_millis(1);
/// Header names, in the order `streamlake perf` sends them.
const HEADER_NAMES: [&str; 6] = [
    "ingestion_id",
    "source",
    "schema",
    "traceparent",
    "content_type",
    "perf_sent_us",
];
const SOURCE: &str = "streamlake-bench-raw";
const SCHEMA: &str = "streamlake.perf.Order";
const CONTENT_TYPE: &str = "application/json";

#[derive(Debug, Parser)]
#[command(about = "A minimal rust-rdkafka producer loop with StreamLake's producer settings")]
struct Args {
    /// Bootstrap servers
    #[arg(short, long)]
    bootstrap_servers: String,
    /// Topic to write to (must exist)
    #[arg(short, long)]
    topic: String,
    /// Measured records (the warm-up comes on top)
    #[arg(short = 'n', long, default_value_t = 200_000)]
    records: u64,
    /// Warm-up records, sent before measuring (default: a tenth of --records)
    #[arg(long)]
    warmup: Option<u64>,
    /// Value bytes of each record
    #[arg(short = 's', long, default_value_t = 120)]
    record_size: usize,
    /// Distinct keys
    #[arg(long, default_value_t = 1000)]
    keys: u64,
    /// Any librdkafka property, over the defaults above
    #[arg(short = 'X', value_name = "KEY=VALUE")]
    property: Vec<String>,
}

/// Outcomes, written by the delivery callbacks (on the producer's poll thread).
#[derive(Debug)]
struct Tally {
    latency_us: Histogram<u64>,
    delivered: u64,
    errors: u64,
    measured_delivered: u64,
    measured_errors: u64,
    last_measured: Option<Instant>,
}

#[derive(Debug)]
struct Context {
    start: Instant,
    /// Records sent at or after this many nanoseconds from `start` are measured.
    measure_from_ns: AtomicU64,
    settled: AtomicU64,
    tally: Mutex<Tally>,
}

impl Context {
    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl ClientContext for Context {}

impl ProducerContext for Context {
    /// The send time, in nanoseconds from `start`.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, sent_ns: usize) {
        let now = Instant::now();
        let sent_ns = sent_ns as u64;
        let measured = sent_ns >= self.measure_from_ns.load(Ordering::Relaxed);
        {
            let mut t = self.tally();
            match result {
                Ok(_) => {
                    t.delivered += 1;
                    if measured {
                        let now_ns = now.duration_since(self.start).as_nanos() as u64;
                        t.latency_us
                            .saturating_record((now_ns.saturating_sub(sent_ns) / 1000).max(1));
                        t.measured_delivered += 1;
                        t.last_measured = Some(now);
                    }
                }
                Err(_) => {
                    t.errors += 1;
                    if measured {
                        t.measured_errors += 1;
                        t.last_measured = Some(now);
                    }
                }
            }
        }
        self.settled.fetch_add(1, Ordering::Release);
    }
}

/// Builds the records: the same shapes as `streamlake perf`'s synthetic records.
#[derive(Debug)]
struct Records {
    size: usize,
    keys: u64,
    pad: Vec<u8>,
    salt: u64,
    epoch_us: u64,
    start: Instant,
    value: Vec<u8>,
    key: String,
    trace: String,
    sent_us: String,
}

impl Records {
    fn new(size: usize, keys: u64, start: Instant) -> Self {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let pad = (0..(64 * 1024).max(size * 2) as u64)
            .map(|i| ALPHABET[(mix(i) % ALPHABET.len() as u64) as usize])
            .collect();
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            size,
            keys,
            pad,
            salt: mix(epoch.as_nanos() as u64),
            epoch_us: epoch.as_micros() as u64,
            start,
            value: Vec::with_capacity(size),
            key: String::new(),
            trace: String::new(),
            sent_us: String::new(),
        }
    }

    /// Fills key, value, traceparent and send time of record `seq`, sent `sent_ns` after the
    /// start. Fails when the order does not fit in the record size.
    fn fill(&mut self, seq: u64, sent_ns: u64) -> anyhow::Result<()> {
        let h = mix(seq);
        self.key.clear();
        write!(self.key, "cust-{:06}", h % self.keys)?;
        let cents = 10_000 + (h >> 8) % 90_000;
        self.value.clear();
        write!(
            self.value,
            r#"{{"order_id":"ord-{seq:08}","customer":"{}","sku":"SKU-{:04}","qty":{},"price":{}.{:02},"currency":"{}""#,
            self.key,
            (h >> 20) % 10_000,
            (h >> 40) % 9 + 1,
            cents / 100,
            cents % 100,
            ["EUR", "USD", "GBP"][(h % 3) as usize]
        )?;
        let Some(left) = self.size.checked_sub(self.value.len() + 1) else {
            bail!("--record-size {} is too small for an order", self.size);
        };
        // `,"pad":"` and the closing quote cost 9 bytes.
        if left >= 9 {
            let letters = left - 9;
            let from = (h as usize) % (self.pad.len() - letters + 1);
            self.value.extend_from_slice(b",\"pad\":\"");
            self.value
                .extend_from_slice(&self.pad[from..from + letters]);
            self.value.push(b'"');
        } else {
            self.value.resize(self.value.len() + left, b' ');
        }
        self.value.push(b'}');
        self.trace.clear();
        write!(
            self.trace,
            "00-{:016x}{:016x}-{:016x}-01",
            mix(self.salt ^ seq),
            mix(self.salt.rotate_left(17) ^ seq) | 1,
            mix(self.salt.rotate_left(31) ^ seq) | 1
        )?;
        self.sent_us.clear();
        write!(self.sent_us, "{}", self.epoch_us + sent_ns / 1000)?;
        Ok(())
    }

    /// Key, value and header bytes of the record last filled (with a 36-byte ingestion id).
    fn bytes(&self) -> u64 {
        let headers: usize = HEADER_NAMES.iter().map(|n| n.len()).sum::<usize>()
            + 36
            + SOURCE.len()
            + SCHEMA.len()
            + self.trace.len()
            + CONTENT_TYPE.len()
            + self.sent_us.len();
        (self.key.len() + self.value.len() + headers) as u64
    }

    fn nanos(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }
}

/// SplitMix64, as `streamlake perf` spreads its keys.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.records == 0 || args.keys == 0 {
        bail!("--records and --keys must be at least 1");
    }
    let warmup = args.warmup.unwrap_or(args.records / 10);
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", &args.bootstrap_servers);
    for (k, v) in SETTINGS {
        cc.set(*k, *v);
    }
    for p in &args.property {
        let (k, v) = p
            .split_once('=')
            .with_context(|| format!("-X {p}: expected KEY=VALUE"))?;
        cc.set(k, v);
    }
    let start = Instant::now();
    let producer: ThreadedProducer<Context> = cc
        .create_with_context(Context {
            start,
            measure_from_ns: AtomicU64::new(if warmup == 0 { 0 } else { u64::MAX }),
            settled: AtomicU64::new(0),
            tally: Mutex::new(Tally {
                latency_us: Histogram::new_with_bounds(1, 600_000_000, 3)?,
                delivered: 0,
                errors: 0,
                measured_delivered: 0,
                measured_errors: 0,
                last_measured: None,
            }),
        })
        .context("cannot create the producer")?;
    let ctx = producer.context();
    let mut records = Records::new(args.record_size, args.keys, start);
    let mut id = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let (mut refused, mut measured_refused, mut measured_bytes) = (0u64, 0u64, 0u64);
    let mut measure_start = start;
    let total = warmup + args.records;
    for seq in 0..total {
        if seq == warmup && warmup > 0 {
            // Measure from the moment every warm-up record has its outcome.
            while ctx.settled.load(Ordering::Acquire) + refused < warmup {
                std::thread::sleep(Duration::from_millis(1));
            }
            measure_start = Instant::now();
            ctx.measure_from_ns.store(
                measure_start.duration_since(start).as_nanos() as u64,
                Ordering::Relaxed,
            );
        }
        let measured = seq >= warmup;
        let sent_ns = records.nanos();
        records.fill(seq, sent_ns)?;
        let ingestion_id = uuid::Uuid::now_v7().hyphenated().encode_lower(&mut id);
        let headers = OwnedHeaders::new_with_capacity(HEADER_NAMES.len())
            .insert(Header {
                key: HEADER_NAMES[0],
                value: Some(&*ingestion_id),
            })
            .insert(Header {
                key: HEADER_NAMES[1],
                value: Some(SOURCE),
            })
            .insert(Header {
                key: HEADER_NAMES[2],
                value: Some(SCHEMA),
            })
            .insert(Header {
                key: HEADER_NAMES[3],
                value: Some(records.trace.as_str()),
            })
            .insert(Header {
                key: HEADER_NAMES[4],
                value: Some(CONTENT_TYPE),
            })
            .insert(Header {
                key: HEADER_NAMES[5],
                value: Some(records.sent_us.as_str()),
            });
        let mut record =
            BaseRecord::<[u8], [u8], usize>::with_opaque_to(&args.topic, sent_ns as usize)
                .key(records.key.as_bytes())
                .payload(&records.value[..])
                .headers(headers);
        loop {
            match producer.send(record) {
                Ok(()) => {
                    if measured {
                        measured_bytes += records.bytes();
                    }
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(QUEUE_FULL_WAIT);
                }
                Err((e, _)) => {
                    if refused == 0 {
                        eprintln!("a record was refused: {e}");
                    }
                    refused += 1;
                    measured_refused += u64::from(measured);
                    break;
                }
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while ctx.settled.load(Ordering::Acquire) + refused < total && Instant::now() < deadline {
        let _ = producer.flush(Duration::from_millis(100));
    }
    let t = ctx.tally();
    let secs = t
        .last_measured
        .map_or(0.0, |l| l.duration_since(measure_start).as_secs_f64());
    let missing = total.saturating_sub(t.delivered + t.errors + refused);
    let errors = t.errors + refused + missing;
    let per_sec = |n: f64| if secs > 0.0 { n / secs } else { 0.0 };
    // Records are all about the same size: the delivered share of the bytes sent.
    let delivered_bytes = (measured_bytes * t.measured_delivered)
        .checked_div(args.records)
        .unwrap_or(0);
    let ms = |q: f64| t.latency_us.value_at_quantile(q) as f64 / 1000.0;
    let report = serde_json::json!({
        "topic": args.topic,
        "records": t.measured_delivered + t.measured_errors + measured_refused,
        "delivered": t.measured_delivered,
        "errors": errors,
        "bytes": delivered_bytes,
        "duration_secs": secs,
        "records_per_sec": per_sec(t.measured_delivered as f64),
        "mb_per_sec": per_sec(delivered_bytes as f64 / (1024.0 * 1024.0)),
        "p50_ms": ms(0.50),
        "p95_ms": ms(0.95),
        "p99_ms": ms(0.99),
        "p999_ms": ms(0.999),
        "max_ms": t.latency_us.max() as f64 / 1000.0,
        "warmup_records": warmup,
        "avg_value_bytes": args.record_size,
    });
    drop(t);
    writeln!(std::io::stdout().lock(), "{report}")?;
    if errors > 0 {
        std::process::exit(1);
    }
    Ok(())
}
