//! Lines and JSON lines to records. Every error names the line it is about.
//!
//! # Guarantees
//! - [`LineReader`] reads lines as bytes and never holds more than `max_len` bytes of one line
//!   (plus what the underlying reader buffers): a longer line is read through to its end without
//!   being kept and comes back as [`Line::TooLong`], and the lines after it are read as usual.
//! - [`LineParser::parse_bytes`] sends the bytes of a `lines` input as they are, UTF-8 or not
//!   (a key separator is found in the bytes too); only what must be read as text (JSON lines, a
//!   key field) has to be UTF-8, and a line that is not is an [`InputError::NotUtf8`] naming the
//!   line and the byte where it stops being UTF-8.
//! - [`KeySource::check`] refuses key settings that could never work (an empty separator, a key
//!   field that is not a JSON pointer) before any line is read.

use crate::record::{Header, Record};
use bytes::Bytes;
use serde_json::Value;
use std::io::{self, BufRead};

/// How input lines are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// Each line is a value, as is.
    Lines,
    /// Each line must be one JSON document; it is sent as is.
    Jsonl,
}

/// Where each record's key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// No key: records are spread over partitions.
    None,
    /// The same key for every record.
    Fixed(Bytes),
    /// A JSON pointer into each JSON line (e.g. `/order_id`); strings and numbers are used as
    /// text.
    Field(String),
    /// `key<SEP>value` lines: the text before the first separator is the key.
    Separator(String),
}

/// A line that cannot become a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// Not valid JSON.
    #[error("line {line}: invalid JSON: {message}")]
    Json {
        /// 1-based line number.
        line: usize,
        /// The parser's message, with the column.
        message: String,
    },
    /// The key field is absent.
    #[error("line {line}: key field {pointer} is missing")]
    MissingKey {
        /// 1-based line number.
        line: usize,
        /// The JSON pointer.
        pointer: String,
    },
    /// The key field is not a string or number.
    #[error("line {line}: key field {pointer} is {found}, expected a string or number")]
    BadKey {
        /// 1-based line number.
        line: usize,
        /// The JSON pointer.
        pointer: String,
        /// What was found.
        found: &'static str,
    },
    /// A `key<SEP>value` line without the separator.
    #[error("line {line}: no key separator {separator:?} in the line")]
    NoSeparator {
        /// 1-based line number.
        line: usize,
        /// The separator.
        separator: String,
    },
    /// A line that must be read as text (JSON, a key field) is not UTF-8.
    #[error("line {line}: not valid UTF-8 (from byte {valid_up_to} of the line)")]
    NotUtf8 {
        /// 1-based line number.
        line: usize,
        /// How many bytes of the line are valid UTF-8 (0-based offset of the first bad byte).
        valid_up_to: usize,
    },
    /// A line longer than the largest message that can be sent.
    #[error("line {line}: {len} bytes, longer than the largest message that can be sent ({max} bytes, producer message.max.bytes)")]
    TooLong {
        /// 1-based line number.
        line: usize,
        /// The line's length in bytes (without its end of line).
        len: u64,
        /// The limit.
        max: usize,
    },
}

/// Key settings that can never work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeySourceError {
    /// `KeySource::Separator("")`.
    #[error(
        "the key separator is empty; give the text between key and value, e.g. `\\t` for a tab"
    )]
    EmptySeparator,
    /// A key field that does not start with `/`.
    #[error(
        "the key field `{0}` is not a JSON pointer: a pointer starts with `/`, e.g. /order_id"
    )]
    NotAPointer(String),
}

impl KeySource {
    /// Refuses settings that could never produce a key.
    pub fn check(&self) -> Result<(), KeySourceError> {
        match self {
            Self::Separator(sep) if sep.is_empty() => Err(KeySourceError::EmptySeparator),
            Self::Field(pointer) if !pointer.starts_with('/') => {
                Err(KeySourceError::NotAPointer(pointer.clone()))
            }
            _ => Ok(()),
        }
    }
}

