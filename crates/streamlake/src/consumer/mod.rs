//! The StreamLake consumer.
//!
//! # Delivery semantics
//! At least once. Offsets are stored only for records the application has processed:
//! - with `consumer.enable_auto_commit: true` (default), a record counts as processed when the
//!   application asks for the next one ([`Consumer::recv`]); stored offsets are committed every
//!   `auto_commit_interval_ms`, before partitions are revoked, and on [`Consumer::close`];
//! - with `false`, the application marks records with [`Consumer::ack`] and commits with
//!   [`Consumer::commit`] (and `close` commits what was acked).
//!
//! A restarted member of the same group therefore resumes right after the last processed
//! record; at most the records in processing at a crash are read again.
//!
//! # Modes
//! [`Consumer::subscribe`] joins a group (partitions balanced across members, rebalance hook
//! called); [`Consumer::assign`] reads chosen partitions from a chosen position without a group.

mod context;
mod error;
mod start;

pub use context::{RebalanceEvent, RebalanceHook};
pub use error::ConsumeError;
pub use start::StartFrom;

use crate::config::{ClientKind, Config};
use crate::record::{ConsumedRecord, Header};
use bytes::Bytes;
use context::Context;
use rdkafka::consumer::{CommitMode, Consumer as _, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// Options that are not Kafka settings.
#[derive(Clone, Default)]
pub struct ConsumerOptions {
    /// Return [`Received::End`] once every assigned partition has been read to its end.
    pub report_end: bool,
    /// Called on every rebalance (group mode).
    pub on_rebalance: Option<RebalanceHook>,
    /// Where to count records, lag and commits (register them to expose them).
    pub metrics: Option<crate::metrics::ConsumerMetrics>,
}

impl std::fmt::Debug for ConsumerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerOptions")
            .field("report_end", &self.report_end)
            .finish_non_exhaustive()
    }
}

/// What [`Consumer::recv`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// A record.
    Record(ConsumedRecord),
    /// Every assigned partition has been read to its end (only with `report_end`).
    End,
}

/// How long metadata and offset look-ups may take.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// A Kafka consumer. See the module docs for its commit semantics.
pub struct Consumer {
    inner: StreamConsumer<Context>,
    metrics: crate::metrics::ConsumerMetrics,
    auto_ack: bool,
    has_group: bool,
    report_end: bool,
    /// The last record returned, stored as processed when the next one is asked for.
    last: Mutex<Option<(String, i32, i64)>>,
    /// Assigned partitions and whether each is at its end.
    at_end: Mutex<BTreeMap<(String, i32), bool>>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("auto_ack", &self.auto_ack)
            .field("has_group", &self.has_group)
            .finish_non_exhaustive()
    }
}

impl Consumer {
    /// Creates a consumer. Does not contact the cluster. Must be called within a Tokio runtime
    /// (its wake-ups are scheduled there).
    pub fn new(config: &Config, options: ConsumerOptions) -> Result<Self, ConsumeError> {
        let mut cc = config.client_config(ClientKind::Consumer)?;
        let has_group = config.consumer.group_id.is_some();
        if !has_group {
            // librdkafka needs a group id even to assign partitions; this one never joins a
            // group (no subscribe) and never commits.
            cc.set(
                "group.id",
                format!("streamlake-assign-{}", std::process::id()),
            );
            cc.set("enable.auto.commit", "false");
        }
        if options.report_end {
            cc.set("enable.partition.eof", "true");
        }
        let metrics = options.metrics.unwrap_or_default();
        let inner: StreamConsumer<Context> = cc
            .create_with_context(Context {
                hook: options.on_rebalance,
                metrics: metrics.clone(),
            })
            .map_err(|e| ConsumeError::Create(e.to_string()))?;
        Ok(Self {
            inner,
            metrics,
            auto_ack: config.consumer.enable_auto_commit,
            has_group,
            report_end: options.report_end,
            last: Mutex::new(None),
            at_end: Mutex::new(BTreeMap::new()),
        })
    }

