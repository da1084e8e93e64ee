//! The producer run: paced (or flat-out) sending from N producers, latency from intended send
//! time, every record accounted for.

use super::options::{PerfOptions, Warmup};
use super::payload::{PayloadSpec, RecordFactory};
use super::report::{rates, Percentiles, PerfReport};
use super::PerfError;
use crate::config::Config;
use crate::metrics::ProducerMetrics;
use crate::producer::Producer;
use crate::stats::LatencyHistogram;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Longest single sleep of a paced sender, so a stop is noticed quickly.
const SLEEP_SLICE: Duration = Duration::from_millis(50);
/// How often a sender at the end of the warm-up looks whether the measurement may start.
const SETTLE_POLL: Duration = Duration::from_millis(1);
/// How often the coordinating thread looks whether the senders are done.
const POLL: Duration = Duration::from_millis(20);
/// Extra time the close gets beyond the delivery timeout, for the purge reports.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Progress, every [`PerfOptions::progress_every`].
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Since the start (warm-up included).
    pub elapsed: Duration,
    /// Still in the warm-up.
    pub warming_up: bool,
    /// Sending is over; outcomes of records in flight are awaited.
    pub finishing: bool,
    /// Records handed to the producers so far, warm-up included.
    pub sent: u64,
    /// Records acknowledged so far, warm-up included.
    pub delivered: u64,
    /// Records failed so far.
    pub errors: u64,
    /// Acknowledged records per second over the last interval.
    pub records_per_sec: f64,
    /// Acknowledged MiB per second over the last interval.
    pub mb_per_sec: f64,
    /// Latency (from intended send time) of the records acknowledged in the last interval.
    pub interval: Percentiles,
    /// How far the senders are behind the throughput target's schedule (0 without a target).
    pub behind: Duration,
}

/// When records are due: `rate` records per second from the start, or as soon as possible.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    /// Records per second over all producers; `None` for no pacing.
    pub rate: Option<f64>,
}

impl Schedule {
    /// When record `n` (counted from 0 over all producers) is due, after the start.
    pub fn due(&self, n: u64) -> Option<Duration> {
        self.rate
            .map(|r| Duration::from_nanos((n as f64 * 1e9 / r).round() as u64))
    }

    /// How many records are due strictly before `t` after the start.
    pub fn due_before(&self, t: Duration) -> Option<u64> {
        self.rate.map(|r| {
            let n = (t.as_secs_f64() * r).ceil() as u64;
            // Step past floating-point doubt at the boundary.
            let mut n = n.saturating_sub(1);
            while self.due(n).is_some_and(|d| d < t) {
                n += 1;
            }
            n
        })
    }
}

/// What a sender does next.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ticket {
    /// Send record `seq` at `intended`; `measured` unless it is part of the warm-up.
    Send {
        seq: u64,
        intended: Instant,
        measured: bool,
    },
    /// The warm-up is over: wait at [`Pacer::settle_warmup`], then ask again.
    WarmupOver,
    /// The run is over.
    Done,
}

/// Hands out record numbers and intended send times to every sender, and decides warm-up and
/// the end. Shared by the senders: one or two atomic increments per record.
///
/// The warm-up is paced from the start of the run. The measurement starts once every sender
/// has handed over its last warm-up record and every warm-up record has its outcome, so
/// nothing of the warm-up (connection set-up, a first batch still queued) spills into it; the
/// measured records are then paced from that moment.
#[derive(Debug)]
struct Pacer {
    start: Instant,
    schedule: Schedule,
    warmup: Warmup,
    records: Option<u64>,
    duration: Option<Duration>,
    senders: usize,
    warm_tickets: AtomicU64,
    warmup_sent: AtomicU64,
    warm_over: AtomicBool,
    /// Senders that have reached the end of the warm-up (or stopped).
    arrived: AtomicUsize,
    measured: AtomicU64,
    /// When measuring started, and the first measured record's number.
    measure: OnceLock<(Instant, u64)>,
    /// A sender has been told the run is over.
    done: AtomicBool,
    /// The run could not be set up: every sender stops.
    abort: AtomicBool,
}

