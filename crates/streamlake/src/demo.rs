//! The demo job: produce realistic events for a while, read them back, check every one arrived
//! once and in order per key, and report throughput and delivery latency as it goes.

use crate::config::Config;
use crate::consumer::{ConsumeError, Consumer, ConsumerOptions, Received, StartFrom};
use crate::producer::{ProduceError, Producer};
use crate::record::Record;
use crate::stats::{Latency, LatencyHistogram};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// What to run.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Topic to use (must exist).
    pub topic: String,
    /// How long to produce.
    pub duration: Duration,
    /// Events per second; `None` is as fast as the cluster takes them.
    pub rate: Option<u64>,
    /// Distinct keys.
    pub keys: u64,
    /// At most this many events sent and not yet read back: the producer waits for the
    /// consumer beyond it. For clusters that keep a bounded log, such as the embedded one
    /// (librdkafka's mock cluster keeps about 5 MB per partition), so that no event is dropped
    /// before it is read. `None` lets the producer run as far ahead as it can.
    pub max_lead: Option<u64>,
}

/// A progress report, once a second.
#[derive(Debug, Clone, Copy)]
pub struct Tick {
    /// Time since the start.
    pub elapsed: Duration,
    /// Events sent so far.
    pub sent: u64,
    /// Events acknowledged so far.
    pub delivered: u64,
    /// Events read back so far.
    pub consumed: u64,
    /// Acknowledged per second over the last interval.
    pub delivered_per_sec: f64,
    /// Read back per second over the last interval.
    pub consumed_per_sec: f64,
    /// Delivery latency over the last interval.
    pub latency: Latency,
}

/// The outcome of a demo run.
#[derive(Debug, Clone)]
pub struct DemoReport {
    /// Events handed to the producer.
    pub sent: u64,
    /// Events acknowledged.
    pub delivered: u64,
    /// Events that ended in an error.
    pub failed: u64,
    /// Distinct events read back.
    pub consumed: u64,
    /// Events read back more than once.
    pub duplicates: u64,
    /// Acknowledged events never read back.
    pub missing: u64,
    /// Events read back before an earlier event of the same key.
    pub out_of_order: u64,
    /// Time from the first send until every event had an outcome.
    pub produce_time: Duration,
    /// Delivery latency over the whole run.
    pub latency: Latency,
}

impl DemoReport {
    /// Every sent event was delivered and read back exactly once, in order per key.
    pub fn verified(&self) -> bool {
        self.failed == 0
            && self.delivered == self.sent
            && self.consumed == self.delivered
            && self.duplicates == 0
            && self.out_of_order == 0
    }
}

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The producer could not be created.
    #[error(transparent)]
    Produce(#[from] ProduceError),
    /// The consumer failed.
    #[error(transparent)]
    Consume(#[from] ConsumeError),
}

impl DemoError {
    /// Whether running again may help.
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Produce(e) => e.is_retriable(),
            Self::Consume(e) => e.is_retriable(),
        }
    }
}

#[derive(Default)]
struct Shared {
    sent: AtomicU64,
    /// Distinct events read back so far.
    consumed: AtomicU64,
    failed: AtomicU64,
    interval: Mutex<LatencyHistogram>,
    total: Mutex<LatencyHistogram>,
    stop: AtomicBool,
}

/// One demo event: a JSON order of about 120 bytes, keyed by customer, with five metadata
/// headers. The sequence number travels in the `ingestion_id` header.
fn event(topic: &str, seq: u64, keys: u64) -> Record {
    let customer = seq.wrapping_mul(2_654_435_761) % keys;
    let now = SystemTime::now();
    let value = format!(
        r#"{{"order_id":"ORD-{seq:010}","customer_id":"CUST-{customer:05}","brand":"{}","amount":{}.{:02},"currency":"EUR"}}"#,
        crate::datagen::BRANDS[(seq % crate::datagen::BRANDS.len() as u64) as usize],
        10 + seq % 490,
        seq % 100
    );
    Record::new(topic, value)
        .key(format!("CUST-{customer:05}"))
        .header("dataset", "orders")
        .header("schema_version", "v1")
        .header("ingestion_id", seq.to_string())
        .header("producer_service", "streamlake-demo")
        .header(
            "ingested_at",
            humantime::format_rfc3339_millis(now).to_string(),
        )
}

