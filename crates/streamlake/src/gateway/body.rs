//! A request body, from bytes on the wire to events: content type, content encoding, size and
//! time limits, splitting into events, and strict JSON.
//!
//! # Guarantees
//! - Only `application/json`, `application/x-ndjson` and `application/jsonl` are taken, matched
//!   exactly (`application/jsonfoo` is not JSON), with no `charset` or `charset=utf-8`; anything
//!   else is 415. So is a `Content-Encoding` other than `identity`, `gzip` or `zstd`.
//! - The body limit holds for the decompressed body too: a small compressed body that inflates
//!   past it is refused with 413 while it is being decompressed, never held whole.
//! - A body cut short, a malformed chunked body or corrupt compressed data is 400; a body not
//!   sent within the body timeout is 408.
//! - An event with the same object key twice (at any depth) is refused, naming the key: the
//!   bytes forwarded and the value validated can never differ.

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use futures::StreamExt;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::io::Read;
use std::time::Duration;

/// A request that cannot be read: the status and a message safe to send back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal(pub StatusCode, pub String);

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self(status, message.into())
    }
}

/// How the events of a body are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Layout {
    /// One event, or an array of events.
    Json,
    /// One event per line.
    Lines,
}

/// The body's layout from `Content-Type`: the media type matched exactly (case-insensitive),
/// a charset other than UTF-8 refused.
pub(crate) fn layout(headers: &HeaderMap) -> Result<Layout, Refusal> {
    let unsupported = |what: &str| {
        Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("{what} is not accepted: send application/json (an event or an array) or application/x-ndjson, in UTF-8"),
        )
    };
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(unsupported("a request without a content type"));
    };
    let Ok(text) = value.to_str() else {
        return Err(unsupported("this content type"));
    };
    let mut parts = text.split(';');
    let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let layout = match media.as_str() {
        "application/json" => Layout::Json,
        "application/x-ndjson" | "application/jsonl" => Layout::Lines,
        _ => {
            return Err(unsupported(&format!(
                "content type `{}`",
                printable(&media)
            )))
        }
    };
    for param in parts {
        let (name, value) = param.split_once('=').unwrap_or((param, ""));
        if name.trim().eq_ignore_ascii_case("charset") {
            let charset = value.trim().trim_matches('"');
            if !(charset.eq_ignore_ascii_case("utf-8") || charset.eq_ignore_ascii_case("utf8")) {
                return Err(unsupported(&format!("charset `{}`", printable(charset))));
            }
        }
    }
    Ok(layout)
}

/// How the body is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Identity,
    Gzip,
    Zstd,
}

/// The body's `Content-Encoding`: identity, gzip or zstd; anything else (or several) is 415.
pub(crate) fn encoding(headers: &HeaderMap) -> Result<Encoding, Refusal> {
    let mut values = headers.get_all(header::CONTENT_ENCODING).iter();
    let Some(first) = values.next() else {
        return Ok(Encoding::Identity);
    };
    let refuse = |what: &str| {
        Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Encoding {what} is not supported: send gzip, zstd or identity"),
        )
    };
    if values.next().is_some() {
        return Err(refuse("with several codings"));
    }
    let text = first.to_str().unwrap_or("").trim().to_ascii_lowercase();
    match text.as_str() {
        "" | "identity" => Ok(Encoding::Identity),
        "gzip" | "x-gzip" => Ok(Encoding::Gzip),
        "zstd" => Ok(Encoding::Zstd),
        other if other.contains(',') => Err(refuse("with several codings")),
        other => Err(refuse(&format!("`{}`", printable(other)))),
    }
}

