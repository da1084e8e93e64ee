//! The spooling producer: a [`Producer`] with a circuit breaker and a disk spool, so a record
//! accepted while Kafka is away waits on disk instead of being lost or held in memory.
//!
//! # Outcomes
//! Every record given to [`SpoolingProducer::send`] ends as exactly one of:
//! - [`Accepted::Delivered`]: acknowledged by Kafka, with its offset;
//! - [`Accepted::Spooled`]: on disk (per the spool's fsync policy), to be replayed in order when
//!   the cluster is back;
//! - an error with the record handed back: permanent errors (too large, unknown topic, not
//!   authorized), fatal producer errors, or a spool that stayed full (`spool.on_full`).
//!
//! # Order
//! While the spool holds records, new records are appended behind them, so records of one key
//! are replayed in the order they were accepted. When sending switches to the spool, records
//! still in the client are purged and spooled first, and new records wait for that (at most the
//! delivery timeout), so the order of a key holds across the switch. Failed records are
//! spooled in the order they were accepted, not in the order librdkafka reports them (a purge
//! reports the youngest first). A purged record the broker had already written is written
//! again on replay (at least once).
//!
//! # Delivery timeout
//! With a spool, `producer.delivery_timeout_ms` is enforced here, not by librdkafka: once the
//! oldest record in the client has waited that long, *everything* in the client is purged at
//! once and sending switches to the spool. librdkafka would time records out one by one and
//! then send the younger records behind them as soon as the broker is back, so a younger record
//! of a key could be written before an older one that is spooled. librdkafka's own timeout is
//! set later (by a quarter, at least 2 s) as a backstop.
//!
//! # Replay
//! A background task replays the spool whenever the circuit lets records through: a batch at a
//! time, acknowledged in the spool only once Kafka has acknowledged it. A failed batch is
//! handed out again from the first unacknowledged record (at least once: records of the batch
//! already written may be written again). A record Kafka refuses for good during replay (too
//! large, unknown topic, not authorized) is logged at `error` with its topic and key, counted
//! in `replay_rejected`, and skipped so it cannot block the spool.

use super::circuit::{Admit, Circuit, CircuitConfig, CircuitState};
use super::order::Order;
use super::{CloseReport, ProduceError, Producer, SendError};
use crate::config::Config;
use crate::metrics::RecordOutcome;
use crate::record::{Delivery, Record};
use crate::spool::{OpenReport, Spool, SpoolConfig};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// Records handed out per replay batch.
const REPLAY_BATCH: usize = 500;
/// How often the replay task looks at the spool when there is nothing to do.
const REPLAY_IDLE: Duration = Duration::from_millis(200);
/// How often the watchdog looks at the age of the oldest record in the client.
const WATCH_EVERY: Duration = Duration::from_millis(50);
/// The least time between two purges by the watchdog.
const WATCH_GAP: Duration = Duration::from_secs(1);

/// librdkafka's own delivery timeout when the spool enforces `budget`: later, so the spool
/// always acts first.
fn backstop(budget_ms: u64) -> u64 {
    budget_ms.saturating_add((budget_ms / 4).max(2_000))
}

/// How an accepted record ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Accepted {
    /// Acknowledged by Kafka.
    Delivered(Delivery),
    /// On disk in the spool, to be replayed.
    Spooled,
}

/// Totals of a [`SpoolingProducer`].
#[derive(Debug, Default)]
pub struct SpoolCounts {
    /// Records appended to the spool.
    pub spooled: AtomicU64,
    /// Spooled records delivered by replay.
    pub replayed: AtomicU64,
    /// Spooled records Kafka refused for good during replay (logged and skipped).
    pub replay_rejected: AtomicU64,
}

/// What [`SpoolingProducer::close`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolingCloseReport {
    /// The producer's own totals.
    pub producer: CloseReport,
    /// Records appended to the spool over the producer's life (undelivered ones at close
    /// included).
    pub spooled: u64,
    /// Spooled records replayed to Kafka.
    pub replayed: u64,
    /// Records still in the spool, replayed by the next producer on the same folder.
    pub left_in_spool: u64,
}