impl Pacer {
    fn new(start: Instant, options: &PerfOptions) -> Self {
        let pacer = Self {
            start,
            schedule: Schedule {
                rate: options.throughput,
            },
            warmup: options.resolved_warmup(),
            records: options.records,
            duration: options.duration,
            senders: options.producers,
            warm_tickets: AtomicU64::new(0),
            warmup_sent: AtomicU64::new(0),
            warm_over: AtomicBool::new(false),
            arrived: AtomicUsize::new(0),
            measured: AtomicU64::new(0),
            measure: OnceLock::new(),
            done: AtomicBool::new(false),
            abort: AtomicBool::new(false),
        };
        if pacer.warmup == Warmup::None {
            pacer.begin_measurement(start);
        }
        pacer
    }

    /// Starts the measured part at `at` (once; later calls change nothing).
    fn begin_measurement(&self, at: Instant) -> (Instant, u64) {
        *self
            .measure
            .get_or_init(|| (at, self.warm_tickets.load(Ordering::Relaxed)))
    }

    fn measure_start(&self) -> Option<Instant> {
        self.measure.get().map(|m| m.0)
    }

    fn next(&self) -> Ticket {
        let ticket = self.ticket();
        if ticket == Ticket::Done {
            self.done.store(true, Ordering::Relaxed);
        }
        ticket
    }

    fn ticket(&self) -> Ticket {
        if self.abort.load(Ordering::Relaxed) {
            return Ticket::Done;
        }
        let Some(&(start, first)) = self.measure.get() else {
            return self.warmup_ticket();
        };
        let m = self.measured.fetch_add(1, Ordering::Relaxed);
        if self.records.is_some_and(|n| m >= n) {
            return Ticket::Done;
        }
        let intended = self
            .schedule
            .due(m)
            .map_or_else(Instant::now, |d| start + d);
        if self.duration.is_some_and(|d| intended >= start + d) {
            return Ticket::Done;
        }
        Ticket::Send {
            seq: first + m,
            intended,
            measured: true,
        }
    }

    fn warmup_ticket(&self) -> Ticket {
        if self.warm_over.load(Ordering::Relaxed) {
            return Ticket::WarmupOver;
        }
        let w = self.warm_tickets.fetch_add(1, Ordering::Relaxed);
        let intended = self
            .schedule
            .due(w)
            .map_or_else(Instant::now, |d| self.start + d);
        let warm = match self.warmup {
            Warmup::Records(n) => w < n,
            Warmup::Duration(d) => intended < self.start + d,
            Warmup::Auto | Warmup::None => false,
        };
        if !warm {
            self.warm_over.store(true, Ordering::Relaxed);
            return Ticket::WarmupOver;
        }
        self.warmup_sent.fetch_add(1, Ordering::Relaxed);
        Ticket::Send {
            seq: w,
            intended,
            measured: false,
        }
    }

    /// A sender's part of the end of the warm-up: waits until every sender is there and every
    /// warm-up record has its outcome (`settled` counts them), then starts the measurement.
    /// False when `stop` was set first.
    fn settle_warmup(&self, stop: &AtomicBool, settled: impl Fn() -> u64) -> bool {
        self.arrived.fetch_add(1, Ordering::SeqCst);
        while self.measure.get().is_none() {
            if stop.load(Ordering::Relaxed) || self.abort.load(Ordering::Relaxed) {
                return false;
            }
            if self.arrived.load(Ordering::SeqCst) >= self.senders
                && settled() >= self.warmup_sent.load(Ordering::SeqCst)
            {
                self.begin_measurement(Instant::now());
                break;
            }
            std::thread::sleep(SETTLE_POLL);
        }
        true
    }

    /// A sender leaves without reaching the end of the warm-up (stopped): nobody waits for it.
    fn leave(&self) {
        self.arrived.fetch_add(1, Ordering::SeqCst);
    }

    /// How far behind the schedule the senders are now (nothing once sending is over).
    fn behind(&self) -> Duration {
        if self.done.load(Ordering::Relaxed) {
            return Duration::ZERO;
        }
        let (start, n) = match self.measure.get() {
            Some(&(start, _)) => (start, self.measured.load(Ordering::Relaxed)),
            None if self.warm_over.load(Ordering::Relaxed) => return Duration::ZERO,
            None => (self.start, self.warm_tickets.load(Ordering::Relaxed)),
        };
        self.schedule
            .due(n)
            .map_or(Duration::ZERO, |d| start.elapsed().saturating_sub(d))
    }
}

