//! Records going to Kafka and coming back.

use bytes::Bytes;
use std::borrow::Cow;

/// A record header. Keys may repeat; order is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header name: borrowed when it is a `&'static str` (the usual case: names are fixed), so
    /// naming a header costs no allocation per record.
    pub key: Cow<'static, str>,
    /// Header value (`None` is a null header).
    pub value: Option<Bytes>,
}

impl Header {
    /// A header with a value.
    pub fn new(key: impl Into<Cow<'static, str>>, value: impl Into<Bytes>) -> Self {
        Self {
            key: key.into(),
            value: Some(value.into()),
        }
    }
}

/// A record to produce. Cloning is cheap: key and value are reference-counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Destination topic.
    pub topic: String,
    /// Partition key. Records with the same key go to the same partition (unless `partition` is
    /// set), which is what keeps them in order.
    pub key: Option<Bytes>,
    /// Payload. `None` is a tombstone.
    pub value: Option<Bytes>,
    /// Headers, in order.
    pub headers: Vec<Header>,
    /// Explicit partition, overriding the key hash.
    pub partition: Option<i32>,
    /// Record timestamp in milliseconds since the Unix epoch; `None` lets the client stamp it.
    pub timestamp: Option<i64>,
}

impl Record {
    /// A record with a value and nothing else.
    pub fn new(topic: impl Into<String>, value: impl Into<Bytes>) -> Self {
        Self {
            topic: topic.into(),
            key: None,
            value: Some(value.into()),
            headers: Vec::new(),
            partition: None,
            timestamp: None,
        }
    }

    /// Sets the key.
    pub fn key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Adds a header.
    pub fn header(mut self, key: impl Into<Cow<'static, str>>, value: impl Into<Bytes>) -> Self {
        self.headers.push(Header::new(key, value));
        self
    }

    /// Sets the partition.
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Sets the timestamp (ms since the epoch).
    pub fn timestamp(mut self, ms: i64) -> Self {
        self.timestamp = Some(ms);
        self
    }

    /// Bytes of key, value and headers: what the record costs on the wire before compression.
    pub fn size(&self) -> usize {
        self.key.as_ref().map_or(0, Bytes::len)
            + self.value.as_ref().map_or(0, Bytes::len)
            + self
                .headers
                .iter()
                .map(|h| h.key.len() + h.value.as_ref().map_or(0, Bytes::len))
                .sum::<usize>()
    }

    /// The record's correlation id: the value of its first `ingestion_id` header, when that is
    /// UTF-8. Log events about the record carry it in the field `ingestion_id`.
    pub fn ingestion_id(&self) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.key == INGESTION_ID)
            .and_then(|h| h.value.as_deref())
            .and_then(|v| std::str::from_utf8(v).ok())
    }
}

/// Name of the header that carries a record's correlation id.
pub const INGESTION_ID: &str = "ingestion_id";

/// A new correlation id: a UUIDv7, so ids sort by creation time.
pub fn new_ingestion_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Where an acknowledged record was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset in the partition.
    pub offset: i64,
    /// The record's timestamp (ms since the epoch) as stored, when known.
    pub timestamp: Option<i64>,
}

/// A record read from Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Timestamp (ms since the epoch), when the record has one.
    pub timestamp: Option<i64>,
    /// Key.
    pub key: Option<Bytes>,
    /// Value (`None` for a tombstone).
    pub value: Option<Bytes>,
    /// Headers, in order.
    pub headers: Vec<Header>,
}

impl ConsumedRecord {
    /// The first header with this name.
    pub fn header(&self, key: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.key == key)
            .and_then(|h| h.value.as_deref())
    }
}
