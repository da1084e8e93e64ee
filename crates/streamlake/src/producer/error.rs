//! Producer errors. A failed send always hands the record back in [`SendError`].

use crate::config::ConfigError;
use crate::record::Record;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// Why a record was not delivered, or a producer could not be used.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ProduceError {
    /// The configuration is invalid.
    #[error("{0}")]
    Config(String),
    /// librdkafka refused to create the client.
    #[error("cannot create producer: {0}")]
    Create(String),
    /// The local queue stayed full for the whole delivery budget.
    #[error("local producer queue stayed full for {waited_ms} ms (is the cluster reachable?)")]
    QueueFull {
        /// How long the send waited.
        waited_ms: u64,
    },
    /// The broker did not acknowledge the record within `producer.delivery_timeout_ms`.
    #[error("not acknowledged within the delivery timeout ({detail}); check that the brokers in bootstrap_servers are reachable and the security settings are right")]
    Timeout {
        /// librdkafka's description.
        detail: String,
    },
    /// The record is larger than the broker or producer allows.
    #[error("record too large: {detail}")]
    TooLarge {
        /// librdkafka's description.
        detail: String,
    },
    /// The topic or partition does not exist.
    #[error("unknown topic or partition: {detail}")]
    UnknownTopic {
        /// librdkafka's description.
        detail: String,
    },
    /// The credentials are not allowed to write to the topic.
    #[error("not authorized: {detail}")]
    Unauthorized {
        /// librdkafka's description.
        detail: String,
    },
    /// The producer instance can no longer be used (fencing, idempotence sequence failure).
    #[error("fatal producer error: {detail}")]
    Fatal {
        /// librdkafka's description.
        detail: String,
    },
    /// The record was still queued when the producer was closed; it was not written.
    #[error("producer closed before the record was delivered")]
    Purged,
    /// The circuit breaker is open (the cluster has not been taking records) and there is no
    /// spool to keep the record in.
    #[error("circuit open: Kafka has not been taking records; retry later")]
    CircuitOpen,
    /// The record could not be spooled (the spool stayed full, or the disk failed).
    #[error("cannot spool the record: {0}")]
    Spool(String),
    /// The record was sent in a transaction that was aborted, not committed.
    #[error("transaction not committed: {0}")]
    Transaction(String),
    /// `flush` ran out of time with records still pending.
    #[error("{pending} record(s) still undelivered after the flush timeout")]
    FlushTimeout {
        /// Records neither delivered nor failed.
        pending: u64,
    },
    /// Any other broker or client error.
    #[error("{detail}")]
    Kafka {
        /// librdkafka's error code.
        code: RDKafkaErrorCode,
        /// librdkafka's description.
        detail: String,
    },
}

impl ProduceError {
    /// Worth sending again later (the cluster may be back, the queue may have drained).
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::QueueFull { .. }
            | Self::Timeout { .. }
            | Self::Purged
            | Self::CircuitOpen
            | Self::Spool(_)
            | Self::FlushTimeout { .. } => true,
            Self::Kafka { code, .. } => is_retriable_code(*code),
            _ => false,
        }
    }

    /// The producer instance is unusable and must be recreated.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Self::Fatal { .. })
    }

    /// The record itself can never be written as it is (too large, no such topic, not allowed).
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            Self::TooLarge { .. } | Self::UnknownTopic { .. } | Self::Unauthorized { .. }
        )
    }

    /// A short, stable label for metrics and summaries.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Config(_) => "config",
            Self::Create(_) => "create",
            Self::QueueFull { .. } => "queue_full",
            Self::Timeout { .. } => "timeout",
            Self::TooLarge { .. } => "too_large",
            Self::UnknownTopic { .. } => "unknown_topic",
            Self::Unauthorized { .. } => "unauthorized",
            Self::Fatal { .. } => "fatal",
            Self::Purged => "purged",
            Self::CircuitOpen => "circuit_open",
            Self::Spool(_) => "spool",
            Self::Transaction(_) => "transaction",
            Self::FlushTimeout { .. } => "flush_timeout",
            Self::Kafka { .. } => "kafka",
        }
    }
}

fn is_retriable_code(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        code,
        C::BrokerTransportFailure
            | C::AllBrokersDown
            | C::RequestTimedOut
            | C::NotEnoughReplicas
            | C::NotEnoughReplicasAfterAppend
            | C::LeaderNotAvailable
            | C::NotLeaderForPartition
            | C::NetworkException
            | C::ThrottlingQuotaExceeded
            | C::OperationTimedOut
    )
}

impl From<ConfigError> for ProduceError {
    fn from(e: ConfigError) -> Self {
        Self::Config(e.to_string())
    }
}

impl From<&KafkaError> for ProduceError {
    fn from(e: &KafkaError) -> Self {
        use RDKafkaErrorCode as C;
        let Some(code) = e.rdkafka_error_code() else {
            return Self::Create(e.to_string());
        };
        let detail = code.to_string();
        match code {
            C::MessageTimedOut => Self::Timeout { detail },
            C::QueueFull => Self::QueueFull { waited_ms: 0 },
            C::MessageSizeTooLarge | C::InvalidMessageSize | C::MessageBatchTooLarge => {
                Self::TooLarge { detail }
            }
            C::UnknownTopicOrPartition
            | C::UnknownTopic
            | C::UnknownPartition
            | C::InvalidTopic => Self::UnknownTopic { detail },
            C::TopicAuthorizationFailed
            | C::ClusterAuthorizationFailed
            | C::TransactionalIdAuthorizationFailed => Self::Unauthorized { detail },
            C::PurgeQueue | C::PurgeInflight => Self::Purged,
            C::Fatal
            | C::OutOfOrderSequenceNumber
            | C::InvalidProducerEpoch
            | C::ProducerFenced
            | C::InvalidProducerIdMapping
            | C::UnknownProducerId => Self::Fatal { detail },
            _ => Self::Kafka { code, detail },
        }
    }
}

/// A send that failed, with the record handed back so the caller decides what happens to it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{error}")]
pub struct SendError {
    /// What went wrong.
    pub error: ProduceError,
    /// The record that was not delivered, unchanged.
    pub record: Record,
}
