//! The consumer run: read a topic as fast as the client can, measure throughput and
//! end-to-end latency.

use super::options::ConsumeOptions;
use super::payload::SENT_AT_HEADER;
use super::report::{rates, ConsumeReport, Percentiles};
use super::PerfError;
use crate::config::Config;
use crate::consumer::{ConsumeError, Consumer, ConsumerOptions, Received, StartFrom};
use crate::metrics::ConsumerMetrics;
use crate::record::ConsumedRecord;
use crate::stats::LatencyHistogram;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long one wait for a record lasts before the limits and `stop` are looked at again.
const POLL: Duration = Duration::from_millis(100);

/// Progress of a consumer run.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumeProgress {
    /// Since reading started.
    pub elapsed: Duration,
    /// Records read so far.
    pub records: u64,
    /// Records per second over the last interval.
    pub records_per_sec: f64,
    /// MiB per second over the last interval.
    pub mb_per_sec: f64,
    /// End-to-end latency of the records read in the last interval.
    pub interval: Percentiles,
}

/// Where a record's send time came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SentAt {
    /// The `perf_sent_us` header, µs since the epoch.
    Header(i64),
    /// The record timestamp, converted to µs since the epoch.
    Timestamp(i64),
    /// Neither.
    Unknown,
}

/// The send time of `record`: its `perf_sent_us` header when it has a valid one, else its
/// timestamp.
pub fn sent_at(record: &ConsumedRecord) -> SentAt {
    let header = record
        .header(SENT_AT_HEADER)
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|s| s.parse::<i64>().ok())
        .filter(|us| *us > 0);
    match (header, record.timestamp.filter(|ms| *ms > 0)) {
        (Some(us), _) => SentAt::Header(us),
        (None, Some(ms)) => SentAt::Timestamp(ms.saturating_mul(1000)),
        (None, None) => SentAt::Unknown,
    }
}

