//! StreamLake: get data into Apache Kafka reliably and fast, and read it back.
//!
//! The library holds all of StreamLake's logic; the `streamlake` command only wires it up.
//!
//! - [`config`]: typed, layered configuration (defaults < file < env < flags) with production
//!   defaults (`acks=all`, idempotence, lz4, 5 ms linger, bounded queue, 30 s delivery budget).
//! - [`producer`]: every accepted record ends delivered (with its offset) or handed back with
//!   the error; back-pressure instead of failure when the local queue is full.
//! - [`consumer`]: at-least-once reading with offsets committed only for processed records.
//! - [`admin`] creates, lists, describes and deletes topics.
//! - [`embedded`]: an in-process Kafka-compatible cluster for demos and tests.
//! - [`registry`] and [`serdes`]: the Schema Registry and the Avro and JSON Schema formats in
//!   Confluent's wire format.
//! - [`io`]: reading records from lines and JSON lines, and printing them.
//! - [`datagen`]: schema-true random records for load tests.
//! - [`demo`]: the end-to-end demo job.
//! - [`logging`]: text or JSON logs, correlation ids, OTLP span export.
//! - [`perf`]: producer and consumer performance runs, latency measured from intended send
//!   time.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod admin;
pub mod config;
pub mod consumer;
pub mod datagen;
pub mod demo;
pub mod embedded;
pub mod gateway;
pub mod health;
pub mod io;
pub mod logging;
pub mod metrics;
pub mod perf;
pub mod producer;
pub mod record;
pub mod registry;
pub mod serdes;
pub mod spool;
pub mod stats;

pub use config::Config;
pub use consumer::{ConsumeError, Consumer, ConsumerOptions, Received, StartFrom};
pub use producer::{CloseReport, ProduceError, Producer, SendError};
pub use record::{ConsumedRecord, Delivery, Header, Record};
