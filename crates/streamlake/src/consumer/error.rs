//! Consumer errors.

use crate::config::ConfigError;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// Why reading failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ConsumeError {
    /// The configuration is invalid.
    #[error("{0}")]
    Config(String),
    /// librdkafka refused to create the client.
    #[error("cannot create consumer: {0}")]
    Create(String),
    /// Subscribing needs a consumer group.
    #[error("subscribing needs a consumer group: set consumer.group_id (or --group), or assign partitions instead")]
    NoGroup,
    /// The topic does not exist (or has no partitions).
    #[error("topic `{0}` does not exist")]
    UnknownTopic(String),
    /// A requested partition does not exist.
    #[error("topic `{topic}` has no partition {partition} (it has {count})")]
    UnknownPartition {
        /// Topic.
        topic: String,
        /// The partition asked for.
        partition: i32,
        /// How many partitions the topic has.
        count: usize,
    },
    /// The cluster did not answer in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// Any other client or broker error.
    #[error("{detail}")]
    Kafka {
        /// librdkafka's error code, when there is one.
        code: Option<RDKafkaErrorCode>,
        /// Description.
        detail: String,
    },
}

impl ConsumeError {
    /// Worth trying again later.
    pub fn is_retriable(&self) -> bool {
        use RDKafkaErrorCode as C;
        match self {
            Self::Timeout(_) => true,
            Self::Kafka {
                code: Some(code), ..
            } => matches!(
                code,
                C::BrokerTransportFailure
                    | C::AllBrokersDown
                    | C::RequestTimedOut
                    | C::OperationTimedOut
                    | C::LeaderNotAvailable
                    | C::NotLeaderForPartition
                    | C::CoordinatorNotAvailable
                    | C::NotCoordinator
                    | C::CoordinatorLoadInProgress
                    | C::RebalanceInProgress
                    | C::NetworkException
            ),
            _ => false,
        }
    }
}

impl From<ConfigError> for ConsumeError {
    fn from(e: ConfigError) -> Self {
        Self::Config(e.to_string())
    }
}

impl From<KafkaError> for ConsumeError {
    fn from(e: KafkaError) -> Self {
        let code = e.rdkafka_error_code();
        if matches!(
            code,
            Some(RDKafkaErrorCode::OperationTimedOut | RDKafkaErrorCode::RequestTimedOut)
        ) {
            return Self::Timeout(e.to_string());
        }
        Self::Kafka {
            code,
            detail: e.to_string(),
        }
    }
}
