//! Bytes back to values: JSON for every format but `bytes` and `string`.

use super::serializer::Codec;
use super::{wire, Format, SerdeError};
use crate::registry::Registry;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Deserializes keys or values of one format. Writer schemas are fetched by id once and cached.
pub struct Deserializer {
    format: Format,
    registry: Option<Arc<Registry>>,
    codecs: Mutex<HashMap<u32, Arc<Codec>>>,
}

impl std::fmt::Debug for Deserializer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deserializer")
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl Deserializer {
    /// A deserializer; registry formats need `registry`.
    pub fn new(format: Format, registry: Option<Arc<Registry>>) -> Result<Self, SerdeError> {
        if format.uses_registry() && registry.is_none() {
            return Err(SerdeError::Usage(
                "this format needs a schema registry: set schema_registry.url, STREAMLAKE_SCHEMA_REGISTRY_URL or --schema-registry".into(),
            ));
        }
        Ok(Self {
            format,
            registry,
            codecs: Mutex::new(HashMap::new()),
        })
    }

    /// The format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Decodes one payload: text formats become a JSON string, the others the JSON document.
    pub async fn deserialize(&self, bytes: &[u8]) -> Result<Value, SerdeError> {
        match self.format {
            Format::Bytes | Format::String => std::str::from_utf8(bytes)
                .map(|s| Value::String(s.to_owned()))
                .map_err(|_| SerdeError::Utf8),
            Format::Json => {
                serde_json::from_slice(bytes).map_err(|e| SerdeError::Json(e.to_string()))
            }
            Format::Avro | Format::Protobuf | Format::JsonSchema => {
                let (id, payload) = wire::unframe(bytes)?;
                let codec = self.codec(id).await?;
                match &*codec {
                    Codec::Avro(c) => c.decode(payload),
                    Codec::Json(_) => {
                        serde_json::from_slice(payload).map_err(|e| SerdeError::Json(e.to_string()))
                    }
                    Codec::Protobuf(c) => c.decode(payload),
                }
            }
        }
    }

    async fn codec(&self, id: u32) -> Result<Arc<Codec>, SerdeError> {
        if let Some(c) = self.codecs.lock().expect("lock").get(&id) {
            return Ok(Arc::clone(c));
        }
        let registry = self
            .registry
            .as_ref()
            .ok_or_else(|| SerdeError::Usage("no schema registry".into()))?;
        let schema = registry.by_id(id).await?;
        let codec = Arc::new(Codec::new(schema.schema_type, &schema.schema, None)?);
        self.codecs
            .lock()
            .expect("lock")
            .insert(id, Arc::clone(&codec));
        Ok(codec)
    }
}