struct Shared {
    producer: Producer,
    spool: Option<Spool>,
    circuit: Circuit,
    /// Set while the spool may hold records: new records then queue behind them.
    draining: AtomicBool,
    /// Counts switches to the spool. A direct send that sees it change while it hands its
    /// record to the client purges again, so its record cannot overtake the spooled ones.
    switches: AtomicU64,
    /// Records in the client (direct sends and replays), and failed direct sends held until
    /// every older record has left the client, so they are spooled in acceptance order.
    order: Order<Held>,
    /// `producer.delivery_timeout_ms`, enforced by the watchdog when there is a spool.
    budget: Duration,
    /// Held while deciding to spool and appending, and while the replay task decides that the
    /// spool is empty, so no record slips past the ones on disk.
    mode: Mutex<()>,
    counts: SpoolCounts,
    stop: AtomicBool,
    /// Direct sends whose outcome is not known yet (or not yet spooled).
    direct: AtomicU64,
    /// How long a record about to be spooled waits for older direct sends to settle.
    settle_wait: Duration,
}

/// A producer that spools what Kafka cannot take. Create it inside a tokio runtime (the replay
/// task runs on it).
pub struct SpoolingProducer {
    shared: Arc<Shared>,
    replayer: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for SpoolingProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpoolingProducer")
            .field("circuit", &self.shared.circuit.state())
            .field("counts", &self.shared.counts)
            .finish_non_exhaustive()
    }
}

impl SpoolingProducer {
    /// A producer for `config`, with the spool of `spool` (off when `spool.dir` is unset: then
    /// an open circuit fails records at once) and the breaker of `circuit`. Returns what
    /// opening the spool found (damaged segments are reported there).
    pub fn new(
        config: &Config,
        spool: &SpoolConfig,
        circuit: CircuitConfig,
    ) -> Result<(Self, Option<OpenReport>), ProduceError> {
        let producer = if spool.dir.is_some() {
            let mut client = config.clone();
            client.producer.delivery_timeout_ms = backstop(config.producer.delivery_timeout_ms);
            Producer::new(&client)?
        } else {
            Producer::new(config)?
        };
        // Records that fail here are spooled or handed back; their outcome is counted here.
        producer.count_failures(false);
        let (spool, report) = match &spool.dir {
            Some(dir) => {
                let (s, r) = Spool::open(dir, spool.clone())
                    .map_err(|e| ProduceError::Config(format!("spool: {e}")))?;
                (Some(s), Some(r))
            }
            None => (None, None),
        };
        let pending = spool
            .as_ref()
            .is_some_and(|s| s.status().map_or(true, |st| st.pending_records > 0));
        let shared = Arc::new(Shared {
            producer,
            spool,
            circuit: Circuit::new(circuit),
            // Whatever a previous run left is replayed before anything new is sent.
            draining: AtomicBool::new(pending),
            switches: AtomicU64::new(0),
            order: Order::default(),
            budget: Duration::from_millis(config.producer.delivery_timeout_ms),
            mode: Mutex::new(()),
            counts: SpoolCounts::default(),
            stop: AtomicBool::new(false),
            direct: AtomicU64::new(0),
            settle_wait: Duration::from_millis(config.producer.delivery_timeout_ms),
        });
        let replayer = shared
            .spool
            .is_some()
            .then(|| tokio::spawn(replay_loop(Arc::clone(&shared))));
        if shared.spool.is_some() {
            let weak = Arc::downgrade(&shared);
            std::thread::Builder::new()
                .name("streamlake-watchdog".into())
                .spawn(move || watchdog(weak))
                .map_err(|e| ProduceError::Create(format!("watchdog thread: {e}")))?;
        }
        Ok((Self { shared, replayer }, report))
    }

    /// A producer with the spool and breaker of `config` (`spool`, `producer.circuit`).
    pub fn from_config(config: &Config) -> Result<(Self, Option<OpenReport>), ProduceError> {
        Self::new(config, &config.spool, config.producer.circuit.clone())
    }