/// Reads the whole body: at most `max_bytes` on the wire, within `timeout`, then decompressed
/// to at most `max_bytes`.
pub(crate) async fn read(
    body: Body,
    encoding: Encoding,
    max_bytes: usize,
    timeout: Duration,
) -> Result<Vec<u8>, Refusal> {
    let too_large = || {
        Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than {max_bytes} bytes"),
        )
    };
    let collect = async {
        let mut stream = body.into_data_stream();
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| {
                Refusal::new(
                    StatusCode::BAD_REQUEST,
                    "the body could not be read: it was cut short or its chunked encoding is malformed",
                )
            })?;
            if bytes.len() + chunk.len() > max_bytes {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    };
    let wire = tokio::time::timeout(timeout, collect).await.map_err(|_| {
        Refusal::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the body was not received within {} ms",
                timeout.as_millis()
            ),
        )
    })??;
    match encoding {
        Encoding::Identity => Ok(wire),
        Encoding::Gzip => inflate(
            flate2::read::MultiGzDecoder::new(&wire[..]),
            max_bytes,
            "gzip",
        ),
        Encoding::Zstd => {
            let decoder =
                zstd::stream::read::Decoder::new(&wire[..]).map_err(|_| corrupt("zstd"))?;
            inflate(decoder, max_bytes, "zstd")
        }
    }
}

fn corrupt(codec: &str) -> Refusal {
    Refusal::new(
        StatusCode::BAD_REQUEST,
        format!("the body is not valid {codec} data"),
    )
}

/// Decompresses, stopping as soon as the output would pass `max_bytes`.
fn inflate(reader: impl Read, max_bytes: usize, codec: &str) -> Result<Vec<u8>, Refusal> {
    let mut out = Vec::new();
    let read = reader
        .take(max_bytes as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| corrupt(codec))?;
    if read > max_bytes {
        return Err(Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the decompressed body is larger than {max_bytes} bytes"),
        ));
    }
    Ok(out)
}

/// `line`/`column` of a JSON error as a byte offset into `text`.
fn byte_offset(text: &str, line: usize, column: usize) -> usize {
    text.split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum::<usize>()
        + column.saturating_sub(1)
}

fn malformed(e: &serde_json::Error, base: usize, text: &str) -> Refusal {
    Refusal::new(
        StatusCode::BAD_REQUEST,
        format!(
            "malformed JSON at byte {}: {e}",
            base + byte_offset(text, e.line(), e.column())
        ),
    )
}

/// The events of a UTF-8 body, each as its original JSON text, at most `max_events` of them.
pub(crate) fn split(layout: Layout, body: &str, max_events: usize) -> Result<Vec<&str>, Refusal> {
    let too_many = || {
        Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("more than {max_events} events in one request: send them in several"),
        )
    };
    let events: Vec<&str> = match layout {
        Layout::Json => {
            let raw: &RawValue = serde_json::from_str(body).map_err(|e| malformed(&e, 0, body))?;
            if raw.get().trim_start().starts_with('[') {
                let items: Vec<&RawValue> =
                    serde_json::from_str(raw.get()).map_err(|e| malformed(&e, 0, body))?;
                if items.len() > max_events {
                    return Err(too_many());
                }
                items.into_iter().map(RawValue::get).collect()
            } else {
                vec![raw.get()]
            }
        }
        Layout::Lines => {
            let mut out = Vec::new();
            let mut base = 0;
            for line in body.split_inclusive('\n') {
                if !line.trim().is_empty() {
                    let _: &RawValue =
                        serde_json::from_str(line).map_err(|e| malformed(&e, base, line))?;
                    if out.len() == max_events {
                        return Err(too_many());
                    }
                    out.push(line.trim());
                }
                base += line.len();
            }
            out
        }
    };
    if events.is_empty() {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "no events in the request",
        ));
    }
    Ok(events)
}

/// Parses one event, refusing an object with the same key twice (the error names the key's
/// pointer). Syntax was checked when the body was split.
pub(crate) fn parse_event(raw: &str) -> Result<Value, String> {
    let mut de = serde_json::Deserializer::from_str(raw);
    Strict {
        path: String::new(),
    }
    .deserialize(&mut de)
    .map_err(|e| {
        let m = e.to_string();
        // serde_json appends " at line L column C"; keep only the message.
        m.split(" at line ").next().unwrap_or(&m).to_owned()
    })
}

