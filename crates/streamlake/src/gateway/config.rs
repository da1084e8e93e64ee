//! Gateway configuration: where to listen and which datasets exist.

use super::http::HttpConfig;
use super::idempotency::IdempotencyConfig;
use super::limits::LimitsConfig;
use crate::config::Secret;
use crate::serdes::Format;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `gateway.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Address to listen on. Default `127.0.0.1:8080`.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Written to every record's `producer_service` header. Default `streamlake-gateway`.
    #[serde(default = "default_service")]
    pub producer_service: String,
    /// Largest request body in bytes, after decompression; larger requests get 413. Default
    /// 1 MiB.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Connection limit and HTTP timeouts.
    #[serde(default)]
    pub http: HttpConfig,
    /// Requests, bytes and events held at once, and the request deadline.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Bounds of the `Idempotency-Key` store.
    #[serde(default)]
    pub idempotency: IdempotencyConfig,
    /// Whether the log lines of invalid events may quote the event's values (the errors sent
    /// back to the caller and written to the DLQ always do). Default false: logs name the
    /// field and the rule broken, never the value, so card numbers and the like stay out of
    /// logs.
    #[serde(default)]
    pub log_invalid_values: bool,
    /// Kafka settings (the same keys as `streamlake` config files); environment and flags
    /// still apply on top.
    #[serde(default)]
    pub kafka: Option<serde_json::Value>,
    /// Datasets by name (the `{dataset}` in the URL).
    pub datasets: BTreeMap<String, DatasetConfig>,
    /// API keys. When any are configured, every ingestion request needs
    /// `Authorization: Bearer <key>` with a key allowed for the dataset.
    #[serde(default)]
    pub api_keys: Vec<ApiKeyConfig>,
}

/// One API key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// Who holds the key (logged and used as the metrics label; never the key itself).
    pub name: String,
    /// The key itself. Prefer `key_env`, which keeps it out of the file.
    #[serde(default)]
    pub key: Option<Secret>,
    /// Environment variable that holds the key.
    #[serde(default)]
    pub key_env: Option<String>,
    /// Datasets this key may write to. Empty: all of them.
    #[serde(default)]
    pub datasets: Vec<String>,
    /// Sustained requests per second allowed for this key; more get 429. Default: no limit.
    #[serde(default)]
    pub requests_per_second: Option<f64>,
    /// Requests allowed at once above the sustained rate. Default: one second's worth.
    #[serde(default)]
    pub burst: Option<u32>,
}

/// How a dataset's events are checked and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetFormat {
    /// The event's JSON bytes as sent, checked against `schema` (a JSON Schema file) if set.
    #[default]
    Json,
    /// Avro in the Confluent wire format, through the schema registry.
    Avro,
    /// Protobuf in the Confluent wire format, through the schema registry.
    Protobuf,
    /// JSON checked by a JSON Schema in the Confluent wire format, through the schema registry.
    JsonSchema,
}

impl DatasetFormat {
    /// The serializer format.
    pub fn format(self) -> Format {
        match self {
            Self::Json => Format::Json,
            Self::Avro => Format::Avro,
            Self::Protobuf => Format::Protobuf,
            Self::JsonSchema => Format::JsonSchema,
        }
    }
}

/// One dataset.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetConfig {
    /// Raw topic for valid events.
    pub topic: String,
    /// Dead-letter topic for invalid events.
    pub dlq_topic: String,
    /// JSON pointer of the record key (required: every record has a key).
    pub key: String,
    /// How events are written: `json` (default), `avro`, `protobuf` or `json-schema`; the last
    /// three go through the schema registry (`kafka.schema_registry`).
    #[serde(default)]
    pub format: DatasetFormat,
    /// Schema file, relative to the config file: a JSON Schema for `json`; for registry formats
    /// the schema registered under the topic's value subject. Registry formats without a file
    /// use the subject's latest version.
    pub schema: Option<PathBuf>,
    /// Protobuf message to write (default: the first in the file).
    #[serde(default)]
    pub message: Option<String>,
    /// Written to the `schema_version` header. Default `v1`.
    #[serde(default = "default_version")]
    pub schema_version: String,
    /// Fields that must be present (JSON pointers or top-level names), checked before the schema.
    #[serde(default)]
    pub required: Vec<String>,
    /// Largest event in bytes; larger events are invalid. Default: no limit beyond the body's.
    pub max_event_bytes: Option<usize>,
}

fn default_listen() -> String {
    "127.0.0.1:8080".to_owned()
}
fn default_service() -> String {
    "streamlake-gateway".to_owned()
}
fn default_max_body() -> usize {
    1 << 20
}
fn default_version() -> String {
    "v1".to_owned()
}

impl GatewayConfig {
    /// Reads a gateway config; schema paths become relative to the file's folder.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut cfg: Self =
            serde_yaml_ng::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for d in cfg.datasets.values_mut() {
            if let Some(s) = &d.schema {
                if s.is_relative() {
                    d.schema = Some(base.join(s));
                }
            }
        }
        for (name, d) in &cfg.datasets {
            if !d.key.starts_with('/') {
                return Err(format!(
                    "datasets.{name}.key: `{}` is not a JSON pointer (like /order_id)",
                    d.key
                ));
            }
        }
        let l = &cfg.limits;
        for (key, zero) in [
            (
                "limits.max_events_per_request",
                l.max_events_per_request == 0,
            ),
            (
                "limits.max_concurrent_requests",
                l.max_concurrent_requests == 0,
            ),
            ("limits.max_in_flight_bytes", l.max_in_flight_bytes == 0),
            ("limits.request_timeout_ms", l.request_timeout_ms == 0),
            ("http.max_connections", cfg.http.max_connections == 0),
            ("http.header_timeout_ms", cfg.http.header_timeout_ms == 0),
            ("http.body_timeout_ms", cfg.http.body_timeout_ms == 0),
            ("max_body_bytes", cfg.max_body_bytes == 0),
        ] {
            if zero {
                return Err(format!("{}: {key} must be above 0", path.display()));
            }
        }
        if cfg.datasets.is_empty() {
            return Err(format!("{}: no datasets", path.display()));
        }
        for (i, k) in cfg.api_keys.iter().enumerate() {
            let at = format!("api_keys[{i}] ({})", k.name);
            if k.key.is_some() == k.key_env.is_some() {
                return Err(format!("{at}: set exactly one of `key` and `key_env`"));
            }
            if let Some(d) = k.datasets.iter().find(|d| !cfg.datasets.contains_key(*d)) {
                return Err(format!("{at}: dataset `{d}` is not configured"));
            }
            if let Some(r) = k.requests_per_second {
                if !(r.is_finite() && r > 0.0) {
                    return Err(format!("{at}: requests_per_second must be above 0"));
                }
            }
        }
        Ok(cfg)
    }
}
