//! Gateway configuration: where to listen and which datasets exist.

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
    /// Largest request body in bytes; larger requests get 413. Default 1 MiB.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Kafka settings (the same keys as `streamlake` config files); environment and flags
    /// still apply on top.
    #[serde(default)]
    pub kafka: Option<serde_json::Value>,
    /// Datasets by name (the `{dataset}` in the URL).
    pub datasets: BTreeMap<String, DatasetConfig>,
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
    /// JSON Schema file, relative to the config file.
    pub schema: Option<PathBuf>,
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
        if cfg.datasets.is_empty() {
            return Err(format!("{}: no datasets", path.display()));
        }
        Ok(cfg)
    }
}