/// One producer's outcomes, written by its delivery callbacks.
#[derive(Debug, Default)]
struct Tally {
    /// Measured records, ack minus intended send time.
    corrected: LatencyHistogram,
    /// Measured records, ack minus the moment they were handed to the producer.
    uncorrected: LatencyHistogram,
    /// Every record since the last progress report, from intended send time.
    interval: LatencyHistogram,
    delivered: u64,
    bytes: u64,
    failed: u64,
    measured_delivered: u64,
    measured_failed: u64,
    measured_bytes: u64,
    measured_value_bytes: u64,
    errors: BTreeMap<&'static str, u64>,
    last_measured_outcome: Option<Instant>,
}

/// What the callback needs to know about its record.
#[derive(Debug, Clone, Copy)]
struct Sent {
    intended: Instant,
    handed: Instant,
    measured: bool,
    size: u64,
    value_size: u64,
}

impl Tally {
    fn delivered(&mut self, s: Sent, now: Instant) {
        let from_intended = now.saturating_duration_since(s.intended);
        self.delivered += 1;
        self.bytes += s.size;
        self.interval.record(from_intended);
        if s.measured {
            self.corrected.record(from_intended);
            self.uncorrected
                .record(now.saturating_duration_since(s.handed));
            self.measured_delivered += 1;
            self.measured_bytes += s.size;
            self.measured_value_bytes += s.value_size;
            self.last_measured_outcome = Some(now);
        }
    }

    fn failed(&mut self, measured: bool, kind: &'static str, now: Instant) {
        self.failed += 1;
        *self.errors.entry(kind).or_default() += 1;
        if measured {
            self.measured_failed += 1;
            self.last_measured_outcome = Some(now);
        }
    }
}

fn lock(t: &Mutex<Tally>) -> std::sync::MutexGuard<'_, Tally> {
    // A callback that panicked left counts that are still right up to that record.
    t.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Sends records to `options.topic` from `options.producers` producers until `records` or
/// `duration` (after the warm-up) or `stop`, waits for every outcome, and reports.
///
/// Blocks the calling thread (the senders are threads of their own). `on_progress` is called
/// on the calling thread every `progress_every`. Fails only when the options are invalid or a
/// producer cannot be created; records that fail are counted in the report.
pub fn run(
    config: &Config,
    options: &PerfOptions,
    payload: &Arc<PayloadSpec>,
    stop: &AtomicBool,
    on_progress: impl FnMut(&Progress),
) -> Result<PerfReport, PerfError> {
    let metrics = ProducerMetrics::default();
    run_with_metrics(config, options, payload, &metrics, stop, on_progress)
}

