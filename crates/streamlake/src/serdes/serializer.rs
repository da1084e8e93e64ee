//! Values and keys to bytes.

use super::avro::AvroCodec;
use super::json_schema::JsonSchemaCodec;
use super::protobuf::ProtobufCodec;
use super::{wire, Format, LocalSchema, SerdeError};
use crate::config::SchemaRegistryConfig;
use crate::registry::{subject_name, Registry, Role, SchemaType};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A schema ready to encode with, and the id that goes on the wire.
#[derive(Debug)]
pub(crate) enum Codec {
    Avro(AvroCodec),
    Json(JsonSchemaCodec),
    Protobuf(ProtobufCodec),
}

impl Codec {
    /// `message` picks the Protobuf message to write (default: the first).
    pub(crate) fn new(
        schema_type: SchemaType,
        text: &str,
        message: Option<&str>,
    ) -> Result<Self, SerdeError> {
        match schema_type {
            SchemaType::Avro => AvroCodec::new(text).map(Self::Avro),
            SchemaType::Json => JsonSchemaCodec::new(text).map(Self::Json),
            SchemaType::Protobuf => ProtobufCodec::new(text, message).map(Self::Protobuf),
        }
    }
}

/// Serializes keys or values of one format for any topic.
///
/// For registry formats, call [`Serializer::prepare`] once per topic (it registers or looks up
/// the schema); [`Serializer::serialize`] then works without the registry.
pub struct Serializer {
    format: Format,
    role: Role,
    local: Option<LocalSchema>,
    registry: Option<Arc<Registry>>,
    settings: SchemaRegistryConfig,
    prepared: Mutex<HashMap<String, Arc<(u32, Codec)>>>,
}

impl std::fmt::Debug for Serializer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Serializer")
            .field("format", &self.format)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl Serializer {
    /// A serializer. Registry formats need `registry` and, unless
    /// `schema_registry.use_latest_version` is set, a local schema of the matching kind.
    pub fn new(
        format: Format,
        role: Role,
        local: Option<LocalSchema>,
        registry: Option<Arc<Registry>>,
        settings: &SchemaRegistryConfig,
    ) -> Result<Self, SerdeError> {
        let what = match role {
            Role::Key => "key",
            Role::Value => "value",
        };
        if let Some(schema_type) = format.schema_type() {
            if registry.is_none() {
                return Err(SerdeError::Usage(format!(
                    "the {what} format needs a schema registry: set schema_registry.url, STREAMLAKE_SCHEMA_REGISTRY_URL or --schema-registry"
                )));
            }
            match &local {
                None if !settings.use_latest_version => {
                    return Err(SerdeError::Usage(format!(
                        "the {what} format needs a schema file (--{what}-schema), or schema_registry.use_latest_version"
                    )))
                }
                Some(l) if l.schema_type != schema_type => {
                    return Err(SerdeError::Usage(format!("the {what} schema is {:?} but the format needs {schema_type:?}", l.schema_type)))
                }
                _ => {}
            }
        }
        Ok(Self {
            format,
            role,
            local,
            registry,
            settings: settings.clone(),
            prepared: Mutex::new(HashMap::new()),
        })
    }

    /// The format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Resolves the schema id for `topic` (registering the local schema, or taking the latest
    /// version, by configuration). Does nothing for formats without a registry, or when done.
    pub async fn prepare(&self, topic: &str) -> Result<u32, SerdeError> {
        let (Some(schema_type), Some(registry)) = (self.format.schema_type(), &self.registry)
        else {
            return Ok(0);
        };
        if let Some(p) = self.prepared.lock().expect("lock").get(topic) {
            return Ok(p.0);
        }
        let record_name = self.local.as_ref().and_then(|l| l.record_name.as_deref());
        let subject = subject_name(
            self.settings.subject_name_strategy,
            topic,
            self.role,
            record_name,
        )
        .map_err(SerdeError::Usage)?;
        let (id, codec) = match &self.local {
            Some(local) if !self.settings.use_latest_version => {
                let id = if self.settings.auto_register {
                    registry
                        .register(&subject, schema_type, &local.text, &[])
                        .await?
                } else {
                    registry.lookup(&subject, schema_type, &local.text).await?
                };
                (
                    id,
                    Codec::new(schema_type, &local.text, local.record_name.as_deref())?,
                )
            }
            _ => {
                let latest = registry.version(&subject, None).await?;
                if latest.schema_type != schema_type {
                    return Err(SerdeError::Usage(format!(
                        "subject {subject} holds a {:?} schema, not {schema_type:?}",
                        latest.schema_type
                    )));
                }
                (latest.id, Codec::new(schema_type, &latest.schema, None)?)
            }
        };
        self.prepared
            .lock()
            .expect("lock")
            .insert(topic.to_owned(), Arc::new((id, codec)));
        Ok(id)
    }

    /// Serializes one input: raw bytes for `bytes`, UTF-8 text for `string`, a JSON document
    /// for the others.
    pub fn serialize(&self, topic: &str, input: &[u8]) -> Result<Vec<u8>, SerdeError> {
        match self.format {
            Format::Bytes => Ok(input.to_vec()),
            Format::String => std::str::from_utf8(input)
                .map(|_| input.to_vec())
                .map_err(|_| SerdeError::Utf8),
            Format::Json => {
                serde_json::from_slice::<serde::de::IgnoredAny>(input)
                    .map_err(|e| SerdeError::Json(e.to_string()))?;
                Ok(input.to_vec())
            }
            Format::Avro | Format::Protobuf | Format::JsonSchema => {
                let prepared = self.prepared_for(topic)?;
                let doc: Value =
                    serde_json::from_slice(input).map_err(|e| SerdeError::Json(e.to_string()))?;
                encode(&prepared, &doc, Some(input))
            }
        }
    }
}

impl Serializer {
    /// Serializes an already parsed JSON document (registry formats and `json`), without going
    /// through text.
    pub fn serialize_value(&self, topic: &str, doc: &Value) -> Result<Vec<u8>, SerdeError> {
        match self.format {
            Format::Avro | Format::Protobuf | Format::JsonSchema => {
                encode(&*self.prepared_for(topic)?, doc, None)
            }
            _ => Ok(serde_json::to_vec(doc).expect("a Value always serializes")),
        }
    }

    fn prepared_for(&self, topic: &str) -> Result<Arc<(u32, Codec)>, SerdeError> {
        self.prepared
            .lock()
            .expect("lock")
            .get(topic)
            .cloned()
            .ok_or_else(|| {
                SerdeError::Usage(format!("the serializer was not prepared for topic {topic}"))
            })
    }
}

/// Encodes and frames `doc`; `text` is its original JSON text, kept as is for JSON Schema.
fn encode(
    prepared: &(u32, Codec),
    doc: &Value,
    text: Option<&[u8]>,
) -> Result<Vec<u8>, SerdeError> {
    let (id, codec) = prepared;
    match codec {
        Codec::Avro(c) => Ok(wire::frame(*id, &c.encode(doc)?)),
        Codec::Json(c) => {
            c.validate(doc)?;
            match text {
                Some(t) => Ok(wire::frame(*id, t)),
                None => Ok(wire::frame(
                    *id,
                    &serde_json::to_vec(doc).expect("a Value always serializes"),
                )),
            }
        }
        Codec::Protobuf(c) => Ok(wire::frame(*id, &c.encode_value(doc)?)),
    }
}
