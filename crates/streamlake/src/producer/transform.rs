//! Consume-transform-produce, exactly once: read a batch, turn each record into zero or more
//! output records, and write the outputs together with the consumer's offsets in one
//! transaction.
//!
//! # Guarantees
//! For `read_committed` readers of the outputs, every input record's outputs appear exactly
//! once, in input order per input partition, even across crashes and restarts: the offsets of a
//! batch are committed only together with its outputs. A batch whose transaction cannot commit
//! (a record not delivered, an abortable broker error) is aborted and read again from its
//! first offsets. A transformation error aborts the batch and is returned with the input
//! record's position, so nothing is skipped silently.
//!
//! The consumer must be in a group (`consumer.group_id`, subscribed) with
//! `consumer.enable_auto_commit: false`: offsets are committed by the transaction only.

use super::transaction::{TransactionError, TransactionalProducer};
use crate::consumer::{ConsumeError, Consumer, Received};
use crate::record::{ConsumedRecord, Record};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How batches are formed and when the loop ends.
#[derive(Debug, Clone)]
pub struct TransformOptions {
    /// Default 500: input records per transaction at most.
    pub batch_records: usize,
    /// Default 200 ms: how long a batch waits to fill before it is written.
    pub batch_wait: Duration,
    /// Default unset: stop once no input record arrived for this long (batch jobs, tests).
    pub stop_when_idle: Option<Duration>,
    /// Default 5: aborted attempts of one batch in a row before the loop gives up.
    pub max_attempts: u32,
}

impl Default for TransformOptions {
    fn default() -> Self {
        Self {
            batch_records: 500,
            batch_wait: Duration::from_millis(200),
            stop_when_idle: None,
            max_attempts: 5,
        }
    }
}

/// What a transform run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransformReport {
    /// Transactions committed.
    pub committed: u64,
    /// Transactions aborted (and their batches read again).
    pub aborted: u64,
    /// Input records whose outputs were committed.
    pub records_in: u64,
    /// Output records committed.
    pub records_out: u64,
}

/// Why a transform run stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransformError {
    /// The consumer or producer is not set up for exactly once.
    #[error("{0}")]
    Config(String),
    /// The transformation refused an input record; its batch was aborted.
    #[error("{topic}/{partition} offset {offset}: {message}")]
    Transform {
        /// Input topic.
        topic: String,
        /// Input partition.
        partition: i32,
        /// Input offset.
        offset: i64,
        /// What the transformation said.
        message: String,
    },
    /// Reading failed.
    #[error("reading: {0}")]
    Consume(#[from] ConsumeError),
    /// A transaction failed for good (fatal, or aborted `max_attempts` times in a row).
    #[error("transaction: {0}")]
    Transaction(#[from] TransactionError),
}

impl TransformError {
    /// Worth running again later.
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Consume(e) => e.is_retriable(),
            Self::Transaction(e) => e.is_retriable() || e.is_abortable(),
            _ => false,
        }
    }
}

/// Runs the loop until `stop` is set, the input stays idle for `stop_when_idle`, or an error.
/// `f` maps an input record to its output records (an `Err` names what is wrong with it).
pub async fn transform<F>(
    consumer: &Consumer,
    producer: &TransactionalProducer,
    options: &TransformOptions,
    stop: &AtomicBool,
    mut f: F,
) -> Result<TransformReport, TransformError>
where
    F: FnMut(&ConsumedRecord) -> Result<Vec<Record>, String>,
{
    if consumer.auto_acks() {
        return Err(TransformError::Config(
            "set consumer.enable_auto_commit to false: the transaction commits the offsets".into(),
        ));
    }
    let mut report = TransformReport::default();
    let mut last_input = Instant::now();
    let mut attempts = 0;
    while !stop.load(Ordering::SeqCst) {
        let batch = read_batch(consumer, options).await?;
        if batch.is_empty() {
            if options
                .stop_when_idle
                .is_some_and(|idle| last_input.elapsed() >= idle)
            {
                break;
            }
            continue;
        }
        last_input = Instant::now();
        match write_batch(consumer, producer, &batch, &mut f).await {
            Ok(out) => {
                attempts = 0;
                report.committed += 1;
                report.records_in += batch.len() as u64;
                report.records_out += out;
            }
            Err(e) => {
                let _ = producer.abort();
                report.aborted += 1;
                rewind(consumer, &batch)?;
                attempts += 1;
                let retry = matches!(&e, TransformError::Transaction(t) if t.is_abortable() || t.is_retriable());
                if !retry || attempts >= options.max_attempts {
                    return Err(e);
                }
                tracing::warn!(error = %e, attempt = attempts, "transaction aborted; reading the batch again");
            }
        }
    }
    Ok(report)
}

