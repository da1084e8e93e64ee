//! Records to text.

use crate::record::ConsumedRecord;
use base64::Engine as _;
use serde_json::{json, Map, Value};

/// How `consume` prints records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrintFormat {
    /// The value bytes and a newline.
    Value,
    /// One JSON object per record: topic, partition, offset, timestamp, key, value, headers.
    /// Text that is not UTF-8 is base64 and flagged with `key_encoding`/`value_encoding`.
    Json,
}

fn text(bytes: Option<&[u8]>, field: &str, obj: &mut Map<String, Value>) {
    let v = match bytes {
        None => Value::Null,
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => Value::String(s.to_owned()),
            Err(_) => {
                obj.insert(format!("{field}_encoding"), json!("base64"));
                Value::String(base64::engine::general_purpose::STANDARD.encode(b))
            }
        },
    };
    obj.insert(field.to_owned(), v);
}

/// Appends one record, newline-terminated, to `out`.
pub fn format_record(record: &ConsumedRecord, format: PrintFormat, out: &mut Vec<u8>) {
    format_record_with(record, None, None, format, out);
}

/// Like [`format_record`], with the key and the value already decoded (registry formats):
/// printed as JSON text in `value` mode and as JSON values in `json` mode.
pub fn format_record_with(
    record: &ConsumedRecord,
    decoded_key: Option<&Value>,
    decoded: Option<&Value>,
    format: PrintFormat,
    out: &mut Vec<u8>,
) {
    match format {
        PrintFormat::Value => match decoded {
            Some(v) => serde_json::to_writer(&mut *out, v).expect("writing to a Vec cannot fail"),
            None => out.extend_from_slice(record.value.as_deref().unwrap_or_default()),
        },
        PrintFormat::Json => {
            let mut obj = Map::new();
            obj.insert("topic".into(), json!(record.topic));
            obj.insert("partition".into(), json!(record.partition));
            obj.insert("offset".into(), json!(record.offset));
            obj.insert("timestamp".into(), json!(record.timestamp));
            match decoded_key {
                Some(k) => {
                    obj.insert("key".into(), k.clone());
                }
                None => text(record.key.as_deref(), "key", &mut obj),
            }
            match decoded {
                Some(v) => {
                    obj.insert("value".into(), v.clone());
                }
                None => text(record.value.as_deref(), "value", &mut obj),
            }
            let headers: Vec<Value> = record
                .headers
                .iter()
                .map(|h| {
                    let mut o = Map::new();
                    o.insert("key".into(), json!(h.key));
                    text(h.value.as_deref(), "value", &mut o);
                    Value::Object(o)
                })
                .collect();
            obj.insert("headers".into(), Value::Array(headers));
            serde_json::to_writer(&mut *out, &Value::Object(obj))
                .expect("writing to a Vec cannot fail");
        }
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Header;
    use bytes::Bytes;

    #[test]
    fn json_output_has_every_field() {
        let r = ConsumedRecord {
            topic: "t".into(),
            partition: 1,
            offset: 9,
            timestamp: Some(1000),
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(&[0xff, 0x00])),
            headers: vec![
                Header::new("h", Bytes::from_static(b"v")),
                Header {
                    key: "n".into(),
                    value: None,
                },
            ],
        };
        let mut out = Vec::new();
        format_record(&r, PrintFormat::Json, &mut out);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            json!({"topic":"t","partition":1,"offset":9,"timestamp":1000,"key":"k","value":"/wA=","value_encoding":"base64",
                   "headers":[{"key":"h","value":"v"},{"key":"n","value":null}]})
        );
        out.clear();
        format_record(&r, PrintFormat::Value, &mut out);
        assert_eq!(out, [0xff, 0x00, b'\n']);
    }
}
