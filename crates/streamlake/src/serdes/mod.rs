//! Key and value formats: bytes, string, JSON, and, through a Confluent-compatible Schema
//! Registry, Avro, Protobuf and JSON Schema in the Confluent wire format.
//!
//! # Guarantees
//! - Registry formats are written as Confluent's serializers write them: magic byte `0`, the
//!   schema id as 4 big-endian bytes, then the encoded payload (for Protobuf the message-index list first), so Confluent clients read
//!   StreamLake's records and the other way round.
//! - Input that does not fit its schema is an error naming the field by JSON pointer
//!   (`/customer/id: expected string, found number`); nothing is sent for it.
//! - After [`Serializer::prepare`] has resolved a topic's schema id, serializing makes no
//!   registry call; the deserializer caches every writer schema by id.

pub(crate) mod avro;
mod deserializer;
mod error;
pub(crate) mod json_schema;
mod local;
pub(crate) mod protobuf;
pub(crate) mod serializer;
pub mod wire;

pub use deserializer::Deserializer;
pub use error::SerdeError;
pub use local::LocalSchema;
pub use serializer::Serializer;

use crate::registry::SchemaType;
use std::str::FromStr;

/// A key or value format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Raw bytes, as given.
    Bytes,
    /// UTF-8 text.
    String,
    /// A JSON document, checked for syntax.
    Json,
    /// Avro through the registry.
    Avro,
    /// Protobuf through the registry.
    Protobuf,
    /// JSON validated by a JSON Schema, through the registry.
    JsonSchema,
}

impl Format {
    /// The registry schema type, for registry formats.
    pub fn schema_type(self) -> Option<SchemaType> {
        match self {
            Self::Avro => Some(SchemaType::Avro),
            Self::Protobuf => Some(SchemaType::Protobuf),
            Self::JsonSchema => Some(SchemaType::Json),
            _ => None,
        }
    }

    /// Whether the format goes through the registry.
    pub fn uses_registry(self) -> bool {
        self.schema_type().is_some()
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "bytes" => Self::Bytes,
            "string" => Self::String,
            "json" => Self::Json,
            "avro" => Self::Avro,
            "json-schema" | "jsonschema" => Self::JsonSchema,
            "protobuf" | "proto" => Self::Protobuf,
            other => {
                return Err(format!(
                    "`{other}` is not a format: bytes, string, json, avro, protobuf or json-schema"
                ))
            }
        })
    }
}
