//! Avro: JSON documents to Avro binary by a schema, and back, with errors that name the field.

use super::SerdeError;
use apache_avro::schema::{ResolvedSchema, Schema};
use apache_avro::types::Value as Avro;
use serde_json::{Map, Number, Value as Json};
use std::collections::HashMap;

/// Deepest nesting of records, arrays and maps a payload may have (as deep as serde_json
/// parses JSON); a recursive schema otherwise lets a payload nest as deep as it is long.
pub(crate) const MAX_DEPTH: usize = 128;

/// Payloads nesting up to this many values deep are decoded on the calling thread.
const INLINE_FRAMES: usize = 16;

/// Stack given to the decoder per level of nesting, for deeper payloads.
const STACK_PER_FRAME: usize = 64 << 10;

/// Most items taking no bytes at all (nulls, records without fields) one payload may hold:
/// each one still becomes a value in memory.
const MAX_EMPTY_ITEMS: u64 = 1 << 16;

/// Walks a payload along its schema without building anything, checking that every length
/// and item count fits in the bytes that are left (the decoder allocates by them) and that
/// nesting stays under [`MAX_DEPTH`], and measuring how deep the decoder will recurse. Reads
/// integers exactly as the decoder does.
struct Bounds<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Array and map items so far that took no bytes.
    empty_items: u64,
    /// Nested values being walked (the decoder's recursion), and the most there were.
    frames: usize,
    max_frames: usize,
    names: &'a HashMap<String, Schema>,
}

impl Bounds<'_> {
    fn left(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn skip(&mut self, n: u64, what: &str) -> Result<(), String> {
        if n > self.left() as u64 {
            return Err(format!(
                "{what} of {n} bytes, but only {} bytes are left",
                self.left()
            ));
        }
        self.pos += n as usize;
        Ok(())
    }

    /// A zigzag varint, as `apache_avro` reads it.
    fn long(&mut self) -> Result<i64, String> {
        let mut z = 0u64;
        for j in 0..10 {
            let b = *self
                .bytes
                .get(self.pos)
                .ok_or_else(|| "the payload ends inside a number".to_owned())?;
            self.pos += 1;
            z |= u64::from(b & 0x7f) << (j * 7);
            if b < 0x80 {
                return Ok(if z & 1 == 0 {
                    (z >> 1) as i64
                } else {
                    !(z >> 1) as i64
                });
            }
        }
        Err("a number longer than 10 bytes".to_owned())
    }

    fn length(&mut self, what: &str) -> Result<(), String> {
        let n = self.long()?;
        let n = u64::try_from(n).map_err(|_| format!("negative {what} length {n}"))?;
        self.skip(n, what)
    }

    fn check(&mut self, schema: &Schema, depth: usize) -> Result<(), String> {
        self.frames += 1;
        self.max_frames = self.max_frames.max(self.frames);
        let checked = self.check_value(schema, depth);
        self.frames -= 1;
        checked
    }

    fn check_value(&mut self, schema: &Schema, depth: usize) -> Result<(), String> {
        match schema {
            Schema::Null => Ok(()),
            Schema::Boolean => self.skip(1, "boolean"),
            Schema::Int
            | Schema::Long
            | Schema::Date
            | Schema::TimeMillis
            | Schema::TimeMicros
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos
            | Schema::Enum(_) => self.long().map(drop),
            Schema::Float => self.skip(4, "float"),
            Schema::Double => self.skip(8, "double"),
            Schema::Duration => self.skip(12, "duration"),
            Schema::Bytes | Schema::String | Schema::Uuid | Schema::BigDecimal => {
                self.length("string or bytes")
            }
            Schema::Fixed(f) => self.skip(f.size as u64, "fixed"),
            Schema::Decimal(d) => self.check(&d.inner, depth),
            Schema::Union(u) => {
                let i = self.long()?;
                let variant = usize::try_from(i)
                    .ok()
                    .and_then(|i| u.variants().get(i))
                    .ok_or_else(|| {
                        format!("union branch {i} of {} does not exist", u.variants().len())
                    })?;
                self.check(variant, depth)
            }
            Schema::Ref { name } => {
                let target = self
                    .names
                    .get(&name.fullname(None))
                    .ok_or_else(|| format!("unknown type {}", name.fullname(None)))?;
                self.check(target, depth)
            }
            Schema::Record(r) => {
                let depth = self.deeper(depth)?;
                r.fields
                    .iter()
                    .try_for_each(|f| self.check(&f.schema, depth))
            }
            Schema::Array(a) => self.blocks(&a.items, false, depth),
            Schema::Map(m) => self.blocks(&m.types, true, depth),
        }
    }

    fn deeper(&self, depth: usize) -> Result<usize, String> {
        if depth >= MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH} levels"));
        }
        Ok(depth + 1)
    }

    /// Array or map blocks: a count (negative: followed by the block's size in bytes), the
    /// items, until a count of 0.
    fn blocks(&mut self, item: &Schema, keyed: bool, depth: usize) -> Result<(), String> {
        let depth = self.deeper(depth)?;
        loop {
            let raw = self.long()?;
            if raw == 0 {
                return Ok(());
            }
            let count = if raw < 0 {
                self.long()?;
                raw.checked_neg()
                    .ok_or_else(|| format!("impossible item count {raw}"))?
            } else {
                raw
            } as u64;
            // Every item takes at least one byte, or counts against the empty-item budget.
            let budget = MAX_EMPTY_ITEMS - self.empty_items;
            if count > (self.left() as u64).saturating_add(budget) {
                return Err(format!(
                    "a block of {count} items, but only {} bytes are left",
                    self.left()
                ));
            }
            for _ in 0..count {
                let start = self.pos;
                if keyed {
                    self.length("map key")?;
                }
                self.check(item, depth)?;
                if self.pos == start {
                    self.empty_items += 1;
                    if self.empty_items > MAX_EMPTY_ITEMS {
                        return Err(format!(
                            "more than {MAX_EMPTY_ITEMS} items that take no bytes"
                        ));
                    }
                }
            }
        }
    }
}