/// One line read by [`LineReader`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// The line's bytes, without the `\n` that ended it.
    Bytes(Vec<u8>),
    /// The line was longer than the limit; it was read to its end and dropped.
    TooLong {
        /// Its length in bytes, without the `\n`.
        len: u64,
    },
}

/// Reads `\n`-terminated lines as bytes, each line capped at `max_len` bytes (see the module
/// guarantees).
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    max_len: usize,
}

impl<R: BufRead> LineReader<R> {
    /// Lines of `inner`, each at most `max_len` bytes.
    pub fn new(inner: R, max_len: usize) -> Self {
        Self { inner, max_len }
    }

    /// The next line, or `None` at the end of the input.
    pub fn next_line(&mut self) -> io::Result<Option<Line>> {
        let mut kept = Vec::new();
        let mut len = 0u64;
        let mut read_any = false;
        loop {
            let chunk = match self.inner.fill_buf() {
                Ok(chunk) => chunk,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                if !read_any {
                    return Ok(None);
                }
                break;
            }
            read_any = true;
            let (take, ended) = match chunk.iter().position(|b| *b == b'\n') {
                Some(i) => (i, true),
                None => (chunk.len(), false),
            };
            len += take as u64;
            if len <= self.max_len as u64 {
                kept.extend_from_slice(&chunk[..take]);
            } else if !kept.is_empty() {
                kept = Vec::new();
            }
            self.inner.consume(take + usize::from(ended));
            if ended {
                break;
            }
        }
        Ok(Some(if len > self.max_len as u64 {
            Line::TooLong { len }
        } else {
            Line::Bytes(kept)
        }))
    }
}

impl<R: BufRead> Iterator for LineReader<R> {
    type Item = io::Result<Line>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_line().transpose()
    }
}

impl InputError {
    /// Bad input never gets better by retrying.
    pub fn is_retriable(&self) -> bool {
        false
    }

    /// The line the error is about.
    pub fn line(&self) -> usize {
        match self {
            Self::Json { line, .. }
            | Self::MissingKey { line, .. }
            | Self::BadKey { line, .. }
            | Self::NoSeparator { line, .. }
            | Self::NotUtf8 { line, .. }
            | Self::TooLong { line, .. } => *line,
        }
    }
}

/// Parses `name=value` into a header.
pub fn parse_header(s: &str) -> Result<Header, String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok(Header::new(
            k.to_owned(),
            Bytes::copy_from_slice(v.as_bytes()),
        )),
        _ => Err(format!("`{s}`: expected name=value")),
    }
}

/// Turns input lines into records for one topic.
#[derive(Debug, Clone)]
pub struct LineParser {
    /// Destination topic.
    pub topic: String,
    /// Line format.
    pub format: InputFormat,
    /// Key source.
    pub key: KeySource,
    /// Headers added to every record.
    pub headers: Vec<Header>,
    /// Explicit partition for every record.
    pub partition: Option<i32>,
    /// Allow objects and lists as `KeySource::Field` keys (their compact JSON is the key), for
    /// key formats that take structured keys.
    pub structured_keys: bool,
}

impl LineParser {
    /// A parser for plain lines with no key.
    pub fn new(topic: impl Into<String>, format: InputFormat) -> Self {
        Self {
            topic: topic.into(),
            format,
            key: KeySource::None,
            headers: Vec::new(),
            partition: None,
            structured_keys: false,
        }
    }

