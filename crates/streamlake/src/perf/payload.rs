//! The records a performance run sends.
//!
//! # Guarantees
//! - A synthetic value is a JSON object of exactly `record_size` bytes: a realistic order
//!   (ids, SKU, quantity, price, currency, time) with as many fields as fit, padded to the byte
//!   with a `pad` string of random letters (or, when fewer than 9 bytes are left, spaces). Any
//!   size from 2 bytes (`{}`) up is exact.
//! - Values from a file (one per non-empty line) or from a schema are encoded once, before the
//!   run, and cycled: encoding cost is never part of the measurement.
//! - Keys come from a bounded key space of `keys` distinct keys (`cust-000042`), spread evenly
//!   by a fixed hash of the record's number, so a run's keys are reproducible and no more than
//!   `keys` of them exist.
//! - With headers on, every record carries the [`HEADER_NAMES`], in that order: five metadata
//!   headers like real traffic's, and [`SENT_AT_HEADER`], the record's intended send time in
//!   microseconds since the Unix epoch, which `perf consume` measures end-to-end latency from.

use super::PerfError;
use crate::record::{Header, Record};
use crate::serdes::{Format, Serializer};
use bytes::Bytes;
use rand::{Rng, SeedableRng};
use std::io::BufRead;
use std::ops::Range;
use std::sync::Arc;

/// The header holding the record's intended send time, µs since the Unix epoch.
pub const SENT_AT_HEADER: &str = "perf_sent_us";

/// The headers of every record (when headers are on), in order.
pub const HEADER_NAMES: [&str; 6] = [
    "ingestion_id",
    "source",
    "schema",
    "traceparent",
    "content_type",
    SENT_AT_HEADER,
];

/// The `source` header's value.
pub const SOURCE: &str = "streamlake-perf";

/// The `schema` header of synthetic values.
pub const SYNTHETIC_SCHEMA: &str = "streamlake.perf.Order";

/// The smallest synthetic value: `{}`.
pub const MIN_RECORD_SIZE: usize = 2;

/// Values generated from a schema before a run, then cycled.
pub const GENERATED_VALUES: usize = 1000;

/// Bytes `,"pad":""` costs before its first letter (one less when it is the only field).
const PAD_OVERHEAD: usize = 9;

/// Random letters the padding is cut from (at least this long).
const PAD_POOL: usize = 64 * 1024;

/// Where values come from.
#[derive(Debug, Clone)]
pub enum Values {
    /// A fresh order as JSON for every record, exactly this many bytes.
    Synthetic {
        /// Bytes per value.
        size: usize,
    },
    /// Values prepared before the run, cycled in order.
    Cycled(Arc<[Bytes]>),
}

/// What every record of a run looks like. Shared by the producers; each makes its records
/// with a [`RecordFactory`].
#[derive(Debug, Clone)]
pub struct PayloadSpec {
    /// The values.
    pub values: Values,
    /// Distinct keys; `None` for records without a key.
    pub keys: Option<u64>,
    /// Whether records carry the [`HEADER_NAMES`].
    pub headers: bool,
    /// The `schema` header's value.
    pub schema: String,
    /// The `content_type` header's value.
    pub content_type: String,
    /// Makes this run's trace ids its own (records of two runs never share one).
    pub trace_salt: u64,
}

/// A salt that differs from run to run.
fn run_salt() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    mix(nanos ^ (u64::from(std::process::id()) << 32) ^ mix(run))
}

impl PayloadSpec {
    /// Synthetic order JSON of `record_size` bytes.
    pub fn synthetic(
        record_size: usize,
        keys: Option<u64>,
        headers: bool,
    ) -> Result<Self, PerfError> {
        if record_size < MIN_RECORD_SIZE {
            return Err(PerfError::Options(format!(
                "--record-size must be at least {MIN_RECORD_SIZE} bytes (the smallest JSON object, {{}}), not {record_size}"
            )));
        }
        Ok(Self {
            values: Values::Synthetic { size: record_size },
            keys,
            headers,
            schema: SYNTHETIC_SCHEMA.to_owned(),
            content_type: content_type(Format::Json).to_owned(),
            trace_salt: run_salt(),
        })
    }