/// Up to `batch_records` records, waiting at most `batch_wait` for them.
async fn read_batch(
    consumer: &Consumer,
    options: &TransformOptions,
) -> Result<Vec<ConsumedRecord>, ConsumeError> {
    let deadline = tokio::time::Instant::now() + options.batch_wait;
    let mut batch = Vec::new();
    while batch.len() < options.batch_records {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Ok(Ok(Received::Record(r))) => batch.push(r),
            Ok(Ok(Received::End)) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => break,
        }
    }
    Ok(batch)
}

/// One transaction: the outputs of `batch` and the offsets after it. Returns the outputs
/// written.
async fn write_batch<F>(
    consumer: &Consumer,
    producer: &TransactionalProducer,
    batch: &[ConsumedRecord],
    f: &mut F,
) -> Result<u64, TransformError>
where
    F: FnMut(&ConsumedRecord) -> Result<Vec<Record>, String>,
{
    producer.begin()?;
    let mut outputs = Vec::new();
    for input in batch {
        let out = f(input).map_err(|message| TransformError::Transform {
            topic: input.topic.clone(),
            partition: input.partition,
            offset: input.offset,
            message,
        })?;
        outputs.extend(out);
    }
    let written = outputs.len() as u64;
    for r in futures::future::join_all(outputs.into_iter().map(|r| producer.send(r))).await {
        // A failed record is remembered by the producer; the commit below refuses.
        drop(r);
    }
    producer.send_offsets(consumer, &next_offsets(batch))?;
    producer.commit()?;
    Ok(written)
}

/// Per input partition, the offset after the last record of `batch`.
fn next_offsets(batch: &[ConsumedRecord]) -> Vec<(String, i32, i64)> {
    let mut next: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for r in batch {
        let e = next.entry((r.topic.clone(), r.partition)).or_insert(0);
        *e = (*e).max(r.offset + 1);
    }
    next.into_iter().map(|((t, p), o)| (t, p, o)).collect()
}

/// Moves each input partition back to the first record of `batch`.
fn rewind(consumer: &Consumer, batch: &[ConsumedRecord]) -> Result<(), ConsumeError> {
    let mut first: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for r in batch {
        let e = first
            .entry((r.topic.clone(), r.partition))
            .or_insert(i64::MAX);
        *e = (*e).min(r.offset);
    }
    for ((topic, partition), offset) in first {
        consumer.seek(&topic, partition, offset)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(p: i32, o: i64) -> ConsumedRecord {
        ConsumedRecord {
            topic: "in".into(),
            partition: p,
            offset: o,
            timestamp: None,
            key: None,
            value: None,
            headers: Vec::new(),
        }
    }

    #[test]
    fn next_offsets_are_one_past_the_last_record_of_each_partition() {
        let batch = [rec(0, 5), rec(1, 9), rec(0, 6), rec(1, 10), rec(0, 7)];
        assert_eq!(
            next_offsets(&batch),
            vec![("in".into(), 0, 8), ("in".into(), 1, 11)]
        );
    }
}
