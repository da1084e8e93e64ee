//! The payload of a spool frame: one [`Record`] plus the time it was spooled.
//!
//! Layout (integers little-endian; `varint` is unsigned LEB128):
//!
//! ```text
//! u64     append time, ms since the Unix epoch
//! u8      flags: 0x01 partition present, 0x02 timestamp present (other bits must be 0)
//! i32     partition            (only with flag 0x01)
//! i64     timestamp            (only with flag 0x02)
//! varint  topic length, then the topic (UTF-8)
//! opt     key
//! opt     value
//! varint  header count, then per header: varint name length, name (UTF-8), opt value
//! ```
//!
//! `opt` is `varint 0` for `None`, or `varint (len + 1)` followed by `len` bytes, so an empty
//! value and a missing one stay distinct.

use crate::record::{Header, Record};
use bytes::Bytes;

const FLAG_PARTITION: u8 = 0x01;
const FLAG_TIMESTAMP: u8 = 0x02;
const KNOWN_FLAGS: u8 = FLAG_PARTITION | FLAG_TIMESTAMP;

/// Offset of the append time in a payload (it is first, so it can be read without decoding).
pub(crate) const APPEND_MS_LEN: usize = 8;

/// A decoded payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decoded {
    /// When the record was spooled, ms since the Unix epoch.
    pub(crate) appended_ms: u64,
    /// The record.
    pub(crate) record: Record,
}

/// Appends the payload for `record` to `out`.
pub(crate) fn encode(record: &Record, appended_ms: u64, out: &mut Vec<u8>) {
    out.reserve(encoded_len_hint(record));
    out.extend_from_slice(&appended_ms.to_le_bytes());
    let mut flags = 0;
    if record.partition.is_some() {
        flags |= FLAG_PARTITION;
    }
    if record.timestamp.is_some() {
        flags |= FLAG_TIMESTAMP;
    }
    out.push(flags);
    if let Some(p) = record.partition {
        out.extend_from_slice(&p.to_le_bytes());
    }
    if let Some(ts) = record.timestamp {
        out.extend_from_slice(&ts.to_le_bytes());
    }
    put_bytes(out, record.topic.as_bytes());
    put_opt(out, record.key.as_deref());
    put_opt(out, record.value.as_deref());
    put_varint(out, record.headers.len() as u64);
    for h in &record.headers {
        put_bytes(out, h.key.as_bytes());
        put_opt(out, h.value.as_deref());
    }
}

/// Decodes a payload. Key, value and header values share the payload's buffer (no copies).
pub(crate) fn decode(payload: &Bytes) -> Result<Decoded, String> {
    let mut d = Decoder {
        buf: payload,
        pos: 0,
    };
    let appended_ms = u64::from_le_bytes(d.array::<8>("append time")?);
    let flags = d.array::<1>("flags")?[0];
    if flags & !KNOWN_FLAGS != 0 {
        return Err(format!("unknown record flags {flags:#04x}"));
    }
    let partition = if flags & FLAG_PARTITION != 0 {
        Some(i32::from_le_bytes(d.array::<4>("partition")?))
    } else {
        None
    };
    let timestamp = if flags & FLAG_TIMESTAMP != 0 {
        Some(i64::from_le_bytes(d.array::<8>("timestamp")?))
    } else {
        None
    };
    let topic = d.string("topic")?;
    let key = d.opt("key")?;
    let value = d.opt("value")?;
    let count = d.varint("header count")?;
    // Every header takes at least two bytes, which bounds the allocation.
    let mut headers = Vec::with_capacity((count as usize).min(d.remaining() / 2));
    for _ in 0..count {
        let key = d.string("header name")?;
        let value = d.opt("header value")?;
        headers.push(Header {
            key: key.into(),
            value,
        });
    }
    if d.remaining() != 0 {
        return Err(format!(
            "{} unexpected bytes after the record",
            d.remaining()
        ));
    }
    Ok(Decoded {
        appended_ms,
        record: Record {
            topic,
            key,
            value,
            headers,
            partition,
            timestamp,
        },
    })
}

/// The append time at the start of a payload, without decoding the rest.
pub(crate) fn peek_appended_ms(payload_start: &[u8]) -> Option<u64> {
    let b: [u8; APPEND_MS_LEN] = payload_start.get(..APPEND_MS_LEN)?.try_into().ok()?;
    Some(u64::from_le_bytes(b))
}