    /// Joins the consumer group and subscribes to the topics. Where a partition has no
    /// committed offset, reading starts at `consumer.auto_offset_reset`.
    pub fn subscribe(&self, topics: &[&str]) -> Result<(), ConsumeError> {
        if !self.has_group {
            return Err(ConsumeError::NoGroup);
        }
        self.inner.subscribe(topics).map_err(ConsumeError::from)
    }

    /// Reads `partitions` of `topic` (all of them when `None`) from `from`, without a group.
    pub fn assign(
        &self,
        topic: &str,
        partitions: Option<&[i32]>,
        from: StartFrom,
    ) -> Result<(), ConsumeError> {
        let count = self.partition_count(topic)?;
        let wanted: Vec<i32> = match partitions {
            Some(p) => p.to_vec(),
            None => (0..count as i32).collect(),
        };
        if let Some(&bad) = wanted.iter().find(|p| **p < 0 || **p as usize >= count) {
            return Err(ConsumeError::UnknownPartition {
                topic: topic.to_owned(),
                partition: bad,
                count,
            });
        }
        let mut tpl = TopicPartitionList::new();
        for p in &wanted {
            let offset = match from {
                StartFrom::Beginning => Offset::Beginning,
                StartFrom::End => Offset::End,
                StartFrom::Offset(o) => Offset::Offset(o),
                StartFrom::Tail(n) => Offset::OffsetTail(n),
                StartFrom::Timestamp(ts) => Offset::Offset(ts),
            };
            tpl.add_partition_offset(topic, *p, offset)?;
        }
        if matches!(from, StartFrom::Timestamp(_)) {
            tpl = self.inner.offsets_for_times(tpl, LOOKUP_TIMEOUT)?;
        }
        self.inner.assign(&tpl)?;
        let mut at_end = self.at_end.lock().expect("lock");
        at_end.clear();
        for p in wanted {
            at_end.insert((topic.to_owned(), p), false);
        }
        Ok(())
    }