/// [`run`], with every producer counting into `metrics` (registered by the caller, e.g. for
/// `--metrics-addr`).
pub fn run_with_metrics(
    config: &Config,
    options: &PerfOptions,
    payload: &Arc<PayloadSpec>,
    metrics: &ProducerMetrics,
    stop: &AtomicBool,
    mut on_progress: impl FnMut(&Progress),
) -> Result<PerfReport, PerfError> {
    options.validate()?;
    let producers = (0..options.producers)
        .map(|_| Producer::with_metrics(config, metrics.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    let close_timeout = Duration::from_millis(config.producer.delivery_timeout_ms) + CLOSE_GRACE;
    let tallies: Vec<Arc<Mutex<Tally>>> = producers
        .iter()
        .map(|_| Arc::new(Mutex::new(Tally::default())))
        .collect();
    let sent = AtomicU64::new(0);
    let measured_sent = AtomicU64::new(0);
    let start = Instant::now();
    let epoch_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    let pacer = Pacer::new(start, options);

    std::thread::scope(|scope| {
        let handles: Vec<_> = producers
            .into_iter()
            .zip(&tallies)
            .enumerate()
            .map(|(i, (producer, tally))| {
                let factory = payload.factory(&options.topic);
                let (pacer, sent, measured_sent, tallies) =
                    (&pacer, &sent, &measured_sent, &tallies);
                std::thread::Builder::new()
                    .name(format!("perf-producer-{i}"))
                    .spawn_scoped(scope, move || {
                        let sender = Sender {
                            producer: &producer,
                            factory: &factory,
                            tally,
                            tallies,
                            pacer,
                            sent,
                            measured_sent,
                            start,
                            epoch_us,
                        };
                        sender.run(stop);
                        producer.close(close_timeout);
                    })
            })
            .collect::<Result<_, _>>()
            .map_err(|e| {
                // The senders already started end at once; the scope waits for them.
                pacer.abort.store(true, Ordering::Relaxed);
                PerfError::Options(format!("cannot start a sender thread: {e}"))
            })?;
        watch(
            &handles,
            &tallies,
            &pacer,
            &sent,
            stop,
            options.progress_every,
            &mut on_progress,
        );
        Ok::<(), PerfError>(())
    })?;

    Ok(report(
        options,
        &tallies,
        &pacer,
        measured_sent.load(Ordering::Relaxed),
        stop.load(Ordering::Relaxed),
    ))
}

/// One producer's sending loop.
struct Sender<'a> {
    producer: &'a Producer,
    factory: &'a RecordFactory,
    tally: &'a Arc<Mutex<Tally>>,
    tallies: &'a [Arc<Mutex<Tally>>],
    pacer: &'a Pacer,
    sent: &'a AtomicU64,
    measured_sent: &'a AtomicU64,
    start: Instant,
    epoch_us: i64,
}

impl Sender<'_> {
    fn run(&self, stop: &AtomicBool) {
        let mut arrived = false;
        self.send_all(stop, &mut arrived);
        if !arrived {
            self.pacer.leave();
        }
    }

    fn send_all(&self, stop: &AtomicBool, arrived: &mut bool) {
        while !stop.load(Ordering::Relaxed) {
            let (seq, intended, measured) = match self.pacer.next() {
                Ticket::Send {
                    seq,
                    intended,
                    measured,
                } => (seq, intended, measured),
                Ticket::WarmupOver if *arrived => {
                    std::thread::sleep(SETTLE_POLL);
                    continue;
                }
                Ticket::WarmupOver => {
                    *arrived = true;
                    if !self.pacer.settle_warmup(stop, || settled(self.tallies)) {
                        return;
                    }
                    continue;
                }
                Ticket::Done => return,
            };
            if !sleep_until(intended, stop) {
                return;
            }
            let sent_at_us =
                self.epoch_us + intended.saturating_duration_since(self.start).as_micros() as i64;
            let record = self.factory.record(seq, sent_at_us);
            let mut s = Sent {
                intended,
                handed: intended,
                measured,
                size: record.size() as u64,
                value_size: record.value.as_ref().map_or(0, |v| v.len() as u64),
            };
            self.sent.fetch_add(1, Ordering::Relaxed);
            if measured {
                self.measured_sent.fetch_add(1, Ordering::Relaxed);
            }
            let tally = Arc::clone(self.tally);
            s.handed = Instant::now();
            let result = self.producer.send_with_callback(record, move |outcome| {
                let now = Instant::now();
                match outcome {
                    Ok(_) => lock(&tally).delivered(s, now),
                    Err(e) => lock(&tally).failed(s.measured, e.error.kind(), now),
                }
            });
            if let Err(e) = result {
                lock(self.tally).failed(measured, e.error.kind(), Instant::now());
            }
        }
    }
}

/// Records with an outcome, over every producer.
fn settled(tallies: &[Arc<Mutex<Tally>>]) -> u64 {
    tallies
        .iter()
        .map(|t| {
            let t = lock(t);
            t.delivered + t.failed
        })
        .sum()
}

/// Sleeps until `t`; false when `stop` was set first.
fn sleep_until(t: Instant, stop: &AtomicBool) -> bool {
    loop {
        let now = Instant::now();
        if now >= t {
            return true;
        }
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        std::thread::sleep((t - now).min(SLEEP_SLICE));
    }
}