    /// Sends one record: delivered, spooled, or an error with the record.
    pub async fn send(&self, record: Record) -> Result<Accepted, SendError> {
        let s = &self.shared;
        let Some(ticket) = Direct::take(&self.shared) else {
            let deadline = s.start_draining(false);
            while !s.older_settled(deadline) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            return s.spool_new(record);
        };
        if s.spool.is_none() && s.refuses() {
            return Err(s.failed(SendError {
                error: ProduceError::CircuitOpen,
                record,
            }));
        }
        let outcome = s
            .producer
            .send_then(record, || s.in_client(ticket.switches))
            .await;
        let (tx, rx) = tokio::sync::oneshot::channel();
        s.settle(outcome, ticket, move |r| {
            let _ = tx.send(r);
        });
        // A held record is always released once the older ones leave the client.
        rx.await.unwrap_or_else(|_| {
            Err(SendError {
                error: ProduceError::Purged,
                record: Record::new("", bytes::Bytes::new()),
            })
        })
    }

    /// Sends one record without waiting; `on_done` is called once with its outcome (on the
    /// producer's poll thread, or at once when the record goes straight to the spool). A
    /// record refused before it was accepted comes back in the error and `on_done` is not
    /// called.
    pub fn send_with_callback<F>(&self, record: Record, on_done: F) -> Result<(), SendError>
    where
        F: FnOnce(Result<Accepted, SendError>) + Send + Sync + 'static,
    {
        let s = &self.shared;
        let Some(ticket) = Direct::take(&self.shared) else {
            let deadline = s.start_draining(false);
            while !s.older_settled(deadline) {
                std::thread::sleep(Duration::from_millis(1));
            }
            on_done(s.spool_new(record));
            return Ok(());
        };
        if s.spool.is_none() && s.refuses() {
            return Err(s.failed(SendError {
                error: ProduceError::CircuitOpen,
                record,
            }));
        }
        let shared = Arc::clone(&self.shared);
        let switches = ticket.switches;
        let sent = s.producer.send_with_callback_then(
            record,
            move |outcome| shared.settle(outcome, ticket, on_done),
            || s.in_client(switches),
        );
        sent.map_err(|e| s.failed(e))
    }

    /// The circuit's state.
    pub fn circuit(&self) -> CircuitState {
        self.shared.circuit.state()
    }

    /// Running totals of the spool side.
    pub fn counts(&self) -> &SpoolCounts {
        &self.shared.counts
    }

    /// The producer underneath (its counters count direct sends and replays).
    pub fn producer(&self) -> &Producer {
        &self.shared.producer
    }

    /// Whether new records currently queue behind spooled ones (until the replay task finds
    /// the spool empty).
    pub fn draining(&self) -> bool {
        self.shared.draining.load(Ordering::SeqCst)
    }

    /// Records in the spool not yet replayed.
    pub fn spooled_pending(&self) -> u64 {
        self.shared
            .spool
            .as_ref()
            .and_then(|s| s.status().ok())
            .map_or(0, |st| st.pending_records)
    }

    /// A handle that can move everything still in flight to the spool at once, from another
    /// thread (for a second signal, while [`SpoolingProducer::close`] is still waiting).
    pub fn emergency(&self) -> EmergencyStop {
        EmergencyStop(Arc::clone(&self.shared))
    }

    /// Stops the replay task, flushes within `timeout`, and spools every record still
    /// undelivered (their `send` calls return [`Accepted::Spooled`]). Call it after the last
    /// `send` has returned or been dropped.
    pub async fn close(mut self, timeout: Duration) -> SpoolingCloseReport {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(task) = self.replayer.take() {
            let _ = task.await;
        }
        let shared = Arc::clone(&self.shared);
        let producer = tokio::task::spawn_blocking(move || shared.producer.shutdown(timeout))
            .await
            .unwrap_or(CloseReport {
                accepted: 0,
                delivered: 0,
                failed: 0,
                purged: 0,
            });
        let s = &self.shared;
        if let Some(spool) = &s.spool {
            let _ = spool.sync();
        }
        s.publish();
        SpoolingCloseReport {
            producer,
            spooled: s.counts.spooled.load(Ordering::Relaxed),
            replayed: s.counts.replayed.load(Ordering::Relaxed),
            left_in_spool: self.spooled_pending(),
        }
    }
}

