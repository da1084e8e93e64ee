//! Transactional produce: exactly once from the reader's side.
//!
//! # Guarantees
//! Records sent between [`TransactionalProducer::begin`] and a successful
//! [`TransactionalProducer::commit`] become visible to `read_committed` consumers together, once
//! each; after [`TransactionalProducer::abort`] (or a transaction the broker times out) they are
//! never visible to them. Consumer offsets given to [`TransactionalProducer::send_offsets`] are
//! committed with the transaction, so a consume-transform-produce loop neither loses nor
//! repeats a record (see [`crate::producer::transform`]).
//!
//! # Errors
//! [`TransactionError::is_abortable`]: abort and run the transaction again;
//! [`TransactionError::is_retriable`]: the same call may be made again;
//! [`TransactionError::Fatal`]: the producer is unusable, usually because another instance with
//! the same `producer.transactional_id` fenced it. A commit is refused (and the transaction
//! must be aborted) when any record sent in it was not delivered, so a commit never hides a
//! lost record. Transactional producers are not recreated after fatal errors.

use super::{Delivery, Outcome, Producer, SendError};
use crate::config::Config;
use crate::consumer::Consumer;
use crate::record::Record;
use rdkafka::error::KafkaError;
use rdkafka::producer::Producer as _;
use rdkafka::{Offset, TopicPartitionList};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Why a transactional operation failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TransactionError {
    /// The configuration cannot make a transactional producer.
    #[error("{0}")]
    Config(String),
    /// The transaction cannot commit; abort it and run it again.
    #[error("transaction must be aborted: {0}")]
    Abortable(String),
    /// The operation failed for now; it may be called again.
    #[error("transaction operation failed (retriable): {0}")]
    Retriable(String),
    /// The producer can no longer be used (often: fenced by another instance with the same
    /// transactional id).
    #[error("fatal transactional error: {0}")]
    Fatal(String),
    /// Records of the transaction were not delivered; it must be aborted.
    #[error("{failed} record(s) of the transaction were not delivered (first: {first}); abort it")]
    Undelivered {
        /// How many.
        failed: u64,
        /// The first failure.
        first: String,
    },
    /// Any other failure.
    #[error("{0}")]
    Other(String),
}

impl TransactionError {
    /// The call may be made again as it is.
    pub fn is_retriable(&self) -> bool {
        matches!(self, Self::Retriable(_))
    }

    /// The transaction must be aborted; the producer stays usable.
    pub fn is_abortable(&self) -> bool {
        matches!(self, Self::Abortable(_) | Self::Undelivered { .. })
    }

    fn from_kafka(e: &KafkaError) -> Self {
        if let KafkaError::Transaction(t) = e {
            if t.is_fatal() {
                return Self::Fatal(t.to_string());
            }
            if t.txn_requires_abort() {
                return Self::Abortable(t.to_string());
            }
            if t.is_retriable() {
                return Self::Retriable(t.to_string());
            }
        }
        Self::Other(e.to_string())
    }
}

/// Failures of the records sent in the current transaction.
#[derive(Default)]
struct TxnFailures {
    count: AtomicU64,
    first: Mutex<Option<String>>,
}

impl TxnFailures {
    fn record(&self, e: &SendError) {
        self.count.fetch_add(1, Ordering::SeqCst);
        let mut first = self.first.lock().expect("lock");
        if first.is_none() {
            *first = Some(e.error.to_string());
        }
    }

    fn reset(&self) {
        self.count.store(0, Ordering::SeqCst);
        *self.first.lock().expect("lock") = None;
    }
}

/// A producer whose records are written in transactions.
pub struct TransactionalProducer {
    producer: Producer,
    timeout: Duration,
    failures: Arc<TxnFailures>,
}

impl std::fmt::Debug for TransactionalProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionalProducer")
            .field("producer", &self.producer)
            .finish_non_exhaustive()
    }
}