/// A parsed Avro schema with its named types.
#[derive(Debug, Clone)]
pub(crate) struct AvroCodec {
    pub(crate) schema: Schema,
    pub(crate) names: HashMap<String, Schema>,
}

fn kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "a list",
        Json::Object(_) => "an object",
    }
}

/// Avro's JSON encoding of bytes: each character is one byte (U+0000 to U+00FF).
fn latin1(s: &str, path: &str) -> Result<Vec<u8>, SerdeError> {
    s.chars()
        .map(|c| {
            u8::try_from(u32::from(c)).map_err(|_| {
                SerdeError::field(
                    path,
                    format!(
                        "bytes are written one character per byte (U+0000 to U+00FF); found {c:?}"
                    ),
                )
            })
        })
        .collect()
}

fn from_latin1(b: &[u8]) -> String {
    b.iter().map(|&x| char::from(x)).collect()
}

fn timestamp(v: &Json, path: &str, per_second: i64) -> Result<i64, SerdeError> {
    if let Some(i) = v.as_i64() {
        return Ok(i);
    }
    let s = v.as_str().ok_or_else(|| {
        SerdeError::field(
            path,
            format!(
                "expected a timestamp (integer or RFC 3339 text), found {}",
                kind(v)
            ),
        )
    })?;
    let t = humantime::parse_rfc3339_weak(s)
        .map_err(|e| SerdeError::field(path, format!("`{s}` is not an RFC 3339 time: {e}")))?;
    let d = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| SerdeError::field(path, "times before 1970 are not supported"))?;
    Ok(
        d.as_secs() as i64 * per_second
            + i64::from(d.subsec_nanos()) / (1_000_000_000 / per_second),
    )
}