/// See [`SpoolingProducer::emergency`].
pub struct EmergencyStop(Arc<Shared>);

impl std::fmt::Debug for EmergencyStop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmergencyStop").finish_non_exhaustive()
    }
}

/// What [`EmergencyStop::spool_in_flight`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmergencyReport {
    /// Records appended to the spool over the producer's life.
    pub spooled: u64,
    /// Records that still had no outcome when the wait ran out (without a spool: every
    /// record in flight).
    pub unsettled: u64,
}

impl EmergencyStop {
    /// Stops replay, takes every record still in the client back (without waiting for Kafka)
    /// and spools it, waits at most `wait` for that, and syncs the spool to disk. Without a
    /// spool nothing is moved and every record in flight is reported as unsettled.
    pub fn spool_in_flight(&self, wait: Duration) -> EmergencyReport {
        let s = &self.0;
        s.stop.store(true, Ordering::SeqCst);
        if s.spool.is_some() {
            s.start_draining(true);
            let deadline = Instant::now() + wait;
            while s.direct.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            if let Some(spool) = &s.spool {
                let _ = spool.sync();
            }
        }
        EmergencyReport {
            spooled: s.counts.spooled.load(Ordering::Relaxed),
            unsettled: if s.spool.is_some() {
                s.direct.load(Ordering::SeqCst)
            } else {
                s.producer.counters().in_flight()
            },
        }
    }
}

impl Shared {
    /// Counts a record handed back to its sender.
    fn failed(&self, e: SendError) -> SendError {
        self.producer
            .metrics()
            .outcome(RecordOutcome::Failed(e.error.kind()));
        e
    }

    /// Publishes the spool's size and the circuit's state.
    fn publish(&self) {
        let m = self.producer.metrics();
        m.circuit(self.circuit.state() == CircuitState::Open);
        if let Some(st) = self.spool.as_ref().and_then(|s| s.status().ok()) {
            m.spool(st.pending_records, st.bytes);
        }
    }

    /// Whether the circuit keeps new records from Kafka now.
    fn refuses(&self) -> bool {
        self.circuit.admit() == Admit::Refuse
    }

    /// From now on new records queue behind the spool. Direct sends still in the client (and
    /// with `all`, replayed records too) are purged, so they fail at once and are spooled
    /// before any newer record: per-key order holds across the switch (a purged record the
    /// broker had already written is written again on replay: at least once). Returns how long
    /// a new record waits for that.
    fn start_draining(&self, all: bool) -> Instant {
        let _mode = self.mode.lock().expect("lock");
        self.draining.store(true, Ordering::SeqCst);
        self.switches.fetch_add(1, Ordering::SeqCst);
        if all || self.direct.load(Ordering::SeqCst) > 0 {
            self.producer.purge();
        }
        Instant::now() + self.settle_wait
    }

    /// A direct send's record is in the client; `switches` is what its [`Direct`] saw. If
    /// sending switched to the spool meanwhile, the purge of that switch may have come before
    /// the record: purge again, so it is spooled too.
    fn in_client(&self, switches: u64) {
        if self.spool.is_some() && self.switches.load(Ordering::SeqCst) != switches {
            self.producer.purge();
        }
    }

    /// Whether older direct sends have settled (or `deadline` has passed), so a new record can
    /// be spooled behind them.
    fn older_settled(&self, deadline: Instant) -> bool {
        self.direct.load(Ordering::SeqCst) == 0 || Instant::now() >= deadline
    }

    /// Spools a new record, behind everything spooled before it.
    fn spool_new(&self, record: Record) -> Result<Accepted, SendError> {
        let _mode = self.mode.lock().expect("lock");
        self.spool_record(record)
    }

