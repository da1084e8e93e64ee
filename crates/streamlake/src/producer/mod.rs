//! The StreamLake producer.
//!
//! # Delivery semantics
//! - At least once, and with the default idempotence no duplicates or reordering caused by
//!   retries within a partition. Records with the same key go to the same partition (Java-
//!   compatible murmur2 hashing) and keep their order there.
//! - Every record accepted by [`Producer::send`] or [`Producer::send_with_callback`] ends in
//!   exactly one outcome: a [`Delivery`] (topic, partition, offset, timestamp) or a
//!   [`SendError`] that carries the record back. Nothing is dropped: a record still queued when
//!   the producer is closed or dropped is handed back as [`ProduceError::Purged`].
//! - A send that cannot be accepted (invalid record, queue full for the whole delivery budget)
//!   fails at once with the record; the callback of a refused `send_with_callback` is not called.
//!
//! # Back-pressure
//! The client queue is bounded (`producer.queue_max_messages`, `producer.queue_max_kbytes`).
//! When it is full, `send` waits asynchronously and `send_with_callback` blocks the calling
//! thread, until space frees up or `producer.delivery_timeout_ms` passes. Memory stays bounded.
//!
//! # Threads
//! One librdkafka poll thread runs the delivery callbacks; keep callbacks short.

mod circuit;
mod context;
mod error;
mod spooling;

pub use circuit::{Admit, Circuit, CircuitConfig, CircuitState};
pub use context::{Counters, Outcome};
pub use error::{ProduceError, SendError};
pub use spooling::{Accepted, SpoolCounts, SpoolingCloseReport, SpoolingProducer};

use crate::config::{ClientKind, Config};
use crate::record::{Delivery, Record};
use context::{Completion, Context, Pending};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header as RdHeader, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer as _, PurgeConfig, ThreadedProducer};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a send waits before trying a full queue again.
const QUEUE_FULL_BACKOFF: Duration = Duration::from_millis(1);

/// A Kafka producer with production defaults. Cheap to share behind an `Arc`; all methods take
/// `&self` except [`Producer::close`].
pub struct Producer {
    inner: ThreadedProducer<Context>,
    counters: Arc<Counters>,
    delivery_timeout: Duration,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

/// What [`Producer::close`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseReport {
    /// Records accepted over the producer's life.
    pub accepted: u64,
    /// Records acknowledged.
    pub delivered: u64,
    /// Records that ended in an error (each handed back to its sender), purged ones included.
    pub failed: u64,
    /// Of those, records still undelivered at the close deadline, handed back as purged.
    pub purged: u64,
}

impl CloseReport {
    /// Every accepted record was delivered.
    pub fn all_delivered(&self) -> bool {
        self.delivered == self.accepted
    }
}

impl Producer {
    /// Creates a producer. Fails if the configuration is invalid; does not wait for the cluster.
    pub fn new(config: &Config) -> Result<Self, ProduceError> {
        let cc = config.client_config(ClientKind::Producer)?;
        let counters = Arc::new(Counters::default());
        let inner: ThreadedProducer<Context> = cc
            .create_with_context(Context {
                counters: Arc::clone(&counters),
                last_error: std::sync::Mutex::new(None),
            })
            .map_err(|e| ProduceError::Create(e.to_string()))?;
        Ok(Self {
            inner,
            counters,
            delivery_timeout: Duration::from_millis(config.producer.delivery_timeout_ms),
        })
    }