/// Runs the demo against `config`'s cluster. `on_tick` is called about once a second.
pub async fn run(
    config: &Config,
    options: &DemoOptions,
    mut on_tick: impl FnMut(&Tick),
) -> Result<DemoReport, DemoError> {
    let producer = Arc::new(Producer::new(config)?);
    let consumer = Arc::new(Consumer::new(config, ConsumerOptions::default())?);
    consumer.assign(&options.topic, None, StartFrom::Beginning)?;
    let shared = Arc::new(Shared::default());
    let start = Instant::now();

    let produce = {
        let (producer, shared, options) =
            (Arc::clone(&producer), Arc::clone(&shared), options.clone());
        tokio::task::spawn_blocking(move || produce_loop(&producer, &shared, &options))
    };
    let checker = Arc::new(Mutex::new(Checker::default()));
    let consume = {
        let (consumer, checker, shared) = (
            Arc::clone(&consumer),
            Arc::clone(&checker),
            Arc::clone(&shared),
        );
        tokio::spawn(async move {
            loop {
                match consumer.recv().await {
                    Ok(Received::Record(r)) => {
                        let mut c = checker.lock().expect("lock");
                        c.see(&r);
                        shared.consumed.store(c.distinct, Ordering::Relaxed);
                    }
                    Ok(Received::End) => {}
                    Err(e) => tracing::warn!(error = %e, "demo consumer"),
                }
            }
        })
    };

    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;
    let (mut last_delivered, mut last_consumed, mut last_at) = (0, 0, Instant::now());
    let mut produce_time = None;
    let mut drain_deadline = None;
    loop {
        ticker.tick().await;
        let delivered = producer.counters().delivered();
        let consumed = checker.lock().expect("lock").distinct;
        let dt = last_at.elapsed().as_secs_f64();
        let latency = {
            let mut h = shared.interval.lock().expect("lock");
            let s = h.summary();
            h.reset();
            s
        };
        on_tick(&Tick {
            elapsed: start.elapsed(),
            sent: shared.sent.load(Ordering::Relaxed),
            delivered,
            consumed,
            delivered_per_sec: (delivered - last_delivered) as f64 / dt,
            consumed_per_sec: (consumed - last_consumed) as f64 / dt,
            latency,
        });
        (last_delivered, last_consumed, last_at) = (delivered, consumed, Instant::now());
        if produce_time.is_none() && produce.is_finished() {
            produce_time = Some(start.elapsed());
            drain_deadline = Some(
                Instant::now()
                    + Duration::from_millis(config.producer.delivery_timeout_ms)
                    + Duration::from_secs(10),
            );
        }
        let all_ended = producer.counters().in_flight() == 0;
        if let Some(deadline) = drain_deadline {
            if (all_ended && consumed >= producer.counters().delivered())
                || Instant::now() > deadline
            {
                break;
            }
        }
    }
    shared.stop.store(true, Ordering::Relaxed);
    consume.abort();
    // Wait until the aborted task is gone, with its handle on the consumer, so the consumer is
    // closed below and leaves the cluster before the caller stops it.
    let _ = consume.await;
    let produce_time = produce
        .await
        .ok()
        .or(produce_time)
        .unwrap_or_else(|| start.elapsed());
    let delivered = producer.counters().delivered();
    let c = checker.lock().expect("lock");
    let report = DemoReport {
        sent: shared.sent.load(Ordering::Relaxed),
        delivered,
        failed: shared.failed.load(Ordering::Relaxed),
        consumed: c.distinct,
        duplicates: c.duplicates,
        missing: delivered.saturating_sub(c.distinct),
        out_of_order: c.out_of_order,
        produce_time,
        latency: shared.total.lock().expect("lock").summary(),
    };
    drop(c);
    if let Ok(consumer) = Arc::try_unwrap(consumer) {
        let _ = consumer.close();
    }
    if let Ok(producer) = Arc::try_unwrap(producer) {
        producer.close(Duration::from_secs(5));
    }
    Ok(report)
}

/// Produces until the duration is over, waits for every outcome, and returns the time taken.
fn produce_loop(producer: &Producer, shared: &Arc<Shared>, options: &DemoOptions) -> Duration {
    let start = Instant::now();
    let mut seq = 0u64;
    while start.elapsed() < options.duration && !shared.stop.load(Ordering::Relaxed) {
        if options
            .max_lead
            .is_some_and(|lead| seq.saturating_sub(shared.consumed.load(Ordering::Relaxed)) > lead)
        {
            // Wait for the consumer (the loop's condition is checked again first).
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        if let Some(rate) = options.rate {
            let due = start + Duration::from_secs_f64(seq as f64 / rate as f64);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        let sent_at = Instant::now();
        let s = Arc::clone(shared);
        let result =
            producer.send_with_callback(event(&options.topic, seq, options.keys), move |outcome| {
                match outcome {
                    Ok(_) => {
                        let took = sent_at.elapsed();
                        s.interval.lock().expect("lock").record(took);
                        s.total.lock().expect("lock").record(took);
                    }
                    Err(e) => {
                        s.failed.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(topic = %e.record.topic, ingestion_id = e.record.ingestion_id(), error = %e.error, "demo event not delivered");
                    }
                }
            });
        match result {
            Ok(()) => {
                shared.sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                shared.sent.fetch_add(1, Ordering::Relaxed);
                shared.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(topic = %e.record.topic, ingestion_id = e.record.ingestion_id(), error = %e.error, "demo event refused");
            }
        }
        seq += 1;
    }
    let _ = producer.flush(Duration::from_secs(60));
    start.elapsed()
}

/// Checks that events come back once each and in order per key.
#[derive(Default)]
struct Checker {
    seen: Vec<u64>,
    last_by_key: HashMap<Bytes, u64>,
    distinct: u64,
    duplicates: u64,
    out_of_order: u64,
}

impl Checker {
    fn see(&mut self, r: &crate::record::ConsumedRecord) {
        let Some(seq) = r
            .header("ingestion_id")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|s| s.parse::<u64>().ok())
        else {
            return;
        };
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if self.seen.len() <= word {
            self.seen.resize(word + 1, 0);
        }
        if self.seen[word] & (1 << bit) != 0 {
            self.duplicates += 1;
            return;
        }
        self.seen[word] |= 1 << bit;
        self.distinct += 1;
        if let Some(key) = &r.key {
            let last = self.last_by_key.entry(key.clone()).or_insert(seq);
            if seq < *last {
                self.out_of_order += 1;
            }
            *last = seq.max(*last);
        }
    }
}