    /// Gives a direct send's outcome to `reply`: a retriable failure is spooled, once every
    /// older record has left the client (see `order`). The send counts as settled only once
    /// its record is in the spool, so a new record waiting to be spooled cannot get ahead of it.
    fn settle<F>(&self, outcome: Result<Delivery, SendError>, ticket: Direct, reply: F)
    where
        F: FnOnce(Result<Accepted, SendError>) + Send + 'static,
    {
        match outcome {
            Err(e) if e.error.is_retriable() && self.spool.is_some() => {
                self.circuit.failure();
                self.producer
                    .metrics()
                    .circuit(self.circuit.state() == CircuitState::Open);
                // The first failure switches to the spool: younger records still in the
                // client are purged, so none of them is written before this one.
                if !self.draining.load(Ordering::SeqCst) {
                    self.start_draining(false);
                }
                let n = ticket.disarm();
                let held = Held {
                    record: e.record,
                    reply: Box::new(reply),
                };
                let mut ready = Vec::new();
                self.order.hold(n, held, |h| ready.push(self.release(h)));
                for (reply, result) in ready {
                    reply(result);
                }
            }
            outcome => {
                let result = self.settled(outcome);
                drop(ticket);
                reply(result);
            }
        }
    }

    /// A held record may go: spooled, and its send settled.
    fn release(&self, held: Held) -> (Reply, Result<Accepted, SendError>) {
        let result = {
            let _mode = self.mode.lock().expect("lock");
            self.spool_record(held.record)
        };
        self.direct.fetch_sub(1, Ordering::SeqCst);
        (held.reply, result)
    }

    /// Record `n` left the client; replies to the held records that may go now.
    fn leave(&self, n: u64) {
        let mut ready = Vec::new();
        self.order.leave(n, |h| ready.push(self.release(h)));
        for (reply, result) in ready {
            reply(result);
        }
    }

    /// An outcome that is the caller's as it is (without a spool, failures are handed back).
    fn settled(&self, outcome: Result<Delivery, SendError>) -> Result<Accepted, SendError> {
        match outcome {
            Ok(d) => {
                self.circuit.success();
                self.producer.metrics().circuit(false);
                Ok(Accepted::Delivered(d))
            }
            Err(e) if e.error.is_retriable() => {
                self.circuit.failure();
                self.producer
                    .metrics()
                    .circuit(self.circuit.state() == CircuitState::Open);
                Err(self.failed(e))
            }
            Err(e) => Err(self.failed(e)),
        }
    }

    /// Appends under the mode lock (the caller holds it, or the spool is the only path).
    fn spool_record(&self, record: Record) -> Result<Accepted, SendError> {
        let spool = self.spool.as_ref().expect("spooling needs a spool");
        match spool.append(&record) {
            Ok(()) => {
                tracing::debug!(topic = %record.topic, ingestion_id = record.ingestion_id(),
                    "record spooled");
                self.counts.spooled.fetch_add(1, Ordering::Relaxed);
                self.producer.metrics().outcome(RecordOutcome::Spooled);
                Ok(Accepted::Spooled)
            }
            Err(e) => Err(self.failed(SendError {
                error: ProduceError::Spool(e.to_string()),
                record,
            })),
        }
    }
}

async fn replay_loop(s: Arc<Shared>) {
    let spool = s.spool.as_ref().expect("replay needs a spool");
    while !s.stop.load(Ordering::SeqCst) {
        s.publish();
        if !s.draining.load(Ordering::SeqCst) {
            tokio::time::sleep(REPLAY_IDLE).await;
            continue;
        }
        let max = match s.circuit.admit() {
            Admit::Refuse => {
                tokio::time::sleep(REPLAY_IDLE).await;
                continue;
            }
            Admit::Probe => 1,
            Admit::Send => REPLAY_BATCH,
        };
        let batch = {
            let _mode = s.mode.lock().expect("lock");
            let batch = spool.replay_batch(max);
            if matches!(&batch, Ok(b) if b.is_empty()) {
                s.draining.store(false, Ordering::SeqCst);
            }
            batch
        };
        let batch = match batch {
            Ok(b) if b.is_empty() => continue,
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the spool");
                tokio::time::sleep(REPLAY_IDLE).await;
                continue;
            }
        };
        let (positions, records): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        let outcomes = futures::future::join_all(records.into_iter().map(|r| {
            let shared = Arc::clone(&s);
            async move {
                let _in_client = Replayed::enter(&shared);
                shared.producer.send(r).await
            }
        }))
        .await;
        // Acknowledge the longest prefix that is done (delivered, or refused for good).
        let mut done = None;
        let mut failed = false;
        for (pos, outcome) in positions.iter().zip(outcomes) {
            match outcome {
                Ok(_) => {
                    s.counts.replayed.fetch_add(1, Ordering::Relaxed);
                    s.producer.metrics().outcome(RecordOutcome::Replayed);
                }
                Err(e) if e.error.is_permanent() => {
                    s.counts.replay_rejected.fetch_add(1, Ordering::Relaxed);
                    s.producer
                        .metrics()
                        .outcome(RecordOutcome::Failed(e.error.kind()));
                    tracing::error!(topic = %e.record.topic, key = ?e.record.key,
                        ingestion_id = e.record.ingestion_id(), error = %e.error,
                        "spooled record refused by Kafka for good; skipped");
                }
                Err(_) => {
                    failed = true;
                    break;
                }
            }
            done = Some(*pos);
        }
        if let Some(pos) = done {
            if let Err(e) = spool.ack(pos) {
                tracing::error!(error = %e, "cannot record replay progress in the spool");
            }
        }
        if failed {
            s.circuit.failure();
            if let Err(e) = spool.rewind() {
                tracing::error!(error = %e, "cannot rewind the spool");
            }
            tokio::time::sleep(REPLAY_IDLE).await;
        } else {
            s.circuit.success();
        }
    }
}