/// Reports progress until every sender has finished (and closed its producer).
fn watch(
    handles: &[std::thread::ScopedJoinHandle<'_, ()>],
    tallies: &[Arc<Mutex<Tally>>],
    pacer: &Pacer,
    sent: &AtomicU64,
    stop: &AtomicBool,
    every: Duration,
    on_progress: &mut impl FnMut(&Progress),
) {
    let mut last = (Instant::now(), 0u64, 0u64);
    while !handles
        .iter()
        .all(std::thread::ScopedJoinHandle::is_finished)
    {
        std::thread::sleep(POLL);
        if last.0.elapsed() < every {
            continue;
        }
        let mut interval = LatencyHistogram::default();
        let (mut delivered, mut bytes, mut errors) = (0, 0, 0);
        for t in tallies {
            let mut t = lock(t);
            interval.add(&t.interval);
            t.interval.reset();
            delivered += t.delivered;
            bytes += t.bytes;
            errors += t.failed;
        }
        let secs = last.0.elapsed().as_secs_f64();
        let (records_per_sec, mb_per_sec) = rates(delivered - last.1, bytes - last.2, secs);
        last = (Instant::now(), delivered, bytes);
        on_progress(&Progress {
            elapsed: pacer.start.elapsed(),
            warming_up: pacer.measure_start().is_none(),
            finishing: pacer.done.load(Ordering::Relaxed) || stop.load(Ordering::Relaxed),
            sent: sent.load(Ordering::Relaxed),
            delivered,
            errors,
            records_per_sec,
            mb_per_sec,
            interval: Percentiles::from(&interval),
            behind: pacer.behind(),
        });
    }
}

fn report(
    options: &PerfOptions,
    tallies: &[Arc<Mutex<Tally>>],
    pacer: &Pacer,
    measured_sent: u64,
    interrupted: bool,
) -> PerfReport {
    let mut corrected = LatencyHistogram::default();
    let mut uncorrected = LatencyHistogram::default();
    let mut errors_by_kind: BTreeMap<String, u64> = BTreeMap::new();
    let (mut delivered, mut measured_failed, mut bytes, mut value_bytes, mut errors) =
        (0, 0, 0, 0, 0);
    let mut last: Option<Instant> = None;
    for t in tallies {
        let t = lock(t);
        corrected.add(&t.corrected);
        uncorrected.add(&t.uncorrected);
        delivered += t.measured_delivered;
        measured_failed += t.measured_failed;
        bytes += t.measured_bytes;
        value_bytes += t.measured_value_bytes;
        errors += t.failed;
        for (k, n) in &t.errors {
            *errors_by_kind.entry((*k).to_owned()).or_default() += n;
        }
        last = last.max(t.last_measured_outcome);
    }
    // Every record handed over has had its outcome once the producers are closed; should one
    // ever be missing, it is a failure, not a silent gap.
    let missing = measured_sent.saturating_sub(delivered + measured_failed);
    if missing > 0 {
        errors += missing;
        *errors_by_kind.entry("no_outcome".to_owned()).or_default() += missing;
    }
    let duration_secs = match (pacer.measure_start(), last) {
        (Some(s), Some(l)) => l.saturating_duration_since(s).as_secs_f64(),
        _ => 0.0,
    };
    let (records_per_sec, mb_per_sec) = rates(delivered, bytes, duration_secs);
    let c = Percentiles::from(&corrected);
    PerfReport {
        topic: options.topic.clone(),
        records: delivered + measured_failed + missing,
        delivered,
        errors,
        errors_by_kind,
        bytes,
        duration_secs,
        records_per_sec,
        mb_per_sec,
        p50_ms: c.p50_ms,
        p95_ms: c.p95_ms,
        p99_ms: c.p99_ms,
        p999_ms: c.p999_ms,
        max_ms: c.max_ms,
        uncorrected: Percentiles::from(&uncorrected),
        warmup_records: pacer.warmup_sent.load(Ordering::Relaxed),
        producers: options.producers,
        target_throughput: options.throughput,
        avg_value_bytes: if delivered > 0 {
            value_bytes as f64 / delivered as f64
        } else {
            0.0
        },
        interrupted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_is_absolute_and_exact() {
        let s = Schedule { rate: Some(2000.0) };
        assert_eq!(s.due(0), Some(Duration::ZERO));
        assert_eq!(s.due(1), Some(Duration::from_micros(500)));
        assert_eq!(s.due(2000), Some(Duration::from_secs(1)));
        assert_eq!(s.due(6001), Some(Duration::from_micros(3_000_500)));
        assert_eq!(s.due_before(Duration::from_secs(3)), Some(6000));
        assert_eq!(s.due_before(Duration::from_micros(3_000_001)), Some(6001));
        let third = Schedule { rate: Some(3.0) };
        assert_eq!(third.due(1), Some(Duration::from_nanos(333_333_333)));
        assert_eq!(third.due_before(Duration::from_secs(1)), Some(3));
        assert_eq!(
            third.due_before(Duration::from_nanos(1_000_000_001)),
            Some(4)
        );
        let flat = Schedule { rate: None };
        assert_eq!((flat.due(5), flat.due_before(Duration::MAX)), (None, None));
    }

    /// Drains a paced pacer (no sleeping needed: its tickets do not depend on the clock); the
    /// measurement starts `gap` after the warm-up's planned end.
    fn drain_with_gap(options: &PerfOptions, gap: Duration) -> (u64, u64, Vec<Duration>) {
        let start = Instant::now();
        let pacer = Pacer::new(start, options);
        let (mut warm, mut measured, mut times) = (0, 0, Vec::new());
        loop {
            match pacer.next() {
                Ticket::Send {
                    measured: true,
                    intended,
                    ..
                } => {
                    measured += 1;
                    times.push(intended - start);
                }
                Ticket::Send { .. } => warm += 1,
                Ticket::WarmupOver => {
                    let planned = match pacer.warmup {
                        Warmup::Duration(d) => d,
                        Warmup::Records(w) => pacer.schedule.due(w).unwrap(),
                        _ => Duration::ZERO,
                    };
                    pacer.begin_measurement(start + planned + gap);
                }
                Ticket::Done => break,
            }
        }
        assert_eq!(pacer.warmup_sent.load(Ordering::Relaxed), warm);
        (warm, measured, times)
    }

    fn drain(options: &PerfOptions) -> (u64, u64, Vec<Duration>) {
        drain_with_gap(options, Duration::ZERO)
    }

    #[test]
    fn a_paced_duration_run_sends_rate_times_duration_after_the_warmup() {
        let mut o = PerfOptions::new("t");
        o.throughput = Some(2000.0);
        o.duration = Some(Duration::from_secs(3));
        // Auto warm-up: a tenth of 3 s.
        let (warm, measured, times) = drain(&o);
        assert_eq!((warm, measured), (600, 6000));
        assert_eq!(times[0], Duration::from_millis(300));
        assert_eq!(times[5999], Duration::from_micros(3_299_500));
        // Evenly spaced: 500 µs apart.
        assert!(times
            .windows(2)
            .all(|w| w[1] - w[0] == Duration::from_micros(500)));

        o.warmup = Warmup::Records(100);
        let (warm, measured, _) = drain(&o);
        assert_eq!((warm, measured), (100, 6000), "record warm-up, then 3 s");
        o.warmup = Warmup::None;
        assert_eq!(drain(&o).0, 0);
        assert_eq!(drain(&o).2[0], Duration::ZERO);
    }

    #[test]
    fn a_record_count_run_sends_exactly_that_many_after_the_warmup() {
        let mut o = PerfOptions::new("t");
        o.throughput = Some(1_000_000.0);
        o.records = Some(20_000);
        let (warm, measured, _) = drain(&o);
        assert_eq!((warm, measured), (2_000, 20_000));
        o.warmup = Warmup::Duration(Duration::from_millis(1));
        let (warm, measured, _) = drain(&o);
        assert_eq!((warm, measured), (1_000, 20_000));
    }

    #[test]
    fn the_measured_schedule_starts_when_the_warmup_has_settled() {
        // Warm-up acknowledgements took 250 ms longer than planned: the measured records are
        // due from then on, still 2000 per second for 3 s.
        let mut o = PerfOptions::new("t");
        o.throughput = Some(2000.0);
        o.duration = Some(Duration::from_secs(3));
        let (warm, measured, times) = drain_with_gap(&o, Duration::from_millis(250));
        assert_eq!((warm, measured), (600, 6000));
        assert_eq!(times[0], Duration::from_millis(550));
        assert_eq!(times[5999], Duration::from_micros(3_549_500));
    }

    #[test]
    fn unpaced_tickets_stop_at_the_count_and_split_warmup_by_count() {
        let mut o = PerfOptions::new("t");
        o.records = Some(500);
        o.warmup = Warmup::Records(50);
        let pacer = Pacer::new(Instant::now(), &o);
        let (mut warm, mut measured) = (Vec::new(), Vec::new());
        loop {
            match pacer.next() {
                Ticket::Send {
                    seq,
                    measured: false,
                    ..
                } => warm.push(seq),
                Ticket::Send { seq, .. } => measured.push(seq),
                Ticket::WarmupOver => {
                    assert!(pacer.measure_start().is_none());
                    let stop = AtomicBool::new(false);
                    // One sender, every warm-up record settled: the measurement starts.
                    assert!(pacer.settle_warmup(&stop, || 50));
                }
                Ticket::Done => break,
            }
        }
        assert_eq!(warm, (0..50).collect::<Vec<_>>());
        assert_eq!(measured.len(), 500);
        let unique: std::collections::HashSet<u64> =
            warm.iter().chain(&measured).copied().collect();
        assert_eq!(unique.len(), 550, "record numbers are unique");
        assert!(pacer.measure_start().is_some());
        assert_eq!(pacer.next(), Ticket::Done, "and stays done");
    }

    #[test]
    fn the_warmup_ends_only_when_every_warmup_record_has_its_outcome() {
        let mut o = PerfOptions::new("t");
        o.records = Some(10);
        o.warmup = Warmup::Records(5);
        let pacer = Pacer::new(Instant::now(), &o);
        for _ in 0..5 {
            assert!(matches!(
                pacer.next(),
                Ticket::Send {
                    measured: false,
                    ..
                }
            ));
        }
        assert_eq!(pacer.next(), Ticket::WarmupOver);
        let stop = AtomicBool::new(false);
        let settled = AtomicU64::new(3);
        std::thread::scope(|s| {
            let waiter = s.spawn(|| pacer.settle_warmup(&stop, || settled.load(Ordering::SeqCst)));
            std::thread::sleep(Duration::from_millis(50));
            assert!(
                !waiter.is_finished(),
                "2 warm-up records have no outcome yet"
            );
            assert!(pacer.measure_start().is_none());
            settled.store(5, Ordering::SeqCst);
            assert!(waiter.join().unwrap());
        });
        assert!(matches!(pacer.next(), Ticket::Send { measured: true, .. }));

        // A stop while waiting ends the wait.
        let pacer = Pacer::new(Instant::now(), &o);
        while pacer.next() != Ticket::WarmupOver {}
        stop.store(true, Ordering::SeqCst);
        assert!(!pacer.settle_warmup(&stop, || 0));
    }

    #[test]
    fn latency_counts_from_the_intended_time_so_a_stall_shows() {
        // A sender held up for 1 s hands a record over 1 s late; its ack comes 2 ms after
        // that. Measured from the intended time it took 1002 ms; from the hand-over 2 ms.
        let t0 = Instant::now();
        let mut tally = Tally::default();
        let s = Sent {
            intended: t0,
            handed: t0 + Duration::from_secs(1),
            measured: true,
            size: 10,
            value_size: 8,
        };
        tally.delivered(s, t0 + Duration::from_millis(1002));
        let c = tally.corrected.summary();
        let u = tally.uncorrected.summary();
        assert!((c.max_ms - 1002.0).abs() < 1.0, "{c:?}");
        assert!((u.max_ms - 2.0).abs() < 0.01, "{u:?}");
        tally.failed(true, "timeout", t0);
        tally.failed(false, "timeout", t0);
        assert_eq!(
            (
                tally.measured_delivered,
                tally.measured_failed,
                tally.failed
            ),
            (1, 1, 2)
        );
        assert_eq!(tally.errors.get("timeout"), Some(&2));
    }
}
