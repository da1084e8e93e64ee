//! Registry errors.

/// Why a registry request failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// No registry is configured, or its settings are unusable.
    #[error("schema registry: {0}")]
    Config(String),
    /// No configured URL answered.
    #[error("schema registry unreachable: {0}")]
    Unreachable(String),
    /// The registry answered with an error.
    #[error("schema registry refused ({status}, error {code}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The registry's error code (40401 subject not found, 409 incompatible, …).
        code: i64,
        /// The registry's message.
        message: String,
    },
    /// The registry's answer was not what the API promises.
    #[error("schema registry sent an unexpected answer: {0}")]
    BadResponse(String),
}

impl RegistryError {
    /// Worth trying again later.
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Unreachable(_) => true,
            Self::Refused { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }

    /// The subject, version or schema id does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Refused { status: 404, .. })
    }
}