/// Who hears a held record's outcome.
type Reply = Box<dyn FnOnce(Result<Accepted, SendError>) + Send>;

/// A failed direct send waiting for older records to leave the client.
struct Held {
    record: Record,
    reply: Reply,
}

/// A replayed record in the client, until dropped.
struct Replayed<'a> {
    shared: &'a Shared,
    n: u64,
}

impl<'a> Replayed<'a> {
    fn enter(shared: &'a Shared) -> Self {
        Self {
            shared,
            n: shared.order.enter(),
        }
    }
}

impl Drop for Replayed<'_> {
    fn drop(&mut self) {
        self.shared.leave(self.n);
    }
}

/// A direct send under way: counted in `direct` and in `order` until dropped (or disarmed
/// when its record is held).
struct Direct {
    shared: Arc<Shared>,
    /// Its number in `order`; only with a spool (the watchdog and the hold need it).
    n: Option<u64>,
    /// `switches` before the draining check.
    switches: u64,
    armed: bool,
}

impl Direct {
    /// Counts a direct send, unless records must go to the spool now (`None`).
    fn take(shared: &Arc<Shared>) -> Option<Self> {
        let s = shared;
        s.direct.fetch_add(1, Ordering::SeqCst);
        // Read before the draining check: a switch after it is seen by `in_client`.
        let switches = s.switches.load(Ordering::SeqCst);
        if s.spool.is_some() && (s.draining.load(Ordering::SeqCst) || s.refuses()) {
            s.direct.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Self {
            shared: Arc::clone(shared),
            n: s.spool.is_some().then(|| s.order.enter()),
            switches,
            armed: true,
        })
    }

    /// The record is held: it stays counted in `direct` until released. Returns its number.
    fn disarm(mut self) -> u64 {
        self.armed = false;
        self.n.expect("numbered when there is a spool")
    }
}

impl Drop for Direct {
    fn drop(&mut self) {
        if self.armed {
            if let Some(n) = self.n {
                self.shared.leave(n);
            }
            self.shared.direct.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Enforces the delivery timeout when there is a spool (see the module docs): once the oldest
/// record in the client is older than the budget, everything in the client is purged and
/// spooled. Ends with the producer.
fn watchdog(shared: Weak<Shared>) {
    let mut last: Option<Instant> = None;
    loop {
        std::thread::sleep(WATCH_EVERY);
        let Some(s) = shared.upgrade() else { return };
        if s.stop.load(Ordering::SeqCst) {
            return;
        }
        let Some(age) = s.order.oldest() else {
            continue;
        };
        if age >= s.budget && last.is_none_or(|t| t.elapsed() >= WATCH_GAP) {
            tracing::warn!(
                waited_ms = age.as_millis() as u64,
                "a record waited longer than the delivery timeout: spooling everything in the client"
            );
            s.start_draining(true);
            last = Some(Instant::now());
        }
    }
}