/// Key, value and header bytes of a record.
fn size(r: &ConsumedRecord) -> u64 {
    (r.key.as_ref().map_or(0, |k| k.len())
        + r.value.as_ref().map_or(0, |v| v.len())
        + r.headers
            .iter()
            .map(|h| h.key.len() + h.value.as_ref().map_or(0, |v| v.len()))
            .sum::<usize>()) as u64
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// Reads every partition of `options.topic` from `options.from`, without a consumer group
/// (nothing is committed), until `records`, `duration`, the idle timeout or `stop`, and
/// reports. Must run inside a Tokio runtime.
pub async fn run(
    config: &Config,
    options: &ConsumeOptions,
    stop: &AtomicBool,
    on_progress: impl FnMut(&ConsumeProgress),
) -> Result<ConsumeReport, PerfError> {
    let metrics = ConsumerMetrics::default();
    run_with_metrics(config, options, &metrics, stop, on_progress).await
}

/// [`run`], with the consumer counting into `metrics` (registered by the caller, e.g. for
/// `--metrics-addr`).
pub async fn run_with_metrics(
    config: &Config,
    options: &ConsumeOptions,
    metrics: &ConsumerMetrics,
    stop: &AtomicBool,
    mut on_progress: impl FnMut(&ConsumeProgress),
) -> Result<ConsumeReport, PerfError> {
    options.validate()?;
    let mut config = config.clone();
    // A measurement never moves a group's offsets.
    config.consumer.group_id = None;
    let consumer = Consumer::new(
        &config,
        ConsumerOptions {
            metrics: Some(metrics.clone()),
            ..ConsumerOptions::default()
        },
    )?;
    let partitions = match consumer.partition_count(&options.topic) {
        Ok(n) => n,
        Err(ConsumeError::UnknownTopic(t)) => return Err(PerfError::UnknownTopic(t)),
        Err(e) => return Err(e.into()),
    };
    consumer.assign(&options.topic, None, options.from)?;

    let started = Instant::now();
    let idle_before_first = !matches!(options.from, StartFrom::End);
    let mut hist = LatencyHistogram::default();
    let mut interval = LatencyHistogram::default();
    let (mut records, mut bytes, mut errors) = (0u64, 0u64, 0u64);
    let (mut from_header, mut from_timestamp, mut unknown) = (0u64, 0u64, 0u64);
    let (mut first, mut last): (Option<Instant>, Option<Instant>) = (None, None);
    let mut tick = (Instant::now(), 0u64, 0u64);
    let (mut idle_timeout, mut interrupted) = (false, false);
    loop {
        if stop.load(Ordering::Relaxed) {
            interrupted = true;
            break;
        }
        if options.records.is_some_and(|n| records >= n)
            || options.duration.is_some_and(|d| started.elapsed() >= d)
        {
            break;
        }
        if (last.is_some() || idle_before_first)
            && last.unwrap_or(started).elapsed() >= options.idle_timeout
        {
            idle_timeout = true;
            break;
        }
        match tokio::time::timeout(POLL, consumer.recv()).await {
            Ok(Ok(Received::Record(r))) => {
                let now = Instant::now();
                let latency = match sent_at(&r) {
                    SentAt::Header(us) => {
                        from_header += 1;
                        Some(us)
                    }
                    SentAt::Timestamp(us) => {
                        from_timestamp += 1;
                        Some(us)
                    }
                    SentAt::Unknown => {
                        unknown += 1;
                        None
                    }
                }
                // Clocks of different machines may disagree: a record "from the future"
                // counts as 0.
                .map(|us| Duration::from_micros(now_us().saturating_sub(us).max(0) as u64));
                if let Some(l) = latency {
                    hist.record(l);
                    interval.record(l);
                }
                records += 1;
                bytes += size(&r);
                first.get_or_insert(now);
                last = Some(now);
            }
            Ok(Ok(Received::End)) | Err(_) => {}
            Ok(Err(e)) if e.is_retriable() => errors += 1,
            Ok(Err(e)) => return Err(e.into()),
        }
        if tick.0.elapsed() >= options.progress_every {
            let secs = tick.0.elapsed().as_secs_f64();
            let (records_per_sec, mb_per_sec) = rates(records - tick.1, bytes - tick.2, secs);
            on_progress(&ConsumeProgress {
                elapsed: started.elapsed(),
                records,
                records_per_sec,
                mb_per_sec,
                interval: Percentiles::from(&interval),
            });
            interval.reset();
            tick = (Instant::now(), records, bytes);
        }
    }
    drop(consumer);
    let duration_secs = match (first, last) {
        (Some(f), Some(l)) => l.saturating_duration_since(f).as_secs_f64(),
        _ => 0.0,
    };
    let (records_per_sec, mb_per_sec) = rates(records, bytes, duration_secs);
    let p = Percentiles::from(&hist);
    Ok(ConsumeReport {
        topic: options.topic.clone(),
        partitions,
        records,
        bytes,
        duration_secs,
        records_per_sec,
        mb_per_sec,
        p50_ms: p.p50_ms,
        p95_ms: p.p95_ms,
        p99_ms: p.p99_ms,
        p999_ms: p.p999_ms,
        max_ms: p.max_ms,
        latency_from_header: from_header,
        latency_from_timestamp: from_timestamp,
        latency_unknown: unknown,
        errors,
        complete: options.records.is_some_and(|n| records >= n),
        idle_timeout,
        interrupted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Header;

    fn record(headers: Vec<Header>, timestamp: Option<i64>) -> ConsumedRecord {
        ConsumedRecord {
            topic: "t".into(),
            partition: 0,
            offset: 0,
            timestamp,
            key: Some("k".into()),
            value: Some("vvv".into()),
            headers,
        }
    }

    #[test]
    fn send_time_comes_from_the_header_then_the_timestamp() {
        let with_header = record(
            vec![Header::new(SENT_AT_HEADER, "1767225600123456")],
            Some(1_767_225_600_999),
        );
        assert_eq!(sent_at(&with_header), SentAt::Header(1_767_225_600_123_456));
        let bad_header = record(vec![Header::new(SENT_AT_HEADER, "soon")], Some(5));
        assert_eq!(sent_at(&bad_header), SentAt::Timestamp(5000));
        assert_eq!(sent_at(&record(vec![], Some(7))), SentAt::Timestamp(7000));
        assert_eq!(sent_at(&record(vec![], None)), SentAt::Unknown);
        assert_eq!(sent_at(&record(vec![], Some(-1))), SentAt::Unknown);
    }

    #[test]
    fn size_counts_key_value_and_headers() {
        let r = record(vec![Header::new("ab", "cde")], None);
        assert_eq!(size(&r), 1 + 3 + 2 + 3);
    }
}
