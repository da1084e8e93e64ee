//! An embedded Kafka-compatible cluster for trying StreamLake without installing Kafka.
//!
//! It is librdkafka's mock cluster: real brokers speaking the Kafka protocol on loopback ports,
//! in this process, holding data in memory. It supports replication, consumer groups,
//! idempotence and transactions, and goes away with the process. It is for demos, development
//! and fault-injection tests, not for data you want to keep.

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

/// Why the embedded cluster could not start or act.
#[derive(Debug, Clone, thiserror::Error)]
#[error("embedded cluster: {0}")]
pub struct EmbeddedError(String);

impl EmbeddedError {
    /// Never worth retrying.
    pub fn is_retriable(&self) -> bool {
        false
    }
}

/// A running embedded cluster. Stops when dropped. Not `Send`: keep it on the thread that
/// started it and hand out [`EmbeddedCluster::bootstrap_servers`].
pub struct EmbeddedCluster {
    cluster: MockCluster<'static, DefaultProducerContext>,
    brokers: i32,
}

impl std::fmt::Debug for EmbeddedCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedCluster")
            .field("bootstrap_servers", &self.bootstrap_servers())
            .finish()
    }
}

impl EmbeddedCluster {
    /// Starts `brokers` brokers on loopback. Topics created on demand get
    /// `min(brokers, 3)` replicas.
    pub fn start(brokers: i32) -> Result<Self, EmbeddedError> {
        let cluster = MockCluster::new(brokers).map_err(|e| EmbeddedError(e.to_string()))?;
        Ok(Self { cluster, brokers })
    }

    /// The `host:port,…` list to connect to.
    pub fn bootstrap_servers(&self) -> String {
        self.cluster.bootstrap_servers()
    }

    /// Number of brokers.
    pub fn brokers(&self) -> i32 {
        self.brokers
    }

    /// Creates a topic.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication: i32,
    ) -> Result<(), EmbeddedError> {
        self.cluster
            .create_topic(name, partitions, replication)
            .map_err(|e| EmbeddedError(e.to_string()))
    }

    /// The underlying mock cluster, for fault injection in tests (broker down, request errors,
    /// leader moves).
    pub fn mock(&self) -> &MockCluster<'static, DefaultProducerContext> {
        &self.cluster
    }
}
