//! Schema-true random data for load tests and for seeding development topics.
//!
//! # Guarantees
//! - Every record fits its schema (Avro, Protobuf or JSON Schema): it is built from the schema's
//!   own structure and then serialized with the same codecs `produce` uses. A record that would
//!   not fit (a JSON Schema `pattern` the generator cannot know) stops the run with the field
//!   named, instead of sending something else.
//! - Values look real: generators are chosen by field name and type (ids count up, prices have
//!   two decimals, ratings run 1.0 to 5.0, brands, product names, e-mails, timestamps near now,
//!   enums, nested records, lists, optional nulls), and a [`Spec`] file overrides any field.
//! - The same seed gives the same records. With a seed, timestamps are relative to a fixed base
//!   time (2026-01-01T00:00:00Z) so runs compare byte for byte; without one, to now.
//! - [`run`] paces sends to the asked rate (with optional bursts) from the intended send
//!   times, so it does not drift; every record ends delivered or counted as failed.

mod shape;
mod spec;
mod values;

pub use spec::{FieldSpec, Spec};
pub use values::BRANDS;

use crate::producer::{ProduceError, Producer};
use crate::record::Record;
use crate::registry::SchemaType;
use crate::serdes::avro::AvroCodec;
use crate::serdes::json_schema::JsonSchemaCodec;
use crate::serdes::protobuf::ProtobufCodec;
use crate::serdes::{LocalSchema, SerdeError, Serializer};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use shape::Shape;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Base time of seeded runs: 2026-01-01T00:00:00Z.
pub const SEEDED_BASE_MS: i64 = 1_767_225_600_000;

/// Why data could not be generated or sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatagenError {
    /// The spec file is invalid.
    #[error("spec: {0}")]
    Spec(String),
    /// The schema is unusable, or a generated record did not fit it.
    #[error(transparent)]
    Serde(#[from] SerdeError),
    /// The producer failed.
    #[error(transparent)]
    Produce(#[from] ProduceError),
    /// A key field is missing from the generated records.
    #[error("key field {0} is not in the generated records")]
    KeyField(String),
}

impl DatagenError {
    /// Whether trying again may help.
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Serde(e) => e.is_retriable(),
            Self::Produce(e) => e.is_retriable(),
            _ => false,
        }
    }
}

/// Generates records for one schema.
pub struct Generator {
    shape: Shape,
    spec: Spec,
    rng: ChaCha8Rng,
    seq: u64,
    base_ms: Option<i64>,
}

impl std::fmt::Debug for Generator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generator")
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Generator {
    /// A generator for `schema` (for Protobuf, its chosen message), with overrides and an
    /// optional seed.
    pub fn new(schema: &LocalSchema, spec: Spec, seed: Option<u64>) -> Result<Self, DatagenError> {
        let shape = match schema.schema_type {
            SchemaType::Avro => shape::from_avro(&AvroCodec::new(&schema.text)?),
            SchemaType::Protobuf => shape::from_protobuf(&ProtobufCodec::new(
                &schema.text,
                schema.record_name.as_deref(),
            )?),
            SchemaType::Json => shape::from_json_schema(&JsonSchemaCodec::new(&schema.text)?),
        };
        let seed_value = seed.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        });
        Ok(Self {
            shape,
            spec,
            rng: ChaCha8Rng::seed_from_u64(seed_value),
            seq: 0,
            base_ms: seed.map(|_| SEEDED_BASE_MS),
        })
    }

    /// The next record, as JSON.
    pub fn next_record(&mut self) -> Value {
        let now = self.base_ms.map_or_else(now_ms, |b| b + self.seq as i64);
        let mut filler = values::Filler {
            rng: &mut self.rng,
            spec: &self.spec,
            seq: self.seq,
            now_ms: now,
        };
        let v = filler.value(&self.shape, "", "", "");
        self.seq += 1;
        v
    }
}

