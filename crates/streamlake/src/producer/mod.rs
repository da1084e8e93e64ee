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
//! - A fatal error of the client (an idempotence sequence failure) does not end the records
//!   it touched: the client is recreated and they are sent again, in acceptance order, before
//!   any newer record (see `generation` for the details; at least once for records that were
//!   in flight).
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
mod generation;
mod order;
mod spooling;
mod transaction;
pub mod transform;

pub use circuit::{Admit, Circuit, CircuitConfig, CircuitState};
pub use context::{Counters, Outcome};
pub use error::{ProduceError, SendError};
pub use spooling::{
    Accepted, EmergencyReport, EmergencyStop, SpoolCounts, SpoolingCloseReport, SpoolingProducer,
};

use crate::config::{ClientKind, Config};
use crate::record::{Delivery, Record};
pub use generation::MAX_RESENDS;
pub use transaction::{TransactionError, TransactionalProducer};

use crate::metrics::producer::{ProducerMetrics, RecordOutcome};
use context::{Completion, Pending};
use generation::Core;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::Producer as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a send waits before trying a full queue again.
const QUEUE_FULL_BACKOFF: Duration = Duration::from_millis(1);

/// A Kafka producer with production defaults. Cheap to share behind an `Arc`; all methods take
/// `&self` except [`Producer::close`].
pub struct Producer {
    core: Arc<Core>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("counters", &self.core.counters)
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
        Self::with_metrics(config, ProducerMetrics::default())
    }

    /// A producer that counts into `metrics` (shared with whoever registered them).
    pub fn with_metrics(config: &Config, metrics: ProducerMetrics) -> Result<Self, ProduceError> {
        let cc = config.client_config(ClientKind::Producer)?;
        // A transactional producer is never recreated: its fatal errors mean another instance
        // has taken over the transactional id.
        let recover = cc.get("transactional.id").is_none();
        let core = Core::new(
            cc,
            Duration::from_millis(config.producer.delivery_timeout_ms),
            recover,
            metrics,
        )?;
        Ok(Self { core })
    }

    /// Sends one record and waits for the cluster's acknowledgement.
    pub async fn send(&self, record: Record) -> Result<Delivery, SendError> {
        self.send_then(record, || {}).await
    }

    /// [`Producer::send`], calling `in_client` once the record is in the client (before its
    /// outcome is known; not called when the record is refused).
    pub(crate) async fn send_then(
        &self,
        record: Record,
        in_client: impl FnOnce(),
    ) -> Result<Delivery, SendError> {
        let delivering = self.enqueue_marked(record, false, None).await?;
        in_client();
        delivering.await
    }

    /// Hands a record to the client, waiting (asynchronously) for queue room, and returns at
    /// once with a future of its outcome. Records enqueued one after the other keep that order
    /// in their partition, however full the queue is: await each `enqueue` before the next,
    /// then await the deliveries together.
    ///
    /// `deadline` bounds the wait for queue room (the delivery budget bounds it in any case);
    /// past it the record comes back with [`ProduceError::QueueFull`].
    ///
    /// ```no_run
    /// # async fn f(producer: &streamlake::Producer) -> Result<(), streamlake::producer::SendError> {
    /// use streamlake::Record;
    /// let mut deliveries = Vec::new();
    /// for i in 0..3 {
    ///     let record = Record::new("orders", format!("event {i}")).key("ORD-1");
    ///     deliveries.push(producer.enqueue(record, None).await?);
    /// }
    /// for d in futures::future::join_all(deliveries).await {
    ///     println!("offset {}", d?.offset);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn enqueue(
        &self,
        record: Record,
        deadline: Option<Instant>,
    ) -> Result<DeliveryFuture, SendError> {
        self.enqueue_marked(record, false, deadline).await
    }

    /// [`Producer::enqueue`]; with `dead_letter` (an invalid event going to a dead-letter
    /// topic) its outcome is counted as `dead_lettered` instead of `delivered`.
    pub(crate) async fn enqueue_marked(
        &self,
        record: Record,
        dead_letter: bool,
        deadline: Option<Instant>,
    ) -> Result<DeliveryFuture, SendError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut pending = Pending::new(
            record,
            Completion::Future(tx),
            self.core.counters.next_seq(),
        );
        pending.dead_letter = dead_letter;
        let started = Instant::now();
        let mut attempt = Some(pending);
        while let Some(pending) = attempt.take() {
            let in_time = deadline.is_none_or(|d| Instant::now() < d);
            match self.step(pending, started, in_time) {
                Step::Done => break,
                Step::Wait(back) => {
                    attempt = Some(back);
                    tokio::time::sleep(QUEUE_FULL_BACKOFF).await;
                }
                Step::Refused(e) => return Err(e),
            }
        }
        Ok(DeliveryFuture { rx })
    }

    /// Sends one record without waiting; `on_done` is called once with its outcome, on the
    /// producer's poll thread. Blocks the calling thread while the local queue is full
    /// (back-pressure). If the record is refused, `on_done` is not called and the record is
    /// returned in the error.
    pub fn send_with_callback<F>(&self, record: Record, on_done: F) -> Result<(), SendError>
    where
        F: FnOnce(Outcome) + Send + Sync + 'static,
    {
        self.send_with_callback_then(record, on_done, || {})
    }

    /// [`Producer::send_with_callback`], calling `in_client` once the record is in the client
    /// (not called when the record is refused).
    pub(crate) fn send_with_callback_then<F>(
        &self,
        record: Record,
        on_done: F,
        in_client: impl FnOnce(),
    ) -> Result<(), SendError>
    where
        F: FnOnce(Outcome) + Send + Sync + 'static,
    {
        let pending = Pending::new(
            record,
            Completion::Callback(Box::new(on_done)),
            self.core.counters.next_seq(),
        );
        let started = Instant::now();
        let mut attempt = Some(pending);
        while let Some(pending) = attempt.take() {
            match self.step(pending, started, true) {
                Step::Done => {
                    in_client();
                    return Ok(());
                }
                Step::Wait(back) => {
                    attempt = Some(back);
                    std::thread::sleep(QUEUE_FULL_BACKOFF);
                }
                Step::Refused(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// One try at handing a record to the client.
    /// `in_time`: the caller's own deadline has not passed.
    fn step(&self, pending: Box<Pending>, started: Instant, in_time: bool) -> Step {
        let in_budget = in_time && started.elapsed() < self.core.delivery_timeout;
        // While a recreated client takes over, new records wait behind the re-sent ones.
        if self.core.recovery.active() && in_budget {
            return Step::Wait(pending);
        }
        let generation = self.core.current();
        match generation.enqueue(pending) {
            Ok(()) => {
                self.core.counters.accept();
                self.core.metrics.accepted();
                Step::Done
            }
            Err((e, back)) if is_queue_full(&e) && in_budget => Step::Wait(back),
            Err((e, back))
                if e.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal)
                    && self.core.recovery.enabled()
                    && in_budget =>
            {
                generation
                    .client
                    .context()
                    .fatal
                    .store(true, std::sync::atomic::Ordering::SeqCst);
                self.core
                    .recovery
                    .trigger(generation.id(), "the client refused a record as fatal");
                Step::Wait(back)
            }
            Err((e, back)) => {
                let refused = refused(&e, *back, started);
                if self
                    .core
                    .count_failures
                    .load(std::sync::atomic::Ordering::Relaxed)
                {
                    self.core
                        .metrics
                        .outcome(RecordOutcome::Failed(refused.error.kind()));
                }
                Step::Refused(refused)
            }
        }
    }

    /// Waits until every accepted record has an outcome, or the timeout passes.
    pub fn flush(&self, timeout: Duration) -> Result<(), ProduceError> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let _ = self
                .core
                .current()
                .client
                .flush(left.min(Duration::from_millis(100)));
            if self.core.counters.in_flight() == 0 {
                return Ok(());
            }
            if left.is_zero() {
                return Err(ProduceError::FlushTimeout {
                    pending: self.core.counters.in_flight(),
                });
            }
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
        if self.flush(timeout).is_err() {
            purged = self.core.counters.in_flight();
            self.core.set_closing(true);
            self.purge();
            // Serve the purge reports so each record reaches its sender (a recovery under way
            // hands its parked records back too).
            let _ = self.flush(Duration::from_secs(5));
            self.core.set_closing(false);
        }
        let c = &self.core.counters;
        CloseReport {
            accepted: c.accepted(),
            delivered: c.delivered(),
            failed: c.failed(),
            purged,
        }
    }

    /// Hands every record still queued or in flight back to its sender as
    /// [`ProduceError::Purged`] (a record already sent may still have been written). The
    /// producer stays usable.
    pub fn purge(&self) {
        self.core.current().purge();
    }

    /// The cluster's topics (or just `topic`) as this producer's own client sees them: one
    /// metadata request over its connections, so a readiness probe needs no client of its own.
    pub fn describe(
        &self,
        topic: Option<&str>,
        timeout: Duration,
    ) -> Result<Vec<crate::admin::TopicInfo>, crate::admin::AdminError> {
        crate::admin::describe_on(self.core.current().client.client(), topic, timeout)
    }

    /// Running totals of this producer.
    pub fn counters(&self) -> &Counters {
        &self.core.counters
    }

    /// This producer's metrics (register them with [`ProducerMetrics::register`]).
    pub fn metrics(&self) -> &ProducerMetrics {
        &self.core.metrics
    }

    /// Whether records that end in an error are counted as `failed` outcomes (default). A
    /// caller that keeps failed records itself (a spool) counts their outcome instead.
    pub fn count_failures(&self, yes: bool) {
        self.core
            .count_failures
            .store(yes, std::sync::atomic::Ordering::Relaxed);
    }

    /// The running totals, shared: readable after the producer has moved (a signal handler,
    /// a metrics task).
    pub fn counters_handle(&self) -> Arc<Counters> {
        Arc::clone(&self.core.counters)
    }
}

/// The outcome of a record [`Producer::enqueue`] handed to the client.
#[derive(Debug)]
#[must_use = "the record's outcome arrives through this future"]
pub struct DeliveryFuture {
    rx: tokio::sync::oneshot::Receiver<Outcome>,
}

impl std::future::Future for DeliveryFuture {
    type Output = Result<Delivery, SendError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.rx).poll(cx).map(|r| match r {
            Ok(outcome) => outcome,
            // `Pending` completes on drop, so the sender is never dropped unanswered while the
            // client lives; this only happens if librdkafka leaked the record.
            Err(_) => Err(SendError {
                error: ProduceError::Purged,
                record: Record::new("", bytes::Bytes::new()),
            }),
        })
    }
}

/// Where one try at handing over a record left it.
enum Step {
    Done,
    Wait(Box<Pending>),
    Refused(SendError),
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