    /// Prepared values, cycled; `schema` names them in the `schema` header.
    pub fn cycled(
        values: Vec<Bytes>,
        format: Format,
        schema: impl Into<String>,
        keys: Option<u64>,
        headers: bool,
    ) -> Result<Self, PerfError> {
        if values.is_empty() {
            return Err(PerfError::Payload("no values to send".to_owned()));
        }
        Ok(Self {
            values: Values::Cycled(values.into()),
            keys,
            headers,
            schema: schema.into(),
            content_type: content_type(format).to_owned(),
            trace_salt: run_salt(),
        })
    }

    /// A record factory for `topic`.
    pub fn factory(self: &Arc<Self>, topic: &str) -> RecordFactory {
        let pad = match self.values {
            Values::Synthetic { size } => pad_pool(PAD_POOL.max(size * 2)),
            Values::Cycled(_) => Arc::from(Vec::new()),
        };
        let key_width = self
            .keys
            .map_or(6, |n| n.saturating_sub(1).to_string().len().max(6));
        RecordFactory {
            spec: Arc::clone(self),
            topic: topic.to_owned(),
            pad,
            key_width,
            schema: Bytes::from(self.schema.clone()),
            content_type: Bytes::from(self.content_type.clone()),
        }
    }
}

/// The `content_type` header for a value format.
pub fn content_type(format: Format) -> &'static str {
    match format {
        Format::Bytes => "application/octet-stream",
        Format::String => "text/plain; charset=utf-8",
        Format::Json => "application/json",
        Format::Avro => "application/vnd.apache.avro+binary",
        Format::Protobuf => "application/x-protobuf",
        Format::JsonSchema => "application/schema+json",
    }
}

/// Values from `reader`, one per non-empty line, each encoded by `serializer` (checked as
/// JSON for `json`, converted to the schema for registry formats, which must be prepared for
/// `topic`). A line that does not encode is an error naming it.
pub fn values_from_lines(
    reader: impl BufRead,
    serializer: &Serializer,
    topic: &str,
) -> Result<Vec<Bytes>, PerfError> {
    let mut out = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| PerfError::Payload(format!("line {}: {e}", i + 1)))?;
        if line.trim().is_empty() {
            continue;
        }
        let bytes = serializer
            .serialize(topic, line.as_bytes())
            .map_err(|e| PerfError::Payload(format!("line {}: {e}", i + 1)))?;
        out.push(Bytes::from(bytes));
    }
    if out.is_empty() {
        return Err(PerfError::Payload(
            "the payload file has no records".to_owned(),
        ));
    }
    Ok(out)
}

/// `count` schema-true values from `generator`, encoded by `serializer` (prepared for `topic`
/// when its format uses the registry).
pub fn values_from_generator(
    generator: &mut crate::datagen::Generator,
    serializer: &Serializer,
    topic: &str,
    count: usize,
) -> Result<Vec<Bytes>, PerfError> {
    (0..count.max(1))
        .map(|_| {
            let doc = generator.next_record();
            serializer
                .serialize_value(topic, &doc)
                .map(Bytes::from)
                .map_err(PerfError::from)
        })
        .collect()
}

/// Makes the records of one producer. Cheap to create; not shared between threads.
#[derive(Debug)]
pub struct RecordFactory {
    spec: Arc<PayloadSpec>,
    topic: String,
    pad: Arc<[u8]>,
    key_width: usize,
    schema: Bytes,
    content_type: Bytes,
}