/// A burst pattern: `rate` records/s for `length` at the start of every `every`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Burst {
    /// Records per second during a burst.
    pub rate: f64,
    /// Time from one burst's start to the next.
    pub every: Duration,
    /// How long each burst lasts.
    pub length: Duration,
}

/// What to send.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Topic.
    pub topic: String,
    /// Stop after this many records.
    pub count: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Records per second (steady); `None` is as fast as the cluster takes them.
    pub rate: Option<f64>,
    /// Optional bursts on top of the steady rate.
    pub burst: Option<Burst>,
    /// JSON pointer of the record key.
    pub key_field: Option<String>,
}

/// Progress, about once a second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Since the start.
    pub elapsed: Duration,
    /// Records handed to the producer.
    pub sent: u64,
    /// Records acknowledged.
    pub delivered: u64,
    /// Records that failed.
    pub failed: u64,
}

fn rate_at(options: &RunOptions, t: Duration) -> Option<f64> {
    match options.burst {
        Some(b)
            if b.every > Duration::ZERO
                && Duration::from_nanos((t.as_nanos() % b.every.as_nanos()) as u64) < b.length =>
        {
            Some(b.rate)
        }
        _ => options.rate,
    }
}

/// Generates, serializes and sends records until a limit is reached or `stop` is set. The
/// serializer must be prepared for the topic. Blocks the calling thread; the producer's queue
/// applies back-pressure. Call `Producer::close` afterwards to wait for every outcome.
pub fn run(
    producer: &Producer,
    serializer: &Serializer,
    generator: &mut Generator,
    options: &RunOptions,
    stop: &AtomicBool,
    mut on_progress: impl FnMut(&Progress),
) -> Result<Progress, DatagenError> {
    let start = Instant::now();
    let failed = Arc::new(AtomicU64::new(0));
    let mut sent = 0u64;
    let mut due = Duration::ZERO;
    let mut last_report = Instant::now();
    let progress = |sent| Progress {
        elapsed: start.elapsed(),
        sent,
        delivered: producer.counters().delivered(),
        failed: failed.load(Ordering::Relaxed),
    };
    loop {
        if stop.load(Ordering::Relaxed)
            || options.count.is_some_and(|n| sent >= n)
            || options.duration.is_some_and(|d| start.elapsed() >= d)
        {
            break;
        }
        if let Some(r) = rate_at(options, due).filter(|r| *r > 0.0) {
            due += Duration::from_secs_f64(1.0 / r);
            if options.duration.is_some_and(|d| due > d) {
                break;
            }
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        let doc = generator.next_record();
        let value = serializer.serialize_value(&options.topic, &doc)?;
        let mut record = Record::new(&options.topic, value);
        if let Some(pointer) = &options.key_field {
            let key = match doc.pointer(pointer) {
                Some(Value::String(s)) => s.clone(),
                Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
                _ => return Err(DatagenError::KeyField(pointer.clone())),
            };
            record = record.key(key);
        }
        let f = Arc::clone(&failed);
        let outcome = producer.send_with_callback(record, move |o| {
            if let Err(e) = o {
                f.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(topic = %e.record.topic, ingestion_id = e.record.ingestion_id(), error = %e.error, "generated record not delivered");
            }
        });
        if let Err(e) = outcome {
            failed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(topic = %e.record.topic, ingestion_id = e.record.ingestion_id(), error = %e.error, "generated record refused");
        }
        sent += 1;
        if last_report.elapsed() >= Duration::from_secs(1) {
            on_progress(&progress(sent));
            last_report = Instant::now();
        }
    }
    Ok(progress(sent))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serdes::Format;

    const SHOE: &str = "syntax = \"proto3\";\npackage ex;\nmessage Shoe { int64 id = 1; string brand = 2; string name = 3; double sale_price = 4; double rating = 5; }\n";

    fn generate(schema: &LocalSchema, seed: u64, n: usize) -> Vec<Value> {
        let mut g = Generator::new(schema, Spec::default(), Some(seed)).unwrap();
        (0..n).map(|_| g.next_record()).collect()
    }

    #[test]
    fn same_seed_same_records_other_seed_others() {
        let schema = LocalSchema::parse(SchemaType::Protobuf, SHOE.into()).unwrap();
        assert_eq!(generate(&schema, 7, 50), generate(&schema, 7, 50));
        assert_ne!(generate(&schema, 7, 50), generate(&schema, 8, 50));
    }

    #[test]
    fn shoes_look_real() {
        let schema = LocalSchema::parse(SchemaType::Protobuf, SHOE.into()).unwrap();
        for (i, s) in generate(&schema, 1, 200).iter().enumerate() {
            assert_eq!(s["id"], i as i64 + 1, "ids count up");
            assert!(values_brand(s["brand"].as_str().unwrap()), "{s}");
            assert_eq!(s["name"].as_str().unwrap().split(' ').count(), 2, "{s}");
            let price = s["sale_price"].as_f64().unwrap();
            assert!(
                (5.0..=500.0).contains(&price)
                    && (price * 100.0 - (price * 100.0).round()).abs() < 1e-6,
                "{s}"
            );
            let rating = s["rating"].as_f64().unwrap();
            assert!(
                (1.0..=5.0).contains(&rating)
                    && (rating * 10.0 - (rating * 10.0).round()).abs() < 1e-6,
                "{s}"
            );
        }
    }

    fn values_brand(b: &str) -> bool {
        BRANDS.contains(&b)
    }

    #[test]
    fn spec_overrides_apply() {
        let schema = LocalSchema::parse(SchemaType::Protobuf, SHOE.into()).unwrap();
        let spec = Spec::parse("fields:\n  /brand: { choices: [Zed] }\n  /sale_price: { min: 20, max: 21, decimals: 2 }\n  /id: { sequence: 1000 }\n").unwrap();
        let mut g = Generator::new(&schema, spec, Some(3)).unwrap();
        for i in 0..20 {
            let s = g.next_record();
            assert_eq!(s["brand"], "Zed");
            assert_eq!(s["id"], 1000 + i);
            assert!((20.0..=21.0).contains(&s["sale_price"].as_f64().unwrap()));
        }
    }

    /// Every generated record fits its schema: each is serialized with the real codec.
    #[test]
    fn every_record_fits_avro_json_schema_and_protobuf() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
        for (file, format) in [
            ("order.avsc", Format::Avro),
            ("order.schema.json", Format::JsonSchema),
            ("shoe.proto", Format::Protobuf),
        ] {
            let schema = LocalSchema::from_file(&root.join(file), None).unwrap();
            let codec = crate::serdes::serializer::Codec::new(
                schema.schema_type,
                &schema.text,
                schema.record_name.as_deref(),
            )
            .unwrap();
            for doc in generate(&schema, 11, 300) {
                let text = doc.to_string();
                let result = match &codec {
                    crate::serdes::serializer::Codec::Avro(c) => c.encode(&doc).map(|_| ()),
                    crate::serdes::serializer::Codec::Json(c) => c.validate(&doc),
                    crate::serdes::serializer::Codec::Protobuf(c) => c.encode(&text).map(|_| ()),
                };
                assert!(result.is_ok(), "{file} ({format:?}): {doc} -> {result:?}");
            }
        }
    }

    #[test]
    fn bursts_switch_the_rate() {
        let o = RunOptions {
            rate: Some(10.0),
            burst: Some(Burst {
                rate: 100.0,
                every: Duration::from_secs(10),
                length: Duration::from_secs(2),
            }),
            ..Default::default()
        };
        assert_eq!(rate_at(&o, Duration::from_secs(1)), Some(100.0));
        assert_eq!(rate_at(&o, Duration::from_secs(5)), Some(10.0));
        assert_eq!(rate_at(&o, Duration::from_millis(11_500)), Some(100.0));
    }
}