    /// Parses line `line_no` (1-based) given as bytes. UTF-8 lines are parsed as
    /// [`LineParser::parse`] does; other lines are sent as they are when nothing has to read
    /// them as text (the `lines` format without a key field), and are an
    /// [`InputError::NotUtf8`] otherwise.
    pub fn parse_bytes(&self, line_no: usize, line: &[u8]) -> Result<Option<Record>, InputError> {
        let error = match std::str::from_utf8(line) {
            Ok(text) => return self.parse(line_no, text),
            Err(e) => e,
        };
        let not_utf8 = InputError::NotUtf8 {
            line: line_no,
            valid_up_to: error.valid_up_to(),
        };
        if self.format == InputFormat::Jsonl {
            return Err(not_utf8);
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let (key, value) = match &self.key {
            KeySource::None => (None, line),
            KeySource::Fixed(k) => (Some(k.clone()), line),
            KeySource::Field(_) => return Err(not_utf8),
            KeySource::Separator(sep) => {
                let sep = sep.as_bytes();
                let at = if sep.is_empty() {
                    Some(0)
                } else {
                    line.windows(sep.len()).position(|w| w == sep)
                };
                match at {
                    Some(i) => (
                        Some(Bytes::copy_from_slice(&line[..i])),
                        &line[i + sep.len()..],
                    ),
                    None => {
                        return Err(InputError::NoSeparator {
                            line: line_no,
                            separator: String::from_utf8_lossy(sep).into_owned(),
                        })
                    }
                }
            }
        };
        Ok(Some(Record {
            topic: self.topic.clone(),
            key,
            value: Some(Bytes::copy_from_slice(value)),
            headers: self.headers.clone(),
            partition: self.partition,
            timestamp: None,
        }))
    }

    /// Parses line `line_no` (1-based). Blank lines give `None`.
    pub fn parse(&self, line_no: usize, line: &str) -> Result<Option<Record>, InputError> {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            return Ok(None);
        }
        let (key, value): (Option<Bytes>, &str) = match &self.key {
            KeySource::None => (None, line),
            KeySource::Fixed(k) => (Some(k.clone()), line),
            KeySource::Separator(sep) => match line.split_once(sep.as_str()) {
                Some((k, v)) => (Some(Bytes::copy_from_slice(k.as_bytes())), v),
                None => {
                    return Err(InputError::NoSeparator {
                        line: line_no,
                        separator: sep.clone(),
                    })
                }
            },
            KeySource::Field(_) => (None, line),
        };
        let key = match (self.format, &self.key) {
            (InputFormat::Jsonl, KeySource::Field(pointer))
            | (InputFormat::Lines, KeySource::Field(pointer)) => {
                let doc: Value = json(line_no, value)?;
                Some(key_from(&doc, pointer, line_no, self.structured_keys)?)
            }
            (InputFormat::Jsonl, _) => {
                json::<serde::de::IgnoredAny>(line_no, value)?;
                key
            }
            (InputFormat::Lines, _) => key,
        };
        Ok(Some(Record {
            topic: self.topic.clone(),
            key,
            value: Some(Bytes::copy_from_slice(value.as_bytes())),
            headers: self.headers.clone(),
            partition: self.partition,
            timestamp: None,
        }))
    }
}

fn json<T: serde::de::DeserializeOwned>(line: usize, text: &str) -> Result<T, InputError> {
    serde_json::from_str(text).map_err(|e| InputError::Json {
        line,
        message: format!("{} at column {}", strip_position(&e), e.column()),
    })
}

fn strip_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.find(" at line ") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