/// A `Value` seed that knows its JSON pointer and refuses duplicate object keys.
struct Strict {
    path: String,
}

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(Strict {
            path: format!("{}/{}", self.path, items.len()),
        })? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = format!("{}/{}", self.path, escape_pointer(&key));
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "{path}: the key appears twice in one object"
                )));
            }
            let value = map.next_value_seed(Strict { path })?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// The JSON text at `pointer` in `raw` as the caller wrote it (a number keeps its digits:
/// `1.50` stays `1.50`, a 30-digit integer keeps every digit).
pub(crate) fn raw_at<'a>(raw: &'a str, pointer: &str) -> Option<&'a str> {
    let mut here: &'a str = raw.trim();
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        here = if here.starts_with('{') {
            let fields: HashMap<String, &'a RawValue> = serde_json::from_str(here).ok()?;
            fields.get(&token)?.get()
        } else if here.starts_with('[') {
            let items: Vec<&'a RawValue> = serde_json::from_str(here).ok()?;
            items.get(token.parse::<usize>().ok()?)?.get()
        } else {
            return None;
        };
    }
    Some(here.trim())
}

/// `text` with control characters escaped, for messages that quote what a caller sent.
fn printable(text: &str) -> String {
    text.chars()
        .flat_map(char::escape_debug)
        .take(100)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with(name: header::HeaderName, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn content_types_are_matched_exactly_and_other_charsets_refused() {
        let ct = |v: &str| layout(&with(header::CONTENT_TYPE, v));
        assert_eq!(ct("application/json").unwrap(), Layout::Json);
        assert_eq!(ct("Application/JSON; charset=UTF-8").unwrap(), Layout::Json);
        assert_eq!(
            ct("application/json;charset=\"utf8\"").unwrap(),
            Layout::Json
        );
        assert_eq!(ct("application/x-ndjson").unwrap(), Layout::Lines);
        assert_eq!(ct("application/jsonl").unwrap(), Layout::Lines);
        for bad in [
            "application/jsonfoo",
            "application/json-seq",
            "application/x-ndjsonx",
            "text/plain",
            "application/json; charset=latin1",
            "application/json; charset=utf-16",
        ] {
            assert_eq!(
                ct(bad).unwrap_err().0,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{bad}"
            );
        }
        assert_eq!(
            layout(&HeaderMap::new()).unwrap_err().0,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
    }

    #[test]
    fn encodings_other_than_gzip_and_zstd_are_refused() {
        let ce = |v: &str| encoding(&with(header::CONTENT_ENCODING, v));
        assert_eq!(encoding(&HeaderMap::new()).unwrap(), Encoding::Identity);
        assert_eq!(ce("identity").unwrap(), Encoding::Identity);
        assert_eq!(ce("GZIP").unwrap(), Encoding::Gzip);
        assert_eq!(ce("zstd").unwrap(), Encoding::Zstd);
        for bad in ["br", "deflate", "gzip, zstd", "compress"] {
            assert_eq!(
                ce(bad).unwrap_err().0,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{bad}"
            );
        }
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[tokio::test]
    async fn compressed_bodies_are_bounded_after_decompression() {
        let read = |b: Vec<u8>, enc, max| read(Body::from(b), enc, max, Duration::from_secs(5));
        let text = b"{\"a\":1}".to_vec();
        assert_eq!(read(gzip(&text), Encoding::Gzip, 100).await.unwrap(), text);
        let z = zstd::encode_all(&text[..], 3).unwrap();
        assert_eq!(read(z, Encoding::Zstd, 100).await.unwrap(), text);
        // 10 MB of zeros compress to about 10 KB: refused at the limit, not inflated whole.
        let bomb = gzip(&vec![b' '; 10_000_000]);
        assert!(bomb.len() < 100_000);
        let e = read(bomb, Encoding::Gzip, 1 << 20).await.unwrap_err();
        assert_eq!(e.0, StatusCode::PAYLOAD_TOO_LARGE, "{}", e.1);
        let e = read(b"not gzip at all".to_vec(), Encoding::Gzip, 100)
            .await
            .unwrap_err();
        assert_eq!(e.0, StatusCode::BAD_REQUEST);
        let e = read(b"not zstd".to_vec(), Encoding::Zstd, 100)
            .await
            .unwrap_err();
        assert_eq!(e.0, StatusCode::BAD_REQUEST);
        let e = read(vec![b'x'; 101], Encoding::Identity, 100)
            .await
            .unwrap_err();
        assert_eq!(e.0, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn splits_bodies_and_names_byte_positions() {
        assert_eq!(
            split(Layout::Json, r#"{"a":1}"#, 10).unwrap(),
            [r#"{"a":1}"#]
        );
        assert_eq!(
            split(Layout::Json, r#"[{"a":1}, {"b":2}]"#, 10).unwrap(),
            [r#"{"a":1}"#, r#"{"b":2}"#]
        );
        assert_eq!(
            split(Layout::Lines, "{\"a\":1}\r\n\n{\"b\":2}\n", 10).unwrap(),
            ["{\"a\":1}", "{\"b\":2}"]
        );
        let e = split(Layout::Lines, "{\"a\":1}\n{\"b\":}\n", 10).unwrap_err();
        assert_eq!(e.0, StatusCode::BAD_REQUEST);
        assert!(e.1.contains("at byte 13"), "{}", e.1);
        let e = split(Layout::Json, "{\"a\": tru}", 10).unwrap_err();
        assert!(e.1.contains("at byte 9"), "{}", e.1);
        assert_eq!(
            split(Layout::Json, "[]", 10).unwrap_err().0,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            split(Layout::Json, "[1,2,3]", 2).unwrap_err().0,
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            split(Layout::Lines, "1\n2\n3\n", 2).unwrap_err().0,
            StatusCode::PAYLOAD_TOO_LARGE
        );
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        assert_eq!(
            parse_event(r#"{"a":{"b":[1,{"c":2}]}}"#).unwrap(),
            serde_json::json!({"a":{"b":[1,{"c":2}]}})
        );
        let e = parse_event(r#"{"amount":-5,"amount":5}"#).unwrap_err();
        assert!(e.contains("/amount: the key appears twice"), "{e}");
        let e = parse_event(r#"{"a":[{"x/y":1,"x/y":2}]}"#).unwrap_err();
        assert!(e.contains("/a/0/x~1y"), "{e}");
        // Deep nesting is an error, not a stack overflow.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse_event(&deep).is_err());
    }

    #[test]
    fn raw_text_keeps_numbers_as_written() {
        let raw = r#"{"id": 1.50, "big": 123456789012345678901234567890, "n": {"k": [7, "x"]}}"#;
        assert_eq!(raw_at(raw, "/id"), Some("1.50"));
        assert_eq!(raw_at(raw, "/big"), Some("123456789012345678901234567890"));
        assert_eq!(raw_at(raw, "/n/k/0"), Some("7"));
        assert_eq!(raw_at(raw, "/n/k/1"), Some("\"x\""));
        assert_eq!(raw_at(raw, "/missing"), None);
        assert_eq!(raw_at(raw, "/id/x"), None);
    }

    /// Cases per property: `STREAMLAKE_PROPERTY_CASES` (bench/properties.sh runs many more).
    fn cases() -> usize {
        std::env::var("STREAMLAKE_PROPERTY_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(3000)
    }

    /// A mutation of a valid body: cut, bytes flipped, punctuation inserted, nesting added.
    fn mutate(rng: &mut rand_chacha::ChaCha8Rng, base: &str) -> Vec<u8> {
        use rand::Rng;
        let mut b = base.as_bytes().to_vec();
        for _ in 0..rng.random_range(1..4) {
            match rng.random_range(0..5) {
                0 if !b.is_empty() => b.truncate(rng.random_range(0..b.len())),
                1 if !b.is_empty() => {
                    let i = rng.random_range(0..b.len());
                    b[i] = rng.random();
                }
                2 => {
                    let i = rng.random_range(0..=b.len());
                    let c = [b'"', b'{', b'}', b'[', b']', b',', b':', b'\\', b'\n', 0xff]
                        [rng.random_range(0..10)];
                    b.insert(i, c);
                }
                3 => {
                    let depth = rng.random_range(1..300);
                    let mut nested = "[".repeat(depth).into_bytes();
                    nested.extend_from_slice(&b);
                    nested.extend(std::iter::repeat_n(b']', depth));
                    b = nested;
                }
                _ => b.extend_from_slice(b",{\"order_id\":\"x\",\"order_id\":1e999}"),
            }
        }
        b
    }

    #[test]
    fn property_hostile_bodies_never_panic_and_what_passes_is_json() {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x5eed);
        let bases = [
            r#"{"order_id":"A","amount":1.5,"items":[{"sku":"x"}]}"#,
            r#"[{"order_id":"A"},{"order_id":2,"n":{"k":[1,2,{"z":null}]}}]"#,
            "{\"order_id\":\"A\"}\n{\"order_id\":\"B\"}\n",
        ];
        for case in 0..cases() {
            let bytes = mutate(&mut rng, bases[case % bases.len()]);
            let Ok(text) = std::str::from_utf8(&bytes) else {
                continue;
            };
            for layout in [Layout::Json, Layout::Lines] {
                let Ok(events) = split(layout, text, 1000) else {
                    continue;
                };
                assert!(!events.is_empty() && events.len() <= 1000);
                for e in events {
                    // What split passes may still be refused per event (a key twice, nested
                    // deeper than the parser's limit): then as an invalid event, never a crash,
                    // and never accepted where plain JSON parsing fails.
                    let strict = parse_event(e);
                    let loose = serde_json::from_str::<Value>(e);
                    match (strict, loose) {
                        (Ok(v), Ok(w)) => assert_eq!(v, w, "strict and plain parses differ: {e:?}"),
                        (Ok(_), Err(_)) => {
                            panic!("strict parse took what plain JSON refuses: {e:?}")
                        }
                        (Err(_), _) => {}
                    }
                    for p in ["/order_id", "/0", "/n/k/2/z", "/", "/~1"] {
                        let _ = raw_at(e, p);
                    }
                }
            }
        }
    }

    #[tokio::test]
    async fn property_hostile_headers_and_compressed_bytes_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0xc0de);
        let valid = gzip(b"{\"a\":1}");
        for _ in 0..cases() / 10 {
            let len = rng.random_range(0..40);
            let header: String = (0..len)
                .map(|_| char::from(rng.random_range(0x20u8..0x7f)))
                .collect();
            if let Ok(v) = HeaderValue::from_str(&header) {
                let mut h = HeaderMap::new();
                h.insert(header::CONTENT_TYPE, v.clone());
                h.insert(header::CONTENT_ENCODING, v);
                let _ = layout(&h);
                let _ = encoding(&h);
            }
            let mut body = valid.clone();
            let i = rng.random_range(0..body.len());
            body[i] = rng.random();
            body.truncate(rng.random_range(0..=body.len()));
            for enc in [Encoding::Gzip, Encoding::Zstd] {
                if let Ok(out) =
                    read(Body::from(body.clone()), enc, 1000, Duration::from_secs(1)).await
                {
                    assert!(out.len() <= 1000);
                }
            }
        }
    }
}
