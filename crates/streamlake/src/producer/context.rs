//! The librdkafka producer context: turns delivery reports into completions and counts them.

use super::error::{ProduceError, SendError};
use super::generation::Recovery;
use crate::metrics::producer::{ProducerMetrics, RecordOutcome, TopicLabel};
use crate::metrics::stats::Stats;
use crate::record::{Delivery, Record};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::ProducerContext;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// The result every accepted record ends with.
pub type Outcome = Result<Delivery, SendError>;

/// Running totals. `accepted - delivered - failed` records are in flight.
#[derive(Debug, Default)]
pub struct Counters {
    accepted: AtomicU64,
    delivered: AtomicU64,
    failed: AtomicU64,
    /// Times the client was recreated after a fatal error.
    pub(crate) recreated: AtomicU64,
    /// Records sent again by a recreated client.
    pub(crate) resent: AtomicU64,
    /// Sequence numbers of accepted records, in acceptance order.
    next_seq: AtomicU64,
}

impl Counters {
    pub(crate) fn accept(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }
    /// Counts a delivered record; call it after its sender has the outcome. Release, so whoever
    /// sees the count also sees what the sender's callback did.
    pub(crate) fn deliver(&self) {
        self.delivered.fetch_add(1, Ordering::Release);
    }
    /// Counts a failed record; call it after its sender has the error back.
    pub(crate) fn fail(&self) {
        self.failed.fetch_add(1, Ordering::Release);
    }
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::Relaxed)
    }
    /// Times the client was recreated after a fatal error (idempotence sequence failure).
    pub fn recreated(&self) -> u64 {
        self.recreated.load(Ordering::Relaxed)
    }
    /// Records re-sent by a recreated client (those in flight when the fatal error struck).
    pub fn resent(&self) -> u64 {
        self.resent.load(Ordering::Relaxed)
    }
    /// Records handed to librdkafka.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
    /// Records acknowledged by the cluster.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Acquire)
    }
    /// Records that ended in an error (handed back to the caller).
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Acquire)
    }
    /// Records accepted and not yet ended.
    pub fn in_flight(&self) -> u64 {
        self.accepted()
            .saturating_sub(self.delivered() + self.failed())
    }
}

/// Who is waiting for a record's outcome.
pub(crate) enum Completion {
    /// An `async send` future.
    Future(tokio::sync::oneshot::Sender<Outcome>),
    /// A callback from the high-throughput path.
    Callback(Box<dyn FnOnce(Outcome) + Send + Sync>),
}

impl Completion {
    pub(crate) fn complete(self, outcome: Outcome) {
        match self {
            // The receiver is gone only if the caller dropped the future: nobody is waiting.
            Self::Future(tx) => drop(tx.send(outcome)),
            Self::Callback(f) => f(outcome),
        }
    }
}

/// A record in flight: owned here until librdkafka reports its outcome. If it is ever dropped
/// without an outcome, its owner is told it was purged, with the record.
pub(crate) struct Pending {
    /// Shared only while the record is handed to librdkafka (which reads it in place, without
    /// copies of topic, key or value); owned again by the time its outcome arrives.
    record: Option<Arc<Record>>,
    done: Option<Completion>,
    /// Acceptance order, so records re-sent after a fatal error keep their order.
    pub(crate) seq: u64,
    /// Times the record was re-sent by a recreated client.
    pub(crate) resends: u32,
    /// An invalid event written to a dead-letter topic: on delivery its outcome is
    /// `dead_lettered`, not `delivered`.
    pub(crate) dead_letter: bool,
    /// When the record was first accepted (delivery latency runs from here).
    pub(crate) sent_at: std::time::Instant,
}

impl Pending {
    pub(crate) fn new(record: Record, done: Completion, seq: u64) -> Box<Self> {
        Box::new(Self {
            record: Some(Arc::new(record)),
            done: Some(done),
            seq,
            resends: 0,
            dead_letter: false,
            sent_at: std::time::Instant::now(),
        })
    }

    /// Ends the record with `error`, handing it back to its sender.
    pub(crate) fn fail(self, error: ProduceError) {
        let (record, done) = self.into_parts();
        tracing::debug!(topic = %record.topic, ingestion_id = record.ingestion_id(),
            error = %error, "record not delivered; handed back");
        done.complete(Err(SendError { error, record }));
    }

    /// A second handle on the record, to read it while the `Pending` itself moves into
    /// librdkafka. Drop it as soon as the record is handed over.
    pub(crate) fn shared(&self) -> Arc<Record> {
        Arc::clone(
            self.record
                .as_ref()
                .expect("record present until completion"),
        )
    }

    /// Takes the record and the waiter out, leaving nothing for `Drop` to do.
    pub(crate) fn into_parts(mut self) -> (Record, Completion) {
        let record = owned(self.record.take().expect("record present until completion"));
        let done = self
            .done
            .take()
            .expect("completion present until completion");
        (record, done)
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let (Some(record), Some(done)) = (self.record.take(), self.done.take()) {
            let record = owned(record);
            tracing::debug!(topic = %record.topic, ingestion_id = record.ingestion_id(),
                "record purged before its outcome; handed back");
            done.complete(Err(SendError {
                error: ProduceError::Purged,
                record,
            }));
        }
    }
}