impl RecordFactory {
    /// Record number `seq` of the run (numbers are unique over all producers), stamped with
    /// its intended send time.
    pub fn record(&self, seq: u64, sent_at_us: i64) -> Record {
        // Key, value and the per-record header values are written into one buffer and handed
        // out as slices of it: two allocations per record instead of one per part, and no
        // formatting machinery (this runs once per record on the sending thread).
        let value_size = match &self.spec.values {
            Values::Synthetic { size } => *size,
            Values::Cycled(_) => 0,
        };
        let mut buf = Vec::with_capacity(value_size + 160);
        if let Some(n) = self.spec.keys {
            buf.extend_from_slice(b"cust-");
            push_decimal(&mut buf, mix(seq) % n, self.key_width);
        }
        let key_end = buf.len();
        // The order's customer field repeats the key.
        let customer = self.spec.keys.map(|_| 0..key_end);
        let cycled = match &self.spec.values {
            Values::Synthetic { size } => {
                self.order(&mut buf, seq, *size, customer);
                None
            }
            Values::Cycled(values) => Some(values[(seq % values.len() as u64) as usize].clone()),
        };
        let value_end = buf.len();
        // Where the ingestion id, the traceparent and the send time end.
        let mut marks = [value_end; 3];
        if self.spec.headers {
            let salt = self.spec.trace_salt;
            buf.extend_from_slice(
                uuid::Uuid::now_v7()
                    .hyphenated()
                    .encode_lower(&mut [0; uuid::fmt::Hyphenated::LENGTH])
                    .as_bytes(),
            );
            marks[0] = buf.len();
            buf.extend_from_slice(b"00-");
            push_hex(&mut buf, mix(salt ^ seq));
            push_hex(&mut buf, mix(salt.rotate_left(17) ^ seq) | 1);
            buf.push(b'-');
            push_hex(&mut buf, mix(salt.rotate_left(31) ^ seq) | 1);
            buf.extend_from_slice(b"-01");
            marks[1] = buf.len();
            if sent_at_us < 0 {
                buf.push(b'-');
            }
            push_decimal(&mut buf, sent_at_us.unsigned_abs(), 1);
            marks[2] = buf.len();
        }
        let all = Bytes::from(buf);
        let value = cycled.unwrap_or_else(|| all.slice(key_end..value_end));
        let mut record = Record::new(self.topic.clone(), value);
        if self.spec.keys.is_some() {
            record.key = Some(all.slice(..key_end));
        }
        if self.spec.headers {
            record.headers = vec![
                Header::new(HEADER_NAMES[0], all.slice(value_end..marks[0])),
                Header::new(HEADER_NAMES[1], Bytes::from_static(SOURCE.as_bytes())),
                Header::new(HEADER_NAMES[2], self.schema.clone()),
                Header::new(HEADER_NAMES[3], all.slice(marks[0]..marks[1])),
                Header::new(HEADER_NAMES[4], self.content_type.clone()),
                Header::new(HEADER_NAMES[5], all.slice(marks[1]..marks[2])),
            ];
        }
        record
    }

    /// Appends an order as JSON of exactly `size` bytes (`size >= 2`) to `out`, written straight
    /// into the buffer: this runs once per record on the sending thread. `customer` is where in
    /// `out` the customer's id already stands, if it does.
    fn order(&self, out: &mut Vec<u8>, seq: u64, size: usize, customer: Option<Range<usize>>) {
        let h = mix(seq);
        let cents = 10_000 + (h >> 8) % 90_000;
        let base = out.len();
        out.push(b'{');
        let mut count = 0;
        for field in 0..6 {
            let mark = out.len();
            if count > 0 {
                out.push(b',');
            }
            match field {
                0 => {
                    out.extend_from_slice(b"\"order_id\":\"ord-");
                    push_decimal(out, seq, 8);
                    out.push(b'"');
                }
                1 => {
                    out.extend_from_slice(b"\"customer\":\"");
                    match &customer {
                        Some(c) => out.extend_from_within(c.clone()),
                        None => {
                            out.extend_from_slice(b"cust-");
                            push_decimal(out, h % 1_000_000, 6);
                        }
                    }
                    out.push(b'"');
                }
                2 => {
                    out.extend_from_slice(b"\"sku\":\"SKU-");
                    push_decimal(out, (h >> 20) % 10_000, 4);
                    out.push(b'"');
                }
                3 => {
                    out.extend_from_slice(b"\"qty\":");
                    push_decimal(out, (h >> 40) % 9 + 1, 1);
                }
                4 => {
                    out.extend_from_slice(b"\"price\":");
                    push_decimal(out, cents / 100, 1);
                    out.push(b'.');
                    push_decimal(out, cents % 100, 2);
                }
                _ => {
                    out.extend_from_slice(b"\"currency\":\"");
                    out.extend_from_slice(["EUR", "USD", "GBP"][(h % 3) as usize].as_bytes());
                    out.push(b'"');
                }
            }
            // A field that does not fit before the closing brace is left out, with the rest.
            if out.len() - base + 1 > size {
                out.truncate(mark);
                break;
            }
            count += 1;
        }
        let left = size - (out.len() - base) - 1;
        let overhead = PAD_OVERHEAD - usize::from(count == 0);
        if left >= overhead {
            let letters = left - overhead;
            if count > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"\"pad\":\"");
            let start = (h as usize) % (self.pad.len() - letters + 1);
            out.extend_from_slice(&self.pad[start..start + letters]);
            out.push(b'"');
        } else {
            out.resize(out.len() + left, b' ');
        }
        out.push(b'}');
    }
}