    /// Sends one record and waits for the cluster's acknowledgement.
    pub async fn send(&self, record: Record) -> Result<Delivery, SendError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut pending = Pending::new(record, Completion::Future(tx));
        let started = Instant::now();
        loop {
            match self.try_enqueue(pending) {
                Ok(()) => break,
                Err((e, back))
                    if is_queue_full(&e) && started.elapsed() < self.delivery_timeout =>
                {
                    pending = back;
                    tokio::time::sleep(QUEUE_FULL_BACKOFF).await;
                }
                Err((e, back)) => return Err(refused(&e, *back, started)),
            }
        }
        match rx.await {
            Ok(outcome) => outcome,
            // `Pending` completes on drop, so the sender is never dropped unanswered while the
            // client lives; this only happens if librdkafka leaked the record.
            Err(_) => Err(SendError {
                error: ProduceError::Purged,
                record: Record::new("", bytes::Bytes::new()),
            }),
        }
    }

    /// Sends one record without waiting; `on_done` is called once with its outcome, on the
    /// producer's poll thread. Blocks the calling thread while the local queue is full
    /// (back-pressure). If the record is refused, `on_done` is not called and the record is
    /// returned in the error.
    pub fn send_with_callback<F>(&self, record: Record, on_done: F) -> Result<(), SendError>
    where
        F: FnOnce(Outcome) + Send + Sync + 'static,
    {
        let mut pending = Pending::new(record, Completion::Callback(Box::new(on_done)));
        let started = Instant::now();
        loop {
            match self.try_enqueue(pending) {
                Ok(()) => return Ok(()),
                Err((e, back))
                    if is_queue_full(&e) && started.elapsed() < self.delivery_timeout =>
                {
                    pending = back;
                    std::thread::sleep(QUEUE_FULL_BACKOFF);
                }
                Err((e, back)) => return Err(refused(&e, *back, started)),
            }
        }
    }

    fn try_enqueue(&self, pending: Box<Pending>) -> Result<(), (KafkaError, Box<Pending>)> {
        let r = pending.record();
        let topic = r.topic.clone();
        let key = r.key.clone();
        let value = r.value.clone();
        let (partition, timestamp) = (r.partition, r.timestamp);
        let headers = (!r.headers.is_empty()).then(|| {
            r.headers
                .iter()
                .fold(OwnedHeaders::new_with_capacity(r.headers.len()), |h, x| {
                    h.insert(RdHeader {
                        key: &x.key,
                        value: x.value.as_deref(),
                    })
                })
        });
        let mut br: BaseRecord<'_, [u8], [u8], Box<Pending>> =
            BaseRecord::with_opaque_to(&topic, pending);
        if let Some(k) = key.as_deref() {
            br = br.key(k);
        }
        if let Some(v) = value.as_deref() {
            br = br.payload(v);
        }
        if let Some(h) = headers {
            br = br.headers(h);
        }
        if let Some(p) = partition {
            br = br.partition(p);
        }
        if let Some(t) = timestamp {
            br = br.timestamp(t);
        }
        match self.inner.send(br) {
            Ok(()) => {
                self.counters.accept();
                Ok(())
            }
            Err((e, br)) => Err((e, br.delivery_opaque)),
        }
    }

    /// Waits until every accepted record has an outcome, or the timeout passes.
    pub fn flush(&self, timeout: Duration) -> Result<(), ProduceError> {
        match self.inner.flush(timeout) {
            Ok(()) => Ok(()),
            Err(_) => Err(ProduceError::FlushTimeout {
                pending: self.counters.in_flight(),
            }),
        }
    }

    /// Flushes within `timeout`, then hands every record still undelivered back to its sender
    /// as [`ProduceError::Purged`], and reports the totals.
    pub fn close(self, timeout: Duration) -> CloseReport {
        self.shutdown(timeout)
    }

    /// [`Producer::close`] for a shared producer: flushes within `timeout`, then hands every
    /// record still undelivered back to its sender as [`ProduceError::Purged`]. The producer
    /// stays usable.
    pub fn shutdown(&self, timeout: Duration) -> CloseReport {
        let mut purged = 0;
        if self.inner.flush(timeout).is_err() {
            purged = self.counters.in_flight();
            self.inner.purge(PurgeConfig::default().queue().inflight());
            // Serve the purge reports so each record reaches its sender.
            let _ = self.inner.flush(Duration::from_secs(5));
        }
        CloseReport {
            accepted: self.counters.accepted(),
            delivered: self.counters.delivered(),
            failed: self.counters.failed(),
            purged,
        }
    }

    /// Hands every record still queued or in flight back to its sender as
    /// [`ProduceError::Purged`] (a record already sent may still have been written). The
    /// producer stays usable.
    pub fn purge(&self) {
        self.inner.purge(PurgeConfig::default().queue().inflight());
    }

    /// Running totals of this producer.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }
}

fn is_queue_full(e: &KafkaError) -> bool {
    e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull)
}

fn refused(e: &KafkaError, pending: Pending, started: Instant) -> SendError {
    let (record, _waiter) = pending.into_parts();
    let error = if is_queue_full(e) {
        ProduceError::QueueFull {
            waited_ms: started.elapsed().as_millis() as u64,
        }
    } else {
        ProduceError::from(e)
    };
    SendError { error, record }
}
