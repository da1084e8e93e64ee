//! The ingestion gateway: HTTP events in, validated and traceable records out.
//!
//! # Guarantees
//! - An event gets a 2xx result only once Kafka has acknowledged it (acks=all): the response
//!   names its topic, partition and offset.
//! - An invalid event (not an object, too large, a required or key field missing, a schema
//!   violation) is written to the dataset's dead-letter topic with its original bytes, its
//!   metadata headers and `dlq_reason`, `dlq_step`, `dlq_at`; the response says so, with the
//!   DLQ coordinates. The DLQ is never a fallback for Kafka being down.
//! - If Kafka cannot take an event, the response is 503 with `Retry-After`, listing which
//!   events of the request were written and which were not.
//! - Every record carries the headers `dataset`, `schema_version`, `ingestion_id` (UUIDv7, or
//!   the caller's `Idempotency-Key`), `producer_service`, `ingested_at` (RFC 3339, UTC), and
//!   `traceparent` when the request has one. A request repeated with the same
//!   `Idempotency-Key` gets the first answer again and writes nothing.
//!
//! Status codes: 200 all accepted; 207 some accepted, some dead-lettered; 422 all
//! dead-lettered; 400 malformed JSON (with the byte position) or no events; 404 unknown
//! dataset; 413 body too large; 415 wrong content type; 503 Kafka unavailable.

mod config;
mod ingest;
mod server;

pub use config::{DatasetConfig, GatewayConfig};
pub use server::{app, Gateway, GatewayError};