fn key_from(
    doc: &Value,
    pointer: &str,
    line: usize,
    structured: bool,
) -> Result<Bytes, InputError> {
    let missing = || InputError::MissingKey {
        line,
        pointer: pointer.to_owned(),
    };
    let bad = |found| InputError::BadKey {
        line,
        pointer: pointer.to_owned(),
        found,
    };
    match doc.pointer(pointer).ok_or_else(missing)? {
        Value::String(s) => Ok(Bytes::copy_from_slice(s.as_bytes())),
        Value::Number(n) => Ok(Bytes::from(n.to_string())),
        Value::Null => Err(missing()),
        v @ (Value::Array(_) | Value::Object(_)) if structured => Ok(Bytes::from(v.to_string())),
        Value::Bool(_) => Err(bad("a boolean")),
        Value::Array(_) => Err(bad("a list")),
        Value::Object(_) => Err(bad("an object")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parser(format: InputFormat, key: KeySource) -> LineParser {
        LineParser {
            key,
            ..LineParser::new("t", format)
        }
    }

    #[test]
    fn jsonl_with_key_field() {
        let p = parser(InputFormat::Jsonl, KeySource::Field("/order/id".into()));
        let r = p
            .parse(1, r#"{"order":{"id":"ORD-1"},"amount":3}"#)
            .unwrap()
            .unwrap();
        assert_eq!(r.key.as_deref(), Some(&b"ORD-1"[..]));
        assert_eq!(
            r.value.as_deref(),
            Some(&br#"{"order":{"id":"ORD-1"},"amount":3}"#[..])
        );
        let n = p.parse(2, r#"{"order":{"id":42}}"#).unwrap().unwrap();
        assert_eq!(n.key.as_deref(), Some(&b"42"[..]));
    }

    #[test]
    fn errors_name_the_line() {
        let p = parser(InputFormat::Jsonl, KeySource::Field("/id".into()));
        assert_eq!(
            p.parse(7, r#"{"x":1}"#).unwrap_err(),
            InputError::MissingKey {
                line: 7,
                pointer: "/id".into()
            }
        );
        assert_eq!(p.parse(8, r#"{"id":null}"#).unwrap_err().line(), 8);
        let e = p.parse(9, r#"{"id":[1]}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 9: key field /id is a list, expected a string or number"
        );
        let e = p.parse(10, r#"{"id": "a",}"#).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("line 10: invalid JSON: trailing comma at column 12"),
            "{e}"
        );
        let plain = parser(InputFormat::Jsonl, KeySource::None);
        assert_eq!(plain.parse(3, "not json").unwrap_err().line(), 3);
    }

    #[test]
    fn lines_with_separator_and_blank_lines() {
        let p = parser(InputFormat::Lines, KeySource::Separator("\t".into()));
        let r = p.parse(1, "k1\tsome value\r").unwrap().unwrap();
        assert_eq!(r.key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(r.value.as_deref(), Some(&b"some value"[..]));
        assert_eq!(p.parse(2, "   ").unwrap(), None);
        assert_eq!(
            p.parse(3, "nokey").unwrap_err(),
            InputError::NoSeparator {
                line: 3,
                separator: "\t".into()
            }
        );
    }

    #[test]
    fn headers_and_partition_are_applied() {
        let mut p = parser(
            InputFormat::Lines,
            KeySource::Fixed(Bytes::from_static(b"k")),
        );
        p.headers = vec![parse_header("a=1").unwrap(), parse_header("b=x=y").unwrap()];
        p.partition = Some(2);
        let r = p.parse(1, "v").unwrap().unwrap();
        assert_eq!(r.headers[1].value.as_deref(), Some(&b"x=y"[..]));
        assert_eq!(r.partition, Some(2));
        assert!(parse_header("novalue").is_err());
        assert!(parse_header("=v").is_err());
    }

    #[test]
    fn bytes_that_are_not_utf8_are_sent_as_they_are_unless_read_as_text() {
        let raw: &[u8] = b"caf\xe9 \xff\x00bin\r";
        let plain = parser(InputFormat::Lines, KeySource::None);
        let r = plain.parse_bytes(1, raw).unwrap().unwrap();
        assert_eq!(r.value.as_deref(), Some(&b"caf\xe9 \xff\x00bin"[..]));
        let fixed = parser(
            InputFormat::Lines,
            KeySource::Fixed(Bytes::from_static(b"k")),
        );
        assert_eq!(
            fixed.parse_bytes(1, raw).unwrap().unwrap().value.as_deref(),
            Some(&b"caf\xe9 \xff\x00bin"[..])
        );
        let sep = parser(InputFormat::Lines, KeySource::Separator("\t".into()));
        let r = sep.parse_bytes(2, b"k\xfe\tv\xff").unwrap().unwrap();
        assert_eq!(r.key.as_deref(), Some(&b"k\xfe"[..]));
        assert_eq!(r.value.as_deref(), Some(&b"v\xff"[..]));
        assert_eq!(
            sep.parse_bytes(3, b"\xff").unwrap_err(),
            InputError::NoSeparator {
                line: 3,
                separator: "\t".into()
            }
        );
        let jsonl = parser(InputFormat::Jsonl, KeySource::None);
        let e = jsonl.parse_bytes(4, b"{\"a\":\"\xff\"}").unwrap_err();
        assert_eq!(
            e,
            InputError::NotUtf8 {
                line: 4,
                valid_up_to: 6
            }
        );
        assert_eq!(
            e.to_string(),
            "line 4: not valid UTF-8 (from byte 6 of the line)"
        );
        let field = parser(InputFormat::Lines, KeySource::Field("/id".into()));
        assert_eq!(field.parse_bytes(5, b"\xff").unwrap_err().line(), 5);
        // UTF-8 lines go the text way: blank lines are skipped, JSON is checked.
        assert_eq!(plain.parse_bytes(6, " \r".as_bytes()).unwrap(), None);
        assert!(jsonl.parse_bytes(7, b"{").is_err());
    }

    #[test]
    fn key_sources_that_cannot_work_are_refused() {
        assert_eq!(
            KeySource::Separator(String::new()).check(),
            Err(KeySourceError::EmptySeparator)
        );
        let e = KeySource::Field("order_id".into()).check().unwrap_err();
        assert_eq!(
            e.to_string(),
            "the key field `order_id` is not a JSON pointer: a pointer starts with `/`, e.g. /order_id"
        );
        assert!(KeySource::Field(String::new()).check().is_err());
        assert!(KeySource::Field("/order_id".into()).check().is_ok());
        assert!(KeySource::Separator("\t".into()).check().is_ok());
        assert!(KeySource::None.check().is_ok());
    }

    /// `len` bytes of `x` without a newline, then `rest`, produced as read (never in memory).
    struct Generated {
        left: u64,
        rest: io::Cursor<Vec<u8>>,
    }

    impl io::Read for Generated {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.left == 0 {
                return self.rest.read(buf);
            }
            let n = buf.len().min(self.left as usize);
            buf[..n].fill(b'x');
            self.left -= n as u64;
            Ok(n)
        }
    }

    #[test]
    fn a_line_over_the_limit_is_dropped_while_read_and_the_rest_is_read() {
        let input = Generated {
            left: 200_000_000,
            rest: io::Cursor::new(b"\nnext\n\nlast".to_vec()),
        };
        let mut first = io::Cursor::new(b"short\n".to_vec());
        let mut reader =
            LineReader::new(io::BufReader::new(io::Read::chain(&mut first, input)), 1000);
        assert_eq!(
            reader.next_line().unwrap(),
            Some(Line::Bytes(b"short".to_vec()))
        );
        assert_eq!(
            reader.next_line().unwrap(),
            Some(Line::TooLong { len: 200_000_000 })
        );
        let rest: Vec<Line> = reader.map(Result::unwrap).collect();
        assert_eq!(
            rest,
            [
                Line::Bytes(b"next".to_vec()),
                Line::Bytes(Vec::new()),
                Line::Bytes(b"last".to_vec())
            ]
        );
        let mut exact = LineReader::new(&b"12345\n123456\n"[..], 5);
        assert_eq!(
            exact.next_line().unwrap(),
            Some(Line::Bytes(b"12345".to_vec()))
        );
        assert_eq!(exact.next_line().unwrap(), Some(Line::TooLong { len: 6 }));
        assert_eq!(exact.next_line().unwrap(), None);
    }
}