fn encoded_len_hint(record: &Record) -> usize {
    8 + 1 + 4 + 8 + 5 + record.topic.len() + 10 + record.size() + 5 + record.headers.len() * 10
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn put_opt(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => put_varint(out, 0),
        Some(b) => {
            put_varint(out, b.len() as u64 + 1);
            out.extend_from_slice(b);
        }
    }
}

struct Decoder<'a> {
    buf: &'a Bytes,
    pos: usize,
}

impl Decoder<'_> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: u64, what: &str) -> Result<Bytes, String> {
        if n > self.remaining() as u64 {
            return Err(format!(
                "{what} needs {n} bytes, only {} left",
                self.remaining()
            ));
        }
        let n = n as usize;
        let b = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(b)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], String> {
        let b = self.take(N as u64, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(&b);
        Ok(a)
    }

    fn varint(&mut self, what: &str) -> Result<u64, String> {
        let mut v = 0u64;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(format!("{what} is cut off"));
            };
            self.pos += 1;
            let bits = u64::from(b & 0x7f);
            if i == 9 && b > 1 {
                return Err(format!("{what} overflows 64 bits"));
            }
            v |= bits << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(format!("{what} overflows 64 bits"))
    }

    fn string(&mut self, what: &str) -> Result<String, String> {
        let n = self.varint(what)?;
        let b = self.take(n, what)?;
        String::from_utf8(b.to_vec()).map_err(|_| format!("{what} is not UTF-8"))
    }

    fn opt(&mut self, what: &str) -> Result<Option<Bytes>, String> {
        match self.varint(what)? {
            0 => Ok(None),
            n => self.take(n - 1, what).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(r: &Record) -> Decoded {
        let mut buf = Vec::new();
        encode(r, 1_700_000_000_123, &mut buf);
        assert_eq!(peek_appended_ms(&buf), Some(1_700_000_000_123));
        decode(&Bytes::from(buf)).unwrap()
    }

    #[test]
    fn keeps_none_empty_and_header_order_apart() {
        let r = Record {
            topic: "orders.v1".into(),
            key: Some(Bytes::new()),
            value: None,
            headers: vec![
                Header {
                    key: "b".into(),
                    value: None,
                },
                Header {
                    key: "a".into(),
                    value: Some(Bytes::new()),
                },
                Header {
                    key: "b".into(),
                    value: Some(Bytes::from_static(b"\x00\xff")),
                },
            ],
            partition: Some(-1),
            timestamp: Some(i64::MIN),
        };
        let d = round_trip(&r);
        assert_eq!(d.appended_ms, 1_700_000_000_123);
        assert_eq!(d.record, r);

        let bare = Record {
            topic: String::new(),
            key: None,
            value: Some(Bytes::new()),
            headers: Vec::new(),
            partition: None,
            timestamp: None,
        };
        assert_eq!(round_trip(&bare).record, bare);
    }

    #[test]
    fn long_fields_use_multi_byte_lengths() {
        let value = Bytes::from(vec![7u8; 300_000]);
        let r = Record::new("t", value.clone()).key(vec![1u8; 200]);
        let d = round_trip(&r);
        assert_eq!(d.record.value.as_ref(), Some(&value));
        assert_eq!(d.record, r);
    }

    #[test]
    fn rejects_malformed_payloads() {
        let mut buf = Vec::new();
        encode(&Record::new("t", "v").header("h", "x"), 5, &mut buf);
        // Every strict prefix is cut off somewhere.
        for len in 0..buf.len() {
            assert!(
                decode(&Bytes::copy_from_slice(&buf[..len])).is_err(),
                "prefix {len}"
            );
        }
        let mut trailing = buf.clone();
        trailing.push(0);
        let err = decode(&Bytes::from(trailing)).unwrap_err();
        assert!(err.contains("unexpected bytes"), "{err}");
        let mut flags = buf.clone();
        flags[8] = 0x80;
        let err = decode(&Bytes::from(flags)).unwrap_err();
        assert!(err.contains("unknown record flags"), "{err}");
        let mut utf8 = buf;
        utf8[10] = 0xff; // the topic's single byte
        let err = decode(&Bytes::from(utf8)).unwrap_err();
        assert!(err.contains("topic is not UTF-8"), "{err}");
    }
}