impl TransactionalProducer {
    /// Creates the producer and registers its `producer.transactional_id` with the cluster
    /// (fencing any older instance with the same id, and finishing its open transaction).
    /// Blocks until the cluster answers or the delivery timeout passes.
    pub fn new(config: &Config) -> Result<Self, TransactionError> {
        if config.producer.transactional_id.is_none() {
            return Err(TransactionError::Config(
                "a transactional producer needs producer.transactional_id (--transactional-id)"
                    .into(),
            ));
        }
        let producer =
            Producer::new(config).map_err(|e| TransactionError::Config(e.to_string()))?;
        let timeout = Duration::from_millis(config.producer.delivery_timeout_ms);
        producer
            .core
            .current()
            .client
            .init_transactions(timeout)
            .map_err(|e| TransactionError::from_kafka(&e))?;
        Ok(Self {
            producer,
            timeout,
            failures: Arc::default(),
        })
    }

    /// Starts a transaction.
    pub fn begin(&self) -> Result<(), TransactionError> {
        self.failures.reset();
        self.client()
            .client
            .begin_transaction()
            .map_err(|e| TransactionError::from_kafka(&e))
    }

    /// Sends a record in the current transaction and waits for its acknowledgement (it stays
    /// invisible to `read_committed` consumers until the commit).
    pub async fn send(&self, record: Record) -> Result<Delivery, SendError> {
        let outcome = self.producer.send(record).await;
        if let Err(e) = &outcome {
            self.failures.record(e);
        }
        outcome
    }

    /// Sends a record in the current transaction without waiting; see
    /// [`Producer::send_with_callback`]. [`TransactionalProducer::commit`] waits for every
    /// outstanding record.
    pub fn send_with_callback<F>(&self, record: Record, on_done: F) -> Result<(), SendError>
    where
        F: FnOnce(Outcome) + Send + Sync + 'static,
    {
        let failures = Arc::clone(&self.failures);
        let sent = self.producer.send_with_callback(record, move |o| {
            if let Err(e) = &o {
                failures.record(e);
            }
            on_done(o);
        });
        if let Err(e) = &sent {
            self.failures.record(e);
        }
        sent
    }

    /// Adds consumer offsets to the transaction: `offsets` are `(topic, partition, next offset
    /// to read)`, committed for `consumer`'s group only if the transaction commits.
    pub fn send_offsets(
        &self,
        consumer: &Consumer,
        offsets: &[(String, i32, i64)],
    ) -> Result<(), TransactionError> {
        let metadata = consumer.group_metadata().ok_or_else(|| {
            TransactionError::Config(
                "the consumer has no group (set consumer.group_id and subscribe)".into(),
            )
        })?;
        let mut tpl = TopicPartitionList::new();
        for (topic, partition, next) in offsets {
            tpl.add_partition_offset(topic, *partition, Offset::Offset(*next))
                .map_err(|e| TransactionError::Other(e.to_string()))?;
        }
        self.client()
            .client
            .send_offsets_to_transaction(&tpl, &metadata, self.timeout)
            .map_err(|e| TransactionError::from_kafka(&e))
    }

    /// Waits for every record of the transaction and commits it. Refused with
    /// [`TransactionError::Undelivered`] if any record failed: then abort.
    pub fn commit(&self) -> Result<(), TransactionError> {
        self.producer
            .flush(self.timeout)
            .map_err(|e| TransactionError::Abortable(e.to_string()))?;
        let failed = self.failures.count.load(Ordering::SeqCst);
        if failed > 0 {
            return Err(TransactionError::Undelivered {
                failed,
                first: self
                    .failures
                    .first
                    .lock()
                    .expect("lock")
                    .clone()
                    .unwrap_or_default(),
            });
        }
        self.client()
            .client
            .commit_transaction(self.timeout)
            .map_err(|e| TransactionError::from_kafka(&e))
    }

    /// Aborts the transaction: its records are never visible to `read_committed` consumers
    /// and its offsets are not committed. Records still queued are handed back as purged.
    pub fn abort(&self) -> Result<(), TransactionError> {
        let r = self
            .client()
            .client
            .abort_transaction(self.timeout)
            .map_err(|e| TransactionError::from_kafka(&e));
        self.failures.reset();
        r
    }

    /// The producer underneath (its counters).
    pub fn producer(&self) -> &Producer {
        &self.producer
    }

    fn client(&self) -> Arc<super::generation::Generation> {
        self.producer.core.current()
    }
}