/// Random letters and digits (fixed seed: runs compress alike).
fn pad_pool(len: usize) -> Arc<[u8]> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x5eed_f00d);
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())])
        .collect::<Vec<u8>>()
        .into()
}

/// Appends `n` in decimal, zero-padded to at least `width` digits.
fn push_decimal(out: &mut Vec<u8>, mut n: u64, width: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let len = digits.len() - i;
    out.resize(out.len() + width.saturating_sub(len), b'0');
    out.extend_from_slice(&digits[i..]);
}

/// Appends `v` as 16 lowercase hex digits.
fn push_hex(out: &mut Vec<u8>, v: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for shift in (0..16).rev() {
        out.push(HEX[((v >> (shift * 4)) & 0xf) as usize]);
    }
}

/// SplitMix64: a fixed, well-spread hash of a record's number.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_as_format_would() {
        for (n, width) in [
            (0u64, 1usize),
            (7, 1),
            (7, 4),
            (1234, 4),
            (98765, 3),
            (u64::MAX, 8),
        ] {
            let mut out = b"x".to_vec();
            push_decimal(&mut out, n, width);
            assert_eq!(out, format!("x{n:0width$}").into_bytes());
        }
        for v in [0u64, 1, 0xdead_beef, u64::MAX] {
            let mut out = Vec::new();
            push_hex(&mut out, v);
            assert_eq!(out, format!("{v:016x}").into_bytes());
        }
    }
    use crate::config::SchemaRegistryConfig;
    use crate::registry::Role;
    use serde_json::Value;
    use std::collections::HashSet;

    fn factory(size: usize, keys: Option<u64>, headers: bool) -> RecordFactory {
        Arc::new(PayloadSpec::synthetic(size, keys, headers).unwrap()).factory("orders")
    }

    #[test]
    fn synthetic_values_are_json_objects_of_exactly_the_size() {
        for size in [
            2, 3, 9, 10, 11, 30, 60, 100, 110, 119, 120, 121, 127, 128, 129, 130, 150, 200, 1000,
            4096, 100_000, 200_000,
        ] {
            let f = factory(size, Some(1000), true);
            for seq in [0, 1, 41, 999_999, 123_456_789_012] {
                let r = f.record(seq, 1);
                let value = r.value.unwrap();
                assert_eq!(value.len(), size, "size {size}, record {seq}");
                let doc: Value = serde_json::from_slice(&value)
                    .unwrap_or_else(|e| panic!("size {size}: {e}: {value:?}"));
                assert!(doc.is_object(), "{doc}");
            }
        }
    }

    #[test]
    fn the_default_size_holds_a_whole_order() {
        let f = factory(crate::perf::options::DEFAULT_RECORD_SIZE, Some(1000), true);
        let r = f.record(42, 1);
        let doc: Value = serde_json::from_slice(r.value.as_ref().unwrap()).unwrap();
        let fields: Vec<&str> = doc
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        // serde_json sorts the keys.
        assert_eq!(
            fields,
            ["currency", "customer", "order_id", "pad", "price", "qty", "sku"],
            "{doc}"
        );
        assert_eq!(doc["order_id"], "ord-00000042");
        assert!(
            (100.0..1000.0).contains(&doc["price"].as_f64().unwrap()),
            "{doc}"
        );
        assert_eq!(
            doc["customer"].as_str(),
            std::str::from_utf8(r.key.as_ref().unwrap()).ok(),
            "the customer is the key"
        );
    }

    #[test]
    fn every_record_carries_the_headers_in_order() {
        let f = factory(120, Some(10), true);
        let r = f.record(7, 1_767_225_600_123_456);
        let names: Vec<&str> = r.headers.iter().map(|h| &*h.key).collect();
        assert_eq!(names, HEADER_NAMES);
        let value = |name: &str| {
            let h = r.headers.iter().find(|h| h.key == name).unwrap();
            String::from_utf8(h.value.clone().unwrap().to_vec()).unwrap()
        };
        assert_eq!(value("perf_sent_us"), "1767225600123456");
        assert_eq!(value("source"), SOURCE);
        assert_eq!(value("schema"), SYNTHETIC_SCHEMA);
        assert_eq!(value("content_type"), "application/json");
        let id = value("ingestion_id");
        assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 7);
        let trace = value("traceparent");
        let parts: Vec<&str> = trace.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [2, 32, 16, 2]
        );
        assert!(trace.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
        assert_ne!(
            f.record(8, 1).headers[0].value,
            f.record(8, 1).headers[0].value,
            "ingestion ids are unique"
        );
        let traces: HashSet<Option<Bytes>> = (0..1000)
            .map(|i| f.record(i, 1).headers[3].value.clone())
            .collect();
        assert_eq!(traces.len(), 1000, "a trace id per record");
        let other_run = factory(120, Some(10), true);
        assert_ne!(
            other_run.record(7, 1).headers[3].value,
            r.headers[3].value,
            "another run, other trace ids"
        );

        let bare = factory(120, None, false).record(7, 1);
        assert!(bare.headers.is_empty());
        assert_eq!(bare.key, None);
    }

    #[test]
    fn keys_stay_in_a_bounded_space_and_use_all_of_it() {
        let f = factory(50, Some(50), false);
        let keys: HashSet<Bytes> = (0..10_000).map(|i| f.record(i, 0).key.unwrap()).collect();
        assert_eq!(keys.len(), 50, "exactly the 50 keys, each used");
        assert!(keys.contains(&Bytes::from_static(b"cust-000000")));
        assert!(keys.contains(&Bytes::from_static(b"cust-000049")));
        // Wider key spaces widen the key, so keys of a run are all the same length.
        let wide = factory(50, Some(10_000_000), false);
        assert_eq!(wide.record(3, 0).key.unwrap().len(), "cust-".len() + 7);
        // The same record number always gets the same key.
        assert_eq!(f.record(77, 0).key, f.record(77, 0).key);
    }

    fn json_serializer(format: Format) -> Serializer {
        Serializer::new(
            format,
            Role::Value,
            None,
            None,
            &SchemaRegistryConfig::default(),
        )
        .unwrap()
    }

    #[test]
    fn file_values_are_checked_and_cycled_in_order() {
        let ser = json_serializer(Format::Json);
        let values =
            values_from_lines("{\"a\":1}\n\n{\"a\":2}\n{\"a\":3}\n".as_bytes(), &ser, "t").unwrap();
        let spec = PayloadSpec::cycled(values, Format::Json, "file", Some(3), true).unwrap();
        let f = Arc::new(spec).factory("t");
        let got: Vec<Bytes> = (0..7).map(|i| f.record(i, 0).value.unwrap()).collect();
        let want: Vec<&[u8]> = vec![
            b"{\"a\":1}",
            b"{\"a\":2}",
            b"{\"a\":3}",
            b"{\"a\":1}",
            b"{\"a\":2}",
            b"{\"a\":3}",
            b"{\"a\":1}",
        ];
        assert_eq!(got, want);

        let err = values_from_lines("{\"a\":1}\n{oops\n".as_bytes(), &ser, "t").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        let err = values_from_lines("\n\n".as_bytes(), &ser, "t").unwrap_err();
        assert!(err.to_string().contains("no records"), "{err}");
    }

    #[test]
    fn generated_values_come_from_the_schema() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
        let schema = crate::serdes::LocalSchema::from_file(&root.join("order.avsc"), None).unwrap();
        let mut generator =
            crate::datagen::Generator::new(&schema, crate::datagen::Spec::default(), Some(1))
                .unwrap();
        let values =
            values_from_generator(&mut generator, &json_serializer(Format::Json), "t", 25).unwrap();
        assert_eq!(values.len(), 25);
        for v in &values {
            let doc: Value = serde_json::from_slice(v).unwrap();
            assert!(
                doc["order_id"].is_string() && doc["lines"].is_array(),
                "{doc}"
            );
        }
    }

    #[test]
    fn too_small_a_size_is_refused() {
        let err = PayloadSpec::synthetic(1, None, true).unwrap_err();
        assert!(err.to_string().contains("at least 2"), "{err}");
    }
}
