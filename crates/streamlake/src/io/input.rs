//! Lines and JSON lines to records. Every error names the line it is about.

use crate::record::{Header, Record};
use bytes::Bytes;
use serde_json::Value;

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
            | Self::NoSeparator { line, .. } => *line,
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
}
