//! Schemas read from local files.

use super::{avro, json_schema, protobuf, SerdeError};
use crate::registry::SchemaType;
use std::path::Path;

/// A schema from a file, checked and ready to use.
#[derive(Debug, Clone)]
pub struct LocalSchema {
    /// Kind.
    pub schema_type: SchemaType,
    /// The text, as registered.
    pub text: String,
    /// The record's full name (Avro `namespace.name`, Protobuf `package.Message`, JSON
    /// Schema `title`), for the `record`
    /// subject strategies.
    pub record_name: Option<String>,
}

impl LocalSchema {
    /// Reads a schema file; the kind comes from the extension (`.avsc` Avro, `.json` JSON Schema)
    /// unless given.
    pub fn from_file(path: &Path, schema_type: Option<SchemaType>) -> Result<Self, SerdeError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SerdeError::Schema(format!("cannot read {}: {e}", path.display())))?;
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let schema_type = match (schema_type, ext) {
            (Some(t), _) => t,
            (None, "avsc") => SchemaType::Avro,
            (None, "json") => SchemaType::Json,
            (None, "proto") => SchemaType::Protobuf,
            (None, _) => {
                return Err(SerdeError::Schema(format!(
                "{}: cannot tell the schema kind from the extension; use .avsc, .proto or .json",
                path.display()
            )))
            }
        };
        Self::parse(schema_type, text).map_err(|e| match e {
            SerdeError::Schema(m) => SerdeError::Schema(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// Picks the Protobuf message to write (full or package-relative name); the default is the
    /// file's first message.
    pub fn with_message(mut self, message: &str) -> Result<Self, SerdeError> {
        if self.schema_type != SchemaType::Protobuf {
            return Err(SerdeError::Usage(
                "a message name applies to .proto schemas only".into(),
            ));
        }
        self.record_name =
            Some(protobuf::ProtobufCodec::new(&self.text, Some(message))?.record_name());
        Ok(self)
    }

    /// Checks schema text of the given kind.
    pub fn parse(schema_type: SchemaType, text: String) -> Result<Self, SerdeError> {
        let record_name = match schema_type {
            SchemaType::Avro => avro::AvroCodec::new(&text)?.record_name(),
            SchemaType::Json => json_schema::JsonSchemaCodec::new(&text)?.title(),
            SchemaType::Protobuf => Some(protobuf::ProtobufCodec::new(&text, None)?.record_name()),
        };
        Ok(Self {
            schema_type,
            text,
            record_name,
        })
    }
}