/// The record itself: unwrapped when no other handle is left, which is the rule (the handle of
/// [`Pending::shared`] is dropped right after the hand-over); copied otherwise.
fn owned(record: Arc<Record>) -> Record {
    Arc::try_unwrap(record).unwrap_or_else(|shared| (*shared).clone())
}

/// Context shared with librdkafka's threads; one per client generation.
pub(crate) struct Context {
    pub counters: Arc<Counters>,
    /// The last client-level error (authentication, TLS, brokers down), so a record that times
    /// out can say why the cluster did not answer.
    pub last_error: std::sync::Mutex<Option<String>>,
    /// Which client generation this is.
    pub generation: u64,
    /// Records enqueued on this generation whose report has not arrived.
    pub outstanding: AtomicU64,
    /// Set once this generation has hit a fatal error: its failed records are parked for the
    /// next generation instead of being handed back.
    pub fatal: AtomicBool,
    /// Where parked records wait, and who recreates the client.
    pub recovery: Arc<Recovery>,
    /// Metrics shared by every generation.
    pub metrics: ProducerMetrics,
    /// Whether failures are counted as outcomes here (a spooling producer counts its own).
    pub count_failures: Arc<AtomicBool>,
    /// Set once StreamLake has asked this client to purge. Until then a purged record can only
    /// come from librdkafka's own purge after a fatal error.
    pub purged_by_us: AtomicBool,
}

impl ClientContext for Context {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        crate::logging::librdkafka_log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        crate::logging::librdkafka_error(&error, reason);
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal) && self.recovery.enabled() {
            self.fatal.store(true, Ordering::SeqCst);
            self.recovery.trigger(self.generation, reason);
        }
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(reason.to_owned());
        }
    }

    fn stats_raw(&self, raw: &[u8]) {
        let Some(stats) = Stats::parse(raw) else {
            return;
        };
        let m = &self.metrics;
        m.queue_records.set(stats.msg_cnt as i64);
        m.queue_bytes.set(stats.msg_size as i64);
        for (topic, t) in &stats.topics {
            let label = TopicLabel {
                topic: topic.clone(),
            };
            if t.batchcnt.cnt > 0 {
                m.batch_bytes
                    .get_or_create(&label)
                    .set(t.batchsize.avg as f64);
                m.batch_records
                    .get_or_create(&label)
                    .set(t.batchcnt.avg as f64);
            }
        }
        let sent: u64 = stats.brokers.values().map(|b| b.txbytes).sum();
        if sent > 0 {
            m.compression_ratio
                .set(m.bytes_total.get() as f64 / sent as f64);
        }
        m.brokers.update(&stats);
    }
}

impl ProducerContext for Context {
    type DeliveryOpaque = Box<Pending>;

    fn delivery(&self, result: &DeliveryResult<'_>, pending: Box<Pending>) {
        match result {
            Ok(msg) => {
                self.metrics.ended();
                let latency = pending.sent_at.elapsed();
                let dead_letter = pending.dead_letter;
                let (record, done) = (*pending).into_parts();
                self.metrics
                    .delivered(&record.topic, record.size() as u64, latency, dead_letter);
                tracing::trace!(topic = %record.topic, partition = msg.partition(),
                    offset = msg.offset(), ingestion_id = record.ingestion_id(), "record delivered");
                done.complete(Ok(Delivery {
                    topic: record.topic,
                    partition: msg.partition(),
                    offset: msg.offset(),
                    timestamp: msg.timestamp().to_millis(),
                }));
                // Counted only once the sender has its outcome: a flush that sees nothing in
                // flight returns after every sender's callback has run.
                self.counters.deliver();
            }
            Err((error, _)) => {
                let mut error = ProduceError::from(error);
                // On a fatal error librdkafka purges its queues itself, and the reports of
                // those records may arrive before the fatal error event does.
                let fatal_purge = matches!(error, ProduceError::Purged)
                    && !self.purged_by_us.load(Ordering::SeqCst);
                if self.recovery.enabled()
                    && !self.recovery.closing()
                    && !error.is_permanent()
                    && (error.is_fatal() || fatal_purge || self.fatal.load(Ordering::SeqCst))
                {
                    // The client is unusable; the record goes to the next one, in order.
                    self.fatal.store(true, Ordering::SeqCst);
                    self.recovery.trigger(self.generation, &error.to_string());
                    self.recovery.park(pending);
                    self.outstanding.fetch_sub(1, Ordering::SeqCst);
                    return;
                }
                self.metrics.ended();
                if self.count_failures.load(Ordering::Relaxed) {
                    self.metrics.outcome(RecordOutcome::Failed(error.kind()));
                }
                if let ProduceError::Timeout { detail } = &mut error {
                    if let Some(last) = self.last_error.lock().ok().and_then(|l| l.clone()) {
                        detail.push_str("; last client error: ");
                        detail.push_str(&last);
                    }
                }
                (*pending).fail(error);
                self.counters.fail();
            }
        }
        self.outstanding.fetch_sub(1, Ordering::SeqCst);
    }
}
