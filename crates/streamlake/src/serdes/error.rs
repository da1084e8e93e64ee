//! Serialization errors.

use crate::registry::RegistryError;

/// Why a key or value could not be serialized or deserialized.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SerdeError {
    /// The input does not fit the schema at this field.
    #[error("field {path}: {message}")]
    Field {
        /// JSON pointer to the field (`""` is the whole document).
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The input is not JSON.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// The input is not UTF-8 text.
    #[error("not UTF-8 text")]
    Utf8,
    /// The schema itself is invalid or unusable.
    #[error("schema: {0}")]
    Schema(String),
    /// The bytes are not in the Confluent wire format.
    #[error("not in the Confluent wire format: {0}")]
    Wire(String),
    /// The registry could not answer.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The serializer was used in a way it does not support.
    #[error("{0}")]
    Usage(String),
}

impl SerdeError {
    /// Only registry outages are worth retrying; bad input stays bad.
    pub fn is_retriable(&self) -> bool {
        matches!(self, Self::Registry(e) if e.is_retriable())
    }

    pub(crate) fn field(path: &str, message: impl Into<String>) -> Self {
        Self::Field {
            path: if path.is_empty() {
                "(document)".to_owned()
            } else {
                path.to_owned()
            },
            message: message.into(),
        }
    }
}