fn branch_name(s: &Schema) -> String {
    match s {
        Schema::Record(r) => r.name.fullname(None),
        Schema::Enum(e) => e.name.fullname(None),
        Schema::Fixed(f) => f.name.fullname(None),
        Schema::Ref { name } => name.fullname(None),
        other => {
            let canonical = other.canonical_form();
            serde_json::from_str::<Json>(&canonical)
                .ok()
                .and_then(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .or_else(|| v["type"].as_str().map(str::to_owned))
                })
                .unwrap_or(canonical)
        }
    }
}

impl AvroCodec {
    pub(crate) fn new(text: &str) -> Result<Self, SerdeError> {
        let schema = Schema::parse_str(text)
            .map_err(|e| SerdeError::Schema(format!("invalid Avro schema: {e}")))?;
        let resolved = ResolvedSchema::try_from(&schema)
            .map_err(|e| SerdeError::Schema(format!("invalid Avro schema: {e}")))?;
        let names = resolved
            .get_names()
            .iter()
            .map(|(n, s)| (n.fullname(None), (*s).clone()))
            .collect();
        Ok(Self { schema, names })
    }

    /// The top-level record's full name.
    pub(crate) fn record_name(&self) -> Option<String> {
        match &self.schema {
            Schema::Record(r) => Some(r.name.fullname(None)),
            _ => None,
        }
    }

    /// Encodes a JSON document as Avro binary (without framing).
    pub(crate) fn encode(&self, doc: &Json) -> Result<Vec<u8>, SerdeError> {
        let value = self.to_avro(doc, &self.schema, "")?;
        apache_avro::to_avro_datum(&self.schema, value)
            .map_err(|e| SerdeError::field("", e.to_string()))
    }

