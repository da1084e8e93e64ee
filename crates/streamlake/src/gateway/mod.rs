//! The ingestion gateway: HTTP events in, validated and traceable records out.
//!
//! # Guarantees
//! - An event gets a 2xx result only once Kafka has acknowledged it (acks=all): the response
//!   names its topic, partition and offset.
//! - An invalid event (not an object, too large, a required or key field missing, a schema
//!   violation) is written to the dataset's dead-letter topic with its original bytes, its
//!   metadata headers and `dlq_reason`, `dlq_step`, `dlq_at`; the response says so, with the
//!   DLQ coordinates. The DLQ is never a fallback for Kafka being down. One producer writes
//!   both, so its `streamlake_producer_outcomes_total` counts each event once: `delivered`,
//!   `dead_lettered` or `failed`.
//! - If Kafka cannot take an event, the response is 503 with `Retry-After`, listing which
//!   events of the request were written and which were not.
//! - Every record carries the headers `dataset`, `schema_version`, `ingestion_id` (UUIDv7, or
//!   the caller's `Idempotency-Key`), `producer_service`, `ingested_at` (RFC 3339, UTC), and
//!   `traceparent` when the request has one (with spans exported over OTLP: the request's own
//!   `ingest` span, a child of the caller's, so every request has one). A request repeated with the same
//!   `Idempotency-Key` gets the first answer again and writes nothing.
//!
//! - Datasets in a registry format (Avro, Protobuf, JSON Schema) are serialized in the
//!   Confluent wire format with the schema registered (or its latest version fetched) at start;
//!   an event that does not fit is invalid, with the field named.
//! - With API keys configured, a request without a valid key for the dataset writes nothing
//!   (401/403); a key over its rate gets 429 with `Retry-After` and writes nothing.
//!
//! Status codes: 200 all accepted; 207 some accepted, some dead-lettered; 422 all
//! dead-lettered; 400 malformed JSON (with the byte position), no events or a bad
//! `Idempotency-Key`; 401 no or unknown API key; 403 key not allowed for the dataset; 404
//! unknown dataset; 413 body too large; 415 wrong content type; 429 over the key's rate; 503
//! Kafka unavailable. `GET /openapi.json` describes all of it.

mod auth;
mod body;
mod config;
mod http;
mod idempotency;
mod ingest;
mod limits;
mod metrics;
mod outcome;
mod server;

pub use config::{ApiKeyConfig, DatasetConfig, DatasetFormat, GatewayConfig};
pub use http::{serve, HttpConfig, ServeReport};
pub use idempotency::IdempotencyConfig;
pub use limits::LimitsConfig;
pub use server::{app, Gateway, GatewayError, GatewayReport};
