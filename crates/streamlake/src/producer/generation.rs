//! The librdkafka client behind a [`super::Producer`], and its replacement after a fatal error.
//!
//! An idempotent producer that loses track of its sequence numbers (the broker reports an
//! out-of-order sequence for the first request in flight, the producer id is fenced) raises a
//! fatal error: librdkafka refuses every new record and fails the queued ones. StreamLake then
//! creates a new client (a new *generation*) and sends again, in acceptance order, every record
//! the old one failed, before any newer record is let through. So records of one key keep their
//! order; a record that was in flight when the error struck may already have been written and is
//! then written twice (at least once). A record that has been through [`MAX_RESENDS`] fatal
//! errors is handed back with [`ProduceError::Fatal`]. librdkafka purges its own queues on a
//! fatal error, and the reports of those records may come before the fatal error event: a
//! purged record counts as hit by the fatal error unless StreamLake itself purged that client.
//! Transactional producers are not recreated: a fatal error there means another instance took
//! over the transactional id.

use super::context::{Context, Counters, Pending};
use super::error::ProduceError;
use crate::metrics::producer::{ProducerMetrics, RecordOutcome};
use crate::record::Record;
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, Producer as _, PurgeConfig, ThreadedProducer};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use std::time::{Duration, Instant};

/// Times one record may be carried over to a new client before it is handed back.
pub const MAX_RESENDS: u32 = 3;

/// One librdkafka client.
pub(crate) struct Generation {
    pub client: ThreadedProducer<Context>,
}

impl Generation {
    pub fn id(&self) -> u64 {
        self.client.context().generation
    }

    /// Hands every record still queued or in flight back (see [`Context::purged_by_us`]).
    pub fn purge(&self) {
        self.client
            .context()
            .purged_by_us
            .store(true, Ordering::SeqCst);
        self.client.purge(PurgeConfig::default().queue().inflight());
    }

    /// Hands `pending` to librdkafka; on refusal the record comes back with the error.
    pub fn enqueue(&self, pending: Box<Pending>) -> Result<(), (KafkaError, Box<Pending>)> {
        // Read through a second handle while `pending` moves into the record librdkafka takes:
        // no copy of topic, key, value or headers is made here.
        let shared = pending.shared();
        let r: &Record = &shared;
        let headers = (!r.headers.is_empty()).then(|| {
            r.headers.iter().fold(
                rdkafka::message::OwnedHeaders::new_with_capacity(r.headers.len()),
                |h, x| {
                    h.insert(rdkafka::message::Header {
                        key: &x.key,
                        value: x.value.as_deref(),
                    })
                },
            )
        });
        let mut br: BaseRecord<'_, [u8], [u8], Box<Pending>> =
            BaseRecord::with_opaque_to(&r.topic, pending);
        if let Some(k) = r.key.as_deref() {
            br = br.key(k);
        }
        if let Some(v) = r.value.as_deref() {
            br = br.payload(v);
        }
        if let Some(h) = headers {
            br = br.headers(h);
        }
        if let Some(p) = r.partition {
            br = br.partition(p);
        }
        if let Some(t) = r.timestamp {
            br = br.timestamp(t);
        }
        let ctx = self.client.context();
        ctx.outstanding.fetch_add(1, Ordering::SeqCst);
        let sent = self
            .client
            .send(br)
            .map_err(|(e, br)| (e, br.delivery_opaque));
        // Let go of the second handle at once, so the record is handed back without a copy.
        drop(shared);
        if sent.is_err() {
            ctx.outstanding.fetch_sub(1, Ordering::SeqCst);
        }
        sent
    }
}

/// Parked records and the state of a recovery, shared with every generation's context.
pub(crate) struct Recovery {
    enabled: bool,
    // Boxed as librdkafka hands them back, and boxed again when they are re-sent.
    #[allow(clippy::vec_box)]
    parked: Mutex<Vec<Box<Pending>>>,
    /// Set from the first fatal error of a generation until its successor has taken over.
    active: AtomicBool,
    /// Set while the producer closes: parked records are handed back instead of re-sent.
    closing: AtomicBool,
    core: OnceLock<Weak<Core>>,
}

impl Recovery {
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    pub fn active(&self) -> bool {
        self.active.load(Ordering::SeqCst)
    }

    pub fn park(&self, pending: Box<Pending>) {
        self.parked.lock().expect("lock").push(pending);
    }

    /// Starts replacing generation `generation`, unless that is already under way or done.
    pub fn trigger(&self, generation: u64, reason: &str) {
        if !self.enabled || self.active.swap(true, Ordering::SeqCst) {
            return;
        }
        let Some(core) = self.core.get().cloned() else {
            self.active.store(false, Ordering::SeqCst);
            return;
        };
        tracing::error!(
            generation,
            reason,
            "fatal producer error: recreating the producer"
        );
        // A thread of its own: the poll thread that reported the error must go on serving the
        // old client's reports while the recovery waits for them.
        let spawned = std::thread::Builder::new()
            .name("streamlake-recover".into())
            .spawn(move || {
                if let Some(core) = core.upgrade() {
                    core.recover(generation);
                }
            });
        if spawned.is_err() {
            self.active.store(false, Ordering::SeqCst);
        }
    }
}

/// Everything a producer shares with its recovery thread.
pub(crate) struct Core {
    pub counters: Arc<Counters>,
    pub metrics: ProducerMetrics,
    pub count_failures: Arc<AtomicBool>,
    pub delivery_timeout: Duration,
    client_config: ClientConfig,
    current: RwLock<Option<Arc<Generation>>>,
    pub recovery: Arc<Recovery>,
    generations: AtomicU64,
}