    /// Number of partitions of `topic`.
    pub fn partition_count(&self, topic: &str) -> Result<usize, ConsumeError> {
        let md = self.inner.fetch_metadata(Some(topic), LOOKUP_TIMEOUT)?;
        let t = md.topics().iter().find(|t| t.name() == topic);
        match t {
            Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
                Ok(t.partitions().len())
            }
            _ => Err(ConsumeError::UnknownTopic(topic.to_owned())),
        }
    }

    /// The next record. In auto-commit mode this first marks the previous record as processed.
    pub async fn recv(&self) -> Result<Received, ConsumeError> {
        if self.auto_ack {
            let last = self.last.lock().expect("lock").take();
            if let Some((topic, partition, offset)) = last {
                self.store(&topic, partition, offset)?;
            }
        }
        loop {
            match self.inner.recv().await {
                Ok(msg) => {
                    let record = owned(&msg);
                    self.metrics.read(
                        &record.topic,
                        (record.key.as_ref().map_or(0, |k| k.len())
                            + record.value.as_ref().map_or(0, |v| v.len()))
                            as u64,
                    );
                    if self.report_end {
                        self.at_end
                            .lock()
                            .expect("lock")
                            .insert((record.topic.clone(), record.partition), false);
                    }
                    if self.auto_ack {
                        *self.last.lock().expect("lock") =
                            Some((record.topic.clone(), record.partition, record.offset));
                    }
                    return Ok(Received::Record(record));
                }
                Err(KafkaError::PartitionEOF(partition)) => {
                    if self.partition_reached_end(partition) {
                        return Ok(Received::End);
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The records as a stream: [`Consumer::recv`] called again each time the stream is polled,
    /// with the same commit semantics. The stream never ends by itself; with `report_end` it
    /// yields [`Received::End`] and goes on.
    pub fn stream(&self) -> impl futures::Stream<Item = Result<Received, ConsumeError>> + '_ {
        futures::stream::unfold(self, |consumer| async move {
            Some((consumer.recv().await, consumer))
        })
    }

    /// Marks `partition` as read to its end; true when every assigned partition is.
    fn partition_reached_end(&self, partition: i32) -> bool {
        let mut at_end = self.at_end.lock().expect("lock");
        // Group mode: follow the current assignment (assign mode knows its partitions).
        if let Some(assignment) = self
            .has_group
            .then(|| self.inner.assignment().ok())
            .flatten()
        {
            let current: Vec<_> = assignment
                .elements()
                .iter()
                .map(|e| (e.topic().to_owned(), e.partition()))
                .collect();
            at_end.retain(|k, _| current.contains(k));
            for k in current {
                at_end.entry(k).or_insert(false);
            }
        }
        for ((_, p), end) in at_end.iter_mut() {
            if *p == partition {
                *end = true;
            }
        }
        !at_end.is_empty() && at_end.values().all(|e| *e)
    }

    fn store(&self, topic: &str, partition: i32, offset: i64) -> Result<(), ConsumeError> {
        if !self.has_group {
            return Ok(());
        }
        // librdkafka stores `offset + 1`: the next record to read.
        match self.inner.store_offset(topic, partition, offset) {
            Ok(()) => Ok(()),
            // The partition was revoked meanwhile; its new owner reads the record again.
            Err(e) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::State) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Marks a record as processed (manual-commit mode); committed by the next
    /// [`Consumer::commit`] or by [`Consumer::close`].
    pub fn ack(&self, record: &ConsumedRecord) -> Result<(), ConsumeError> {
        self.store(&record.topic, record.partition, record.offset)
    }

    /// The group's identity for offsets committed inside a producer's transaction.
    pub(crate) fn group_metadata(&self) -> Option<rdkafka::consumer::ConsumerGroupMetadata> {
        if self.has_group {
            self.inner.group_metadata()
        } else {
            None
        }
    }

    /// Whether processed records are marked automatically (`consumer.enable_auto_commit`).
    pub(crate) fn auto_acks(&self) -> bool {
        self.auto_ack
    }

    /// Moves the read position of an assigned partition (records buffered past it are
    /// dropped and read again).
    pub fn seek(&self, topic: &str, partition: i32, offset: i64) -> Result<(), ConsumeError> {
        self.inner
            .seek(topic, partition, Offset::Offset(offset), LOOKUP_TIMEOUT)
            .map_err(ConsumeError::from)
    }

    /// Commits every processed offset now, waiting for the broker.
    pub fn commit(&self) -> Result<(), ConsumeError> {
        if !self.has_group {
            return Ok(());
        }
        match self.inner.commit_consumer_state(CommitMode::Sync) {
            // Counted in the commit callback, which runs for these commits too.
            Ok(()) => Ok(()),
            Err(e) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::NoOffset) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// This consumer's metrics (register them with [`crate::metrics::ConsumerMetrics::register`]).
    pub fn metrics(&self) -> &crate::metrics::ConsumerMetrics {
        &self.metrics
    }

    /// Leaves cleanly: in auto-commit mode the last record returned counts as processed;
    /// processed offsets are committed; the group is left.
    pub fn close(self) -> Result<(), ConsumeError> {
        if self.auto_ack {
            let last = self.last.lock().expect("lock").take();
            if let Some((topic, partition, offset)) = last {
                self.store(&topic, partition, offset)?;
            }
        }
        let committed = self.commit();
        if self.has_group {
            self.inner.unsubscribe();
        }
        // Dropping the client closes the consumer queue, which leaves the group.
        drop(self.inner);
        committed
    }
}

fn owned(msg: &BorrowedMessage<'_>) -> ConsumedRecord {
    let headers = msg
        .headers()
        .map(|hs| {
            hs.iter()
                .map(|h| Header {
                    key: h.key.to_owned().into(),
                    value: h.value.map(Bytes::copy_from_slice),
                })
                .collect()
        })
        .unwrap_or_default();
    ConsumedRecord {
        topic: msg.topic().to_owned(),
        partition: msg.partition(),
        offset: msg.offset(),
        timestamp: msg.timestamp().to_millis(),
        key: msg.key().map(Bytes::copy_from_slice),
        value: msg.payload().map(Bytes::copy_from_slice),
        headers,
    }
}