    /// Decodes Avro binary written with this schema into JSON.
    ///
    /// The payload is first walked along the schema ([`Bounds`]): a length or item count
    /// past the bytes that are left, a payload cut short, or nesting deeper than
    /// [`MAX_DEPTH`] is refused before the decoder sees it. Without that walk a few hostile
    /// bytes make the decoder reserve gigabytes (a count of 2^29 array items) or hand back a
    /// cut-off string as `null`, and a recursive schema with a long run of one byte makes it
    /// recurse until the stack overflows (which aborts the process): deep payloads are
    /// decoded on a thread with stack enough for their depth.
    pub(crate) fn decode(&self, bytes: &[u8]) -> Result<Json, SerdeError> {
        let mismatch = |e: &dyn std::fmt::Display| {
            SerdeError::Wire(format!("Avro payload does not match its schema: {e}"))
        };
        let mut bounds = Bounds {
            bytes,
            pos: 0,
            empty_items: 0,
            frames: 0,
            max_frames: 0,
            names: &self.names,
        };
        bounds.check(&self.schema, 0).map_err(|e| mismatch(&e))?;
        let decode = || {
            let mut reader = bytes;
            apache_avro::from_avro_datum(&self.schema, &mut reader, None)
                .map(to_json)
                .map_err(|e| mismatch(&e))
        };
        if bounds.max_frames <= INLINE_FRAMES {
            return decode();
        }
        // The decoder recurses once per nested value, with large frames (about 20 KiB each in
        // a debug build): a deep payload is decoded on a thread with room for it.
        std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name("streamlake-avro-decode".to_owned())
                .stack_size((1 << 20) + bounds.max_frames * STACK_PER_FRAME)
                .spawn_scoped(scope, decode)
                .map_err(|e| SerdeError::Wire(format!("cannot start the Avro decoder: {e}")))?
                .join()
                .map_err(|_| SerdeError::Wire("the Avro decoder failed".to_owned()))?
        })
    }

    fn to_avro(&self, v: &Json, schema: &Schema, path: &str) -> Result<Avro, SerdeError> {
        let mismatch = |expected: &str| {
            SerdeError::field(path, format!("expected {expected}, found {}", kind(v)))
        };
        Ok(match schema {
            Schema::Null => v
                .is_null()
                .then_some(Avro::Null)
                .ok_or_else(|| mismatch("null"))?,
            Schema::Boolean => Avro::Boolean(v.as_bool().ok_or_else(|| mismatch("a boolean"))?),
            Schema::Int => Avro::Int(
                v.as_i64()
                    .and_then(|i| i32::try_from(i).ok())
                    .ok_or_else(|| mismatch("an int (32-bit integer)"))?,
            ),
            Schema::Long => Avro::Long(
                v.as_i64()
                    .ok_or_else(|| mismatch("a long (64-bit integer)"))?,
            ),
            Schema::Float => Avro::Float(v.as_f64().ok_or_else(|| mismatch("a float"))? as f32),
            Schema::Double => Avro::Double(v.as_f64().ok_or_else(|| mismatch("a double"))?),
            Schema::Bytes => Avro::Bytes(latin1(
                v.as_str().ok_or_else(|| mismatch("bytes (a string)"))?,
                path,
            )?),
            Schema::String | Schema::Uuid => {
                Avro::String(v.as_str().ok_or_else(|| mismatch("a string"))?.to_owned())
            }
            Schema::Date => Avro::Date(
                v.as_i64()
                    .and_then(|i| i32::try_from(i).ok())
                    .ok_or_else(|| mismatch("a date (days since 1970)"))?,
            ),
            Schema::TimeMillis => Avro::TimeMillis(
                v.as_i64()
                    .and_then(|i| i32::try_from(i).ok())
                    .ok_or_else(|| mismatch("a time in ms"))?,
            ),
            Schema::TimeMicros => {
                Avro::TimeMicros(v.as_i64().ok_or_else(|| mismatch("a time in µs"))?)
            }
            Schema::TimestampMillis => Avro::TimestampMillis(timestamp(v, path, 1_000)?),
            Schema::TimestampMicros => Avro::TimestampMicros(timestamp(v, path, 1_000_000)?),
            Schema::TimestampNanos => Avro::TimestampNanos(timestamp(v, path, 1_000_000_000)?),
            Schema::LocalTimestampMillis => Avro::LocalTimestampMillis(timestamp(v, path, 1_000)?),
            Schema::LocalTimestampMicros => {
                Avro::LocalTimestampMicros(timestamp(v, path, 1_000_000)?)
            }
            Schema::LocalTimestampNanos => {
                Avro::LocalTimestampNanos(timestamp(v, path, 1_000_000_000)?)
            }
            Schema::Enum(e) => {
                let s = v.as_str().ok_or_else(|| mismatch("an enum symbol"))?;
                let i = e.symbols.iter().position(|x| x == s).ok_or_else(|| {
                    SerdeError::field(
                        path,
                        format!("`{s}` is not one of {}", e.symbols.join(", ")),
                    )
                })?;
                Avro::Enum(i as u32, s.to_owned())
            }
            Schema::Fixed(f) => {
                let b = latin1(
                    v.as_str()
                        .ok_or_else(|| mismatch("fixed bytes (a string)"))?,
                    path,
                )?;
                if b.len() != f.size {
                    return Err(SerdeError::field(
                        path,
                        format!("expected {} bytes, found {}", f.size, b.len()),
                    ));
                }
                Avro::Fixed(f.size, b)
            }
            Schema::Array(a) => {
                let items = v.as_array().ok_or_else(|| mismatch("a list"))?;
                Avro::Array(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, x)| self.to_avro(x, &a.items, &format!("{path}/{i}")))
                        .collect::<Result<_, _>>()?,
                )
            }
            Schema::Map(m) => {
                let obj = v.as_object().ok_or_else(|| mismatch("an object (map)"))?;
                Avro::Map(
                    obj.iter()
                        .map(|(k, x)| {
                            Ok((
                                k.clone(),
                                self.to_avro(x, &m.types, &format!("{path}/{}", escape(k)))?,
                            ))
                        })
                        .collect::<Result<_, SerdeError>>()?,
                )
            }
            Schema::Record(r) => {
                let obj = v.as_object().ok_or_else(|| {
                    mismatch(&format!("an object (record {})", r.name.fullname(None)))
                })?;
                if let Some(extra) = obj.keys().find(|k| !r.fields.iter().any(|f| &f.name == *k)) {
                    return Err(SerdeError::field(
                        &format!("{path}/{}", escape(extra)),
                        format!("is not a field of record {}", r.name.fullname(None)),
                    ));
                }
                let mut fields = Vec::with_capacity(r.fields.len());
                for f in &r.fields {
                    let fpath = format!("{path}/{}", escape(&f.name));
                    let value = match (obj.get(&f.name), &f.default) {
                        (Some(x), _) => self.to_avro(x, &f.schema, &fpath)?,
                        (None, Some(default)) => self.default_value(default, &f.schema, &fpath)?,
                        (None, None) => {
                            return Err(SerdeError::field(&fpath, "required field is missing"))
                        }
                    };
                    fields.push((f.name.clone(), value));
                }
                Avro::Record(fields)
            }
            Schema::Union(u) => self.union(v, u.variants(), path)?,
            Schema::Ref { name } => {
                let target = self.names.get(&name.fullname(None)).ok_or_else(|| {
                    SerdeError::Schema(format!("unknown type {}", name.fullname(None)))
                })?;
                self.to_avro(v, target, path)?
            }
            Schema::Decimal(_) | Schema::BigDecimal | Schema::Duration => {
                return Err(SerdeError::field(
                    path,
                    "decimal and duration fields are not supported from JSON input yet",
                ))
            }
        })
    }

    /// A field default: for a union, Avro applies it to the first branch.
    fn default_value(
        &self,
        default: &Json,
        schema: &Schema,
        path: &str,
    ) -> Result<Avro, SerdeError> {
        match schema {
            Schema::Union(u) => {
                let first = u
                    .variants()
                    .first()
                    .ok_or_else(|| SerdeError::Schema("empty union".into()))?;
                Ok(Avro::Union(
                    0,
                    Box::new(self.to_avro(default, first, path)?),
                ))
            }
            other => self.to_avro(default, other, path),
        }
    }

    fn union(&self, v: &Json, variants: &[Schema], path: &str) -> Result<Avro, SerdeError> {
        if v.is_null() {
            if let Some(i) = variants.iter().position(|s| matches!(s, Schema::Null)) {
                return Ok(Avro::Union(i as u32, Box::new(Avro::Null)));
            }
        }
        // Avro's JSON encoding: {"<branch type>": value}.
        if let Some((name, inner)) = v
            .as_object()
            .filter(|o| o.len() == 1)
            .and_then(|o| o.iter().next())
        {
            if let Some(i) = variants.iter().position(|s| branch_name(s) == *name) {
                return Ok(Avro::Union(
                    i as u32,
                    Box::new(self.to_avro(inner, &variants[i], path)?),
                ));
            }
        }
        let mut reasons = Vec::new();
        for (i, s) in variants
            .iter()
            .enumerate()
            .filter(|(_, s)| !matches!(s, Schema::Null))
        {
            match self.to_avro(v, s, path) {
                Ok(x) => return Ok(Avro::Union(i as u32, Box::new(x))),
                Err(SerdeError::Field { message, .. }) => {
                    reasons.push(format!("{}: {message}", branch_name(s)))
                }
                Err(e) => return Err(e),
            }
        }
        let names: Vec<String> = variants.iter().map(branch_name).collect();
        Err(SerdeError::field(
            path,
            format!(
                "fits none of the union's types [{}] ({})",
                names.join(", "),
                reasons.join("; ")
            ),
        ))
    }
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Avro to JSON, the way Confluent's deserializers hand records to applications: unions as
/// their plain value, bytes as one character per byte.
pub(crate) fn to_json(v: Avro) -> Json {
    match v {
        Avro::Null => Json::Null,
        Avro::Boolean(b) => Json::Bool(b),
        Avro::Int(i) | Avro::Date(i) | Avro::TimeMillis(i) => Json::from(i),
        Avro::Long(i)
        | Avro::TimeMicros(i)
        | Avro::TimestampMillis(i)
        | Avro::TimestampMicros(i)
        | Avro::TimestampNanos(i)
        | Avro::LocalTimestampMillis(i)
        | Avro::LocalTimestampMicros(i)
        | Avro::LocalTimestampNanos(i) => Json::from(i),
        Avro::Float(f) => Number::from_f64(f64::from(f)).map_or(Json::Null, Json::Number),
        Avro::Double(f) => Number::from_f64(f).map_or(Json::Null, Json::Number),
        Avro::Bytes(b) | Avro::Fixed(_, b) => Json::String(from_latin1(&b)),
        Avro::String(s) => Json::String(s),
        Avro::Enum(_, s) => Json::String(s),
        Avro::Union(_, inner) => to_json(*inner),
        Avro::Array(items) => Json::Array(items.into_iter().map(to_json).collect()),
        Avro::Map(m) => Json::Object(m.into_iter().map(|(k, v)| (k, to_json(v))).collect()),
        Avro::Record(fields) => Json::Object(
            fields
                .into_iter()
                .map(|(k, v)| (k, to_json(v)))
                .collect::<Map<_, _>>(),
        ),
        Avro::Uuid(u) => Json::String(u.to_string()),
        other => Json::String(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ORDER: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[
        {"name":"order_id","type":"string"},
        {"name":"amount","type":"double"},
        {"name":"quantity","type":"int","default":1},
        {"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","PAID"]}},
        {"name":"customer","type":{"type":"record","name":"Customer","fields":[{"name":"id","type":"long"},{"name":"email","type":["null","string"],"default":null}]}},
        {"name":"tags","type":{"type":"array","items":"string"},"default":[]},
        {"name":"billing","type":["null","Customer"],"default":null},
        {"name":"created_at","type":{"type":"long","logicalType":"timestamp-millis"}}
    ]}"#;

    fn codec() -> AvroCodec {
        AvroCodec::new(ORDER).unwrap()
    }

    fn zigzag(n: i64) -> Vec<u8> {
        let mut v = ((n << 1) ^ (n >> 63)) as u64;
        let mut out = Vec::new();
        while v >= 0x80 {
            out.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
        out
    }

    #[test]
    fn hostile_lengths_counts_and_nesting_are_refused_before_decoding() {
        let refused = |c: &AvroCodec, bytes: &[u8], why: &str| {
            let e = c.decode(bytes).unwrap_err().to_string();
            assert!(
                e.contains("does not match its schema") && e.contains(why),
                "{e}"
            );
        };
        // A count of 2^29 items in a few bytes (the decoder would reserve 2^29 values), a
        // negative count with a block size, and 2^29 nulls that take no bytes at all.
        let longs = AvroCodec::new(r#"{"type":"array","items":"long"}"#).unwrap();
        let mut b = zigzag(1 << 29);
        b.push(0);
        refused(&longs, &b, "a block of 536870912 items");
        let mut b = zigzag(-(1 << 40));
        b.extend(zigzag(3));
        refused(&longs, &b, "a block of 1099511627776 items");
        let nulls = AvroCodec::new(r#"{"type":"array","items":"null"}"#).unwrap();
        let mut b = zigzag(1 << 29);
        b.push(0);
        refused(&nulls, &b, "a block of 536870912 items");
        let mut b = zigzag(1000);
        b.push(0);
        assert_eq!(nulls.decode(&b).unwrap().as_array().unwrap().len(), 1000);
        // A string longer than the payload, and one cut short (decoded as null before).
        let s = AvroCodec::new(
            r#"{"type":"record","name":"R","fields":[{"name":"s","type":"string"}]}"#,
        )
        .unwrap();
        refused(&s, &zigzag(1 << 28), "string or bytes of 268435456 bytes");
        refused(&s, &[10, b'a', b'b'], "string or bytes of 5 bytes");
        refused(&s, &zigzag(-3), "negative string or bytes length");
        refused(&s, &[0xff; 11], "longer than 10 bytes");
        // A recursive schema nests as deep as the payload is long: refused past MAX_DEPTH,
        // decoded up to it.
        let node = AvroCodec::new(
            r#"{"type":"record","name":"Node","fields":[{"name":"next","type":["null","Node"]}]}"#,
        )
        .unwrap();
        let mut deep = vec![2u8; 200_000];
        deep.push(0);
        refused(&node, &deep, "nested deeper than 128 levels");
        let mut ok = vec![2u8; MAX_DEPTH - 1];
        ok.push(0);
        let mut v = node.decode(&ok).unwrap();
        let mut levels = 1;
        while let Some(next) = v.get_mut("next").map(Json::take).filter(|n| !n.is_null()) {
            v = next;
            levels += 1;
        }
        assert_eq!(levels, MAX_DEPTH);
        refused(&node, &[2, 4], "union branch 2 of 2 does not exist");
    }

    #[test]
    fn round_trip_with_defaults_unions_refs_and_logical_types() {
        let doc = json!({"order_id":"ORD-1","amount":19.99,"status":"PAID","customer":{"id":42,"email":"a@b.c"},
                         "billing":{"id":7},"created_at":"2026-01-21T10:00:00Z"});
        let bytes = codec().encode(&doc).unwrap();
        let back = codec().decode(&bytes).unwrap();
        assert_eq!(
            back,
            json!({"order_id":"ORD-1","amount":19.99,"quantity":1,"status":"PAID","customer":{"id":42,"email":"a@b.c"},
                   "tags":[],"billing":{"id":7,"email":null},"created_at":1_768_989_600_000i64})
        );
        assert_eq!(codec().record_name().as_deref(), Some("shop.Order"));
    }

    #[test]
    fn golden_bytes() {
        let c = AvroCodec::new(r#"{"type":"record","name":"R","fields":[{"name":"id","type":"long"},{"name":"s","type":"string"}]}"#).unwrap();
        // zigzag(1) = 2; string "ab" = length zigzag(2) = 4, then the bytes.
        assert_eq!(
            c.encode(&json!({"id":1,"s":"ab"})).unwrap(),
            [2, 4, b'a', b'b']
        );
    }

    #[test]
    fn errors_name_the_field() {
        let base = json!({"order_id":"O","amount":1.0,"status":"NEW","customer":{"id":1,"email":null},"created_at":0});
        let with = |ptr: &str, v: Json| {
            let mut d = base.clone();
            *d.pointer_mut(ptr).unwrap() = v;
            codec().encode(&d).unwrap_err().to_string()
        };
        assert_eq!(
            with("/amount", json!("x")),
            "field /amount: expected a double, found a string"
        );
        assert_eq!(
            with("/status", json!("LOST")),
            "field /status: `LOST` is not one of NEW, PAID"
        );
        assert_eq!(
            with("/customer/id", json!("1")),
            "field /customer/id: expected a long (64-bit integer), found a string"
        );
        assert!(with("/customer/email", json!(5))
            .starts_with("field /customer/email: fits none of the union's types [null, string]"));
        let mut missing = base.clone();
        missing.as_object_mut().unwrap().remove("order_id");
        assert_eq!(
            codec().encode(&missing).unwrap_err().to_string(),
            "field /order_id: required field is missing"
        );
        let mut extra = base.clone();
        extra["discount"] = json!(3);
        assert_eq!(
            codec().encode(&extra).unwrap_err().to_string(),
            "field /discount: is not a field of record shop.Order"
        );
    }

    #[test]
    fn avro_json_union_encoding_is_accepted() {
        let c = AvroCodec::new(r#"["null","string","long"]"#).unwrap();
        assert_eq!(
            c.decode(&c.encode(&json!({"long": 5})).unwrap()).unwrap(),
            json!(5)
        );
        assert_eq!(
            c.decode(&c.encode(&json!("x")).unwrap()).unwrap(),
            json!("x")
        );
        assert_eq!(
            c.decode(&c.encode(&Json::Null).unwrap()).unwrap(),
            Json::Null
        );
    }

    #[test]
    fn invalid_schema_is_reported() {
        assert!(AvroCodec::new(r#"{"type":"record","name":"X"}"#)
            .unwrap_err()
            .to_string()
            .starts_with("schema: invalid Avro schema"));
    }
}
