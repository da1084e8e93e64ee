//! One event: validate, key, metadata headers, and the record for the raw topic or the DLQ.

use super::config::DatasetConfig;
use crate::record::Record;
use crate::serdes::json_schema::JsonSchemaCodec;
use crate::serdes::{SerdeError, Serializer};
use serde_json::Value;

/// A dataset ready to take events.
pub(crate) struct Dataset {
    pub name: String,
    pub config: DatasetConfig,
    pub schema: Option<JsonSchemaCodec>,
    /// For registry formats: the serializer, prepared for the raw topic.
    pub serializer: Option<Serializer>,
}

/// Request-wide metadata.
pub(crate) struct Meta<'a> {
    pub producer_service: &'a str,
    pub ingested_at: String,
    pub traceparent: Option<&'a str>,
}

/// Why an event is invalid, and the pipeline step that found it.
#[derive(Debug, Clone)]
pub(crate) struct Invalid {
    pub step: &'static str,
    /// For the caller and the DLQ: may quote the event's values.
    pub errors: Vec<String>,
    /// For logs: the field and the rule it broke, never a value.
    pub rules: Vec<String>,
}

impl Invalid {
    /// An error whose message quotes no value, so it serves logs as it is.
    fn plain(step: &'static str, errors: Vec<String>) -> Self {
        Self {
            step,
            rules: errors.clone(),
            errors,
        }
    }

    /// The event is not acceptable JSON (a key twice, nested too deep).
    pub(crate) fn parse(message: String) -> Self {
        Self::plain("parse", vec![message])
    }

    fn serde(step: &'static str, e: &SerdeError) -> Self {
        let rule = match e {
            SerdeError::Field { path, .. } => format!("{path}: does not fit the schema"),
            other => format!("{step} failed ({})", serde_kind(other)),
        };
        Self {
            step,
            errors: vec![e.to_string()],
            rules: vec![rule],
        }
    }
}

fn serde_kind(e: &SerdeError) -> &'static str {
    match e {
        SerdeError::Field { .. } => "field",
        SerdeError::Json(_) => "json",
        SerdeError::Utf8 => "utf8",
        SerdeError::Schema(_) => "schema",
        SerdeError::Wire(_) => "wire",
        SerdeError::Registry(_) => "registry",
        SerdeError::Usage(_) => "usage",
    }
}

impl Dataset {
    /// Checks one event (size, required fields, key, schema) and returns its key: a string
    /// field's text, or a number exactly as written in `raw` (`1.50` stays `1.50`).
    pub(crate) fn validate(&self, event: &Value, raw: &str) -> Result<String, Invalid> {
        if let Some(max) = self.config.max_event_bytes {
            if raw.len() > max {
                return Err(Invalid::plain(
                    "size",
                    vec![format!("event is {} bytes, the limit is {max}", raw.len())],
                ));
            }
        }
        if !event.is_object() {
            return Err(Invalid::plain(
                "parse",
                vec!["an event must be a JSON object".into()],
            ));
        }
        let missing: Vec<String> = self
            .config
            .required
            .iter()
            .map(|f| {
                if f.starts_with('/') {
                    f.clone()
                } else {
                    format!("/{f}")
                }
            })
            .filter(|p| event.pointer(p).is_none_or(Value::is_null))
            .map(|p| format!("{p}: required field is missing"))
            .collect();
        if !missing.is_empty() {
            return Err(Invalid::plain("required", missing));
        }
        let key = match event.pointer(&self.config.key) {
            Some(Value::String(s)) => s.clone(),
            Some(v @ Value::Number(_)) => super::body::raw_at(raw, &self.config.key)
                .map_or_else(|| v.to_string(), str::to_owned),
            Some(Value::Null) | None => {
                return Err(Invalid::plain(
                    "key",
                    vec![format!("{}: key field is missing", self.config.key)],
                ))
            }
            Some(_) => {
                return Err(Invalid::plain(
                    "key",
                    vec![format!(
                        "{}: key field must be a string or number",
                        self.config.key
                    )],
                ))
            }
        };
        if let Some(schema) = &self.schema {
            let violations = schema.violations(event);
            if !violations.is_empty() {
                return Err(Invalid {
                    step: "schema",
                    errors: vec![SerdeError::field(
                        &violations[0].path,
                        JsonSchemaCodec::describe(&violations),
                    )
                    .to_string()],
                    rules: violations.iter().map(|v| v.rule()).collect(),
                });
            }
        }
        Ok(key)
    }

    /// The value written to the raw topic: the event's bytes as sent, or for registry formats
    /// the event in the Confluent wire format.
    pub(crate) fn encode(&self, event: &Value, raw: &[u8]) -> Result<Vec<u8>, Invalid> {
        match &self.serializer {
            None => Ok(raw.to_vec()),
            Some(s) => s.serialize_value(&self.config.topic, event).map_err(|e| {
                let step = if matches!(e, SerdeError::Field { .. }) {
                    "schema"
                } else {
                    "serialize"
                };
                Invalid::serde(step, &e)
            }),
        }
    }

    /// The metadata headers every record of this dataset carries.
    pub(crate) fn headers(&self, meta: &Meta<'_>, ingestion_id: &str) -> Vec<(String, String)> {
        let mut h = vec![
            ("dataset".to_owned(), self.name.clone()),
            (
                "schema_version".to_owned(),
                self.config.schema_version.clone(),
            ),
            ("ingestion_id".to_owned(), ingestion_id.to_owned()),
            (
                "producer_service".to_owned(),
                meta.producer_service.to_owned(),
            ),
            ("ingested_at".to_owned(), meta.ingested_at.clone()),
        ];
        if let Some(tp) = meta.traceparent {
            h.push(("traceparent".to_owned(), tp.to_owned()));
        }
        h
    }

    /// The record for the raw topic, keyed.
    pub(crate) fn raw_record(
        &self,
        value: Vec<u8>,
        key: String,
        headers: &[(String, String)],
    ) -> Record {
        with_headers(Record::new(&self.config.topic, value).key(key), headers)
    }

    /// The record for the DLQ: the original bytes, the original headers plus the reason.
    pub(crate) fn dlq_record(
        &self,
        raw: &[u8],
        invalid: &Invalid,
        headers: &[(String, String)],
        at: &str,
    ) -> Record {
        let mut r = with_headers(Record::new(&self.config.dlq_topic, raw.to_vec()), headers);
        r = r
            .header("dlq_reason", invalid.errors.join("; "))
            .header("dlq_step", invalid.step)
            .header("dlq_at", at.to_owned());
        r
    }
}

fn with_headers(mut r: Record, headers: &[(String, String)]) -> Record {
    for (k, v) in headers {
        r = r.header(k.clone(), v.clone());
    }
    r
}