impl Core {
    /// A core with its first client. `recover` enables recreation after fatal errors.
    pub fn new(
        client_config: ClientConfig,
        delivery_timeout: Duration,
        recover: bool,
        metrics: ProducerMetrics,
    ) -> Result<Arc<Self>, ProduceError> {
        let core = Arc::new(Self {
            counters: Arc::new(Counters::default()),
            metrics,
            count_failures: Arc::new(AtomicBool::new(true)),
            delivery_timeout,
            client_config,
            current: RwLock::new(None),
            recovery: Arc::new(Recovery {
                enabled: recover,
                parked: Mutex::new(Vec::new()),
                active: AtomicBool::new(false),
                closing: AtomicBool::new(false),
                core: OnceLock::new(),
            }),
            generations: AtomicU64::new(0),
        });
        let _ = core.recovery.core.set(Arc::downgrade(&core));
        let first = core.create()?;
        *core.current.write().expect("lock") = Some(first);
        Ok(core)
    }

    fn create(&self) -> Result<Arc<Generation>, ProduceError> {
        let generation = self.generations.fetch_add(1, Ordering::SeqCst);
        let client: ThreadedProducer<Context> = self
            .client_config
            .create_with_context(Context {
                counters: Arc::clone(&self.counters),
                last_error: Mutex::new(None),
                generation,
                outstanding: AtomicU64::new(0),
                fatal: AtomicBool::new(false),
                recovery: Arc::clone(&self.recovery),
                metrics: self.metrics.clone(),
                count_failures: Arc::clone(&self.count_failures),
                purged_by_us: AtomicBool::new(false),
            })
            .map_err(|e| ProduceError::Create(e.to_string()))?;
        Ok(Arc::new(Generation { client }))
    }

    /// The client records go to now.
    pub fn current(&self) -> Arc<Generation> {
        Arc::clone(
            self.current
                .read()
                .expect("lock")
                .as_ref()
                .expect("a generation exists once created"),
        )
    }

    /// Marks the producer as closing (parked records are handed back, not re-sent) or not.
    pub fn set_closing(&self, closing: bool) {
        self.recovery.closing.store(closing, Ordering::SeqCst);
    }

    /// Counts a parked record that ends in an error here, after its sender has the error.
    fn record_failure(&self, kind: &'static str) {
        self.counters.fail();
        self.metrics.ended();
        if self.count_failures.load(Ordering::Relaxed) {
            self.metrics.outcome(RecordOutcome::Failed(kind));
        }
    }

    /// Replaces generation `failed` with a new client, re-sending its parked records first.
    fn recover(&self, failed: u64) {
        let old = self.current();
        if old.id() != failed {
            self.recovery.active.store(false, Ordering::SeqCst);
            return;
        }
        // Wait for every report of the old client: records in flight may still be written,
        // and only those that failed are sent again.
        let ctx = old.client.context();
        let deadline = Instant::now() + self.delivery_timeout + Duration::from_secs(5);
        while ctx.outstanding.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        if ctx.outstanding.load(Ordering::SeqCst) > 0 {
            old.purge();
            let until = Instant::now() + Duration::from_secs(5);
            while ctx.outstanding.load(Ordering::SeqCst) > 0 && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        let mut parked = std::mem::take(&mut *self.recovery.parked.lock().expect("lock"));
        parked.sort_by_key(|p| p.seq);
        let next = match self.create() {
            Ok(next) if !self.recovery.closing.load(Ordering::SeqCst) => next,
            Ok(_) | Err(_) => {
                let closing = self.recovery.closing.load(Ordering::SeqCst);
                for p in parked {
                    (*p).fail(if closing {
                        ProduceError::Purged
                    } else {
                        ProduceError::Fatal {
                            detail: "the producer could not be recreated".into(),
                        }
                    });
                    self.record_failure(if closing { "purged" } else { "fatal" });
                }
                self.recovery.active.store(false, Ordering::SeqCst);
                return;
            }
        };
        self.counters.recreated.fetch_add(1, Ordering::Relaxed);
        self.metrics.recreated();
        let carried = parked.len();
        for mut p in parked {
            if p.resends >= MAX_RESENDS {
                (*p).fail(ProduceError::Fatal {
                    detail: format!("still failing after {MAX_RESENDS} recreated producers"),
                });
                self.record_failure("fatal");
                continue;
            }
            p.resends += 1;
            self.counters.resent.fetch_add(1, Ordering::Relaxed);
            let started = Instant::now();
            let mut p = p;
            loop {
                match next.enqueue(p) {
                    Ok(()) => break,
                    Err((e, back))
                        if super::is_queue_full(&e)
                            && started.elapsed() < self.delivery_timeout =>
                    {
                        p = back;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err((e, back)) => {
                        let error = ProduceError::from(&e);
                        let kind = error.kind();
                        (*back).fail(error);
                        self.record_failure(kind);
                        break;
                    }
                }
            }
        }
        tracing::warn!(
            generation = next.id(),
            resent = carried,
            "producer recreated; records in flight at the fatal error sent again"
        );
        let next_id = next.id();
        let next_failed = next.client.context().fatal.load(Ordering::SeqCst);
        *self.current.write().expect("lock") = Some(next);
        self.recovery.active.store(false, Ordering::SeqCst);
        // A fatal error of the new client while this recovery was still active did not start
        // one of its own: start it now, so its parked records are sent again.
        if next_failed {
            self.recovery.trigger(
                next_id,
                "fatal error while recovering from the previous one",
            );
        }
        // The old client has nothing left; dropping it stops its poll thread.
        drop(old);
    }
}
