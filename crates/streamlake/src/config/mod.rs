//! Configuration: typed settings, their defaults, and how they are layered.
//!
//! # Guarantees
//! - Every default is written once, in the `Default` impls below, and documented on its field.
//! - Layers apply in this order, each overriding the one before: built-in defaults, a config file
//!   (YAML, TOML, or a Java-style `client.properties`), environment variables (`STREAMLAKE_`
//!   prefix, `__` between nested keys), then command-line flags. [`LoadedConfig`] remembers which
//!   layer set each value, for `streamlake config show`.
//! - Unknown keys, values of the wrong type, conflicting settings and every property librdkafka
//!   refuses are all reported together, each with its key path, before any client is created
//!   ([`ConfigError::Invalid`]).
//! - Secrets ([`Secret`] fields and sensitive librdkafka properties) never appear in `Debug`
//!   output or in [`LoadedConfig::show`]. No error, note or listing shows the value of an
//!   unknown or mistyped property, nor of a secret of the wrong type; whether a name holds a
//!   secret is judged after trimming and lower-casing, and by its parts, misspelled ones too
//!   ([`is_sensitive_property`]). A property name with spaces around it is refused, by name.
//!   Syntax errors in config files give the line and column, never the source line.
//! - Any librdkafka property can still be set through a `properties` map (shared, producer-only
//!   or consumer-only); a property that duplicates a typed setting is a conflict, not a silent
//!   override.

mod client;
mod error;
mod load;
mod properties;
mod secret;
mod validate;

pub use client::{is_sensitive_property, redact_property, shown_name, ClientKind};
pub use error::{ConfigError, Problem};
pub use load::{ConfigLoader, Entry, LoadedConfig, Source, ENV_PREFIX, ENV_SEPARATOR};
pub use secret::Secret;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A passthrough map in `Debug` output, secret values redacted (see [`is_sensitive_property`]).
struct RedactedProperties<'a>(&'a BTreeMap<String, String>);

impl fmt::Debug for RedactedProperties<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.0
                    .iter()
                    .map(|(k, v)| (shown_name(k), redact_property(k, v))),
            )
            .finish()
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured, so a new field cannot be left out.
        let Self {
            bootstrap_servers,
            client_id,
            security,
            properties,
            producer,
            consumer,
            schema_registry,
            spool,
            statistics_interval_ms,
        } = self;
        f.debug_struct("Config")
            .field("bootstrap_servers", bootstrap_servers)
            .field("client_id", client_id)
            .field("security", security)
            .field("properties", &RedactedProperties(properties))
            .field("producer", producer)
            .field("consumer", consumer)
            .field("schema_registry", schema_registry)
            .field("spool", spool)
            .field("statistics_interval_ms", statistics_interval_ms)
            .finish()
    }
}

impl fmt::Debug for ProducerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured, so a new field cannot be left out.
        let Self {
            acks,
            enable_idempotence,
            compression,
            linger_ms,
            batch_size_bytes,
            queue_max_messages,
            queue_max_kbytes,
            delivery_timeout_ms,
            request_timeout_ms,
            retry_backoff_ms,
            retry_backoff_max_ms,
            max_in_flight,
            partitioner,
            circuit,
            transactional_id,
            transaction_timeout_ms,
            properties,
        } = self;
        f.debug_struct("ProducerConfig")
            .field("acks", acks)
            .field("enable_idempotence", enable_idempotence)
            .field("compression", compression)
            .field("linger_ms", linger_ms)
            .field("batch_size_bytes", batch_size_bytes)
            .field("queue_max_messages", queue_max_messages)
            .field("queue_max_kbytes", queue_max_kbytes)
            .field("delivery_timeout_ms", delivery_timeout_ms)
            .field("request_timeout_ms", request_timeout_ms)
            .field("retry_backoff_ms", retry_backoff_ms)
            .field("retry_backoff_max_ms", retry_backoff_max_ms)
            .field("max_in_flight", max_in_flight)
            .field("partitioner", partitioner)
            .field("circuit", circuit)
            .field("transactional_id", transactional_id)
            .field("transaction_timeout_ms", transaction_timeout_ms)
            .field("properties", &RedactedProperties(properties))
            .finish()
    }
}

impl fmt::Debug for ConsumerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured, so a new field cannot be left out.
        let Self {
            group_id,
            auto_offset_reset,
            enable_auto_commit,
            auto_commit_interval_ms,
            session_timeout_ms,
            max_poll_interval_ms,
            isolation_level,
            properties,
        } = self;
        f.debug_struct("ConsumerConfig")
            .field("group_id", group_id)
            .field("auto_offset_reset", auto_offset_reset)
            .field("enable_auto_commit", enable_auto_commit)
            .field("auto_commit_interval_ms", auto_commit_interval_ms)
            .field("session_timeout_ms", session_timeout_ms)
            .field("max_poll_interval_ms", max_poll_interval_ms)
            .field("isolation_level", isolation_level)
            .field("properties", &RedactedProperties(properties))
            .finish()
    }
}

/// Everything StreamLake needs to talk to a Kafka cluster.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Comma-separated `host:port` list. Default `localhost:9092`.
    pub bootstrap_servers: String,
    /// Client id sent to the brokers (shows up in broker logs and quotas). Default `streamlake`.
    pub client_id: String,
    /// TLS and SASL settings.
    pub security: SecurityConfig,
    /// Raw librdkafka properties applied to every client (producer, consumer and admin).
    pub properties: BTreeMap<String, String>,
    /// Producer settings.
    pub producer: ProducerConfig,
    /// Consumer settings.
    pub consumer: ConsumerConfig,
    /// Confluent-compatible Schema Registry settings.
    pub schema_registry: SchemaRegistryConfig,
    /// The disk spool for records Kafka cannot take (off unless `spool.dir` is set).
    pub spool: crate::spool::SpoolConfig,
    /// Default 5 000 ms: how often librdkafka reports its statistics (broker round trips and
    /// connection state, queue depth, batch sizes, consumer lag) into the metrics; 0 turns
    /// them off.
    pub statistics_interval_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bootstrap_servers: "localhost:9092".to_owned(),
            client_id: "streamlake".to_owned(),
            security: SecurityConfig::default(),
            properties: BTreeMap::new(),
            producer: ProducerConfig::default(),
            consumer: ConsumerConfig::default(),
            schema_registry: SchemaRegistryConfig::default(),
            spool: crate::spool::SpoolConfig::default(),
            statistics_interval_ms: 5_000,
        }
    }
}

impl Config {
    /// Defaults with the given bootstrap servers.
    pub fn with_bootstrap(bootstrap_servers: impl Into<String>) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.into(),
            ..Self::default()
        }
    }

    /// Checks the settings against each other; every problem is returned, with its key path.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let problems = validate::problems(self);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }
}

/// How the client authenticates and encrypts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// `plaintext` (default), `ssl`, `sasl_plaintext` or `sasl_ssl`.
    pub protocol: SecurityProtocol,
    /// `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512` or `OAUTHBEARER`; required for SASL protocols.
    pub sasl_mechanism: Option<SaslMechanism>,
    /// SASL user name (PLAIN and SCRAM).
    pub sasl_username: Option<String>,
    /// SASL password (PLAIN and SCRAM). Redacted everywhere.
    pub sasl_password: Option<Secret>,
    /// CA bundle used to verify the brokers (PEM file). Default: the system store.
    pub ssl_ca_location: Option<String>,
    /// Client certificate for mutual TLS (PEM file).
    pub ssl_certificate_location: Option<String>,
    /// Client private key for mutual TLS (PEM file).
    pub ssl_key_location: Option<String>,
    /// Password of the client private key. Redacted everywhere.
    pub ssl_key_password: Option<Secret>,
}

/// `security.protocol`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityProtocol {
    /// No TLS, no SASL.
    #[default]
    Plaintext,
    /// TLS.
    Ssl,
    /// SASL without TLS.
    SaslPlaintext,
    /// SASL over TLS (what managed Kafka services use).
    SaslSsl,
}

impl SecurityProtocol {
    fn as_librdkafka(self) -> &'static str {
        match self {
            Self::Plaintext => "plaintext",
            Self::Ssl => "ssl",
            Self::SaslPlaintext => "sasl_plaintext",
            Self::SaslSsl => "sasl_ssl",
        }
    }
    fn is_sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }
    fn is_tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }
}

/// `sasl.mechanism`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SaslMechanism {
    /// User name and password in the clear (use with TLS).
    #[serde(rename = "PLAIN")]
    Plain,
    /// SCRAM with SHA-256.
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    /// SCRAM with SHA-512.
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
    /// OAuth bearer tokens (configure the token source through `properties`).
    #[serde(rename = "OAUTHBEARER")]
    OAuthBearer,
}

impl SaslMechanism {
    fn as_librdkafka(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
            Self::OAuthBearer => "OAUTHBEARER",
        }
    }
}

/// Producer settings. The defaults favour durability first, then throughput.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProducerConfig {
    /// `all` (default): the leader waits for every in-sync replica, so an acknowledged record
    /// survives the loss of the leader. `leader` and `none` trade that away for latency.
    pub acks: Acks,
    /// Default `true`: retries cannot duplicate or reorder records within a partition.
    /// Requires `acks: all` and `max_in_flight <= 5`.
    pub enable_idempotence: bool,
    /// Default `lz4`: the cheapest codec in CPU per byte with a useful ratio on JSON and text
    /// (zstd compresses more but costs several times the CPU at high rates; snappy and gzip
    /// are also available).
    pub compression: Compression,
    /// Default 5 ms: how long a batch may wait for more records. Small enough to be invisible in
    /// request latency, large enough to batch under load.
    pub linger_ms: u64,
    /// Default 1 MiB: the largest batch sent to one partition.
    pub batch_size_bytes: u64,
    /// Default 10 000: records buffered in the client before sends wait (back-pressure). Each
    /// queued record is also held by StreamLake until its outcome (to hand it back on failure),
    /// so this bounds memory too; 10 000 is 50 ms at 200 000 records/s, enough for full batches.
    pub queue_max_messages: u64,
    /// Default 32 768 KiB (32 MiB): bytes buffered before sends wait. Bounds memory.
    pub queue_max_kbytes: u64,
    /// Default 30 000 ms: the whole budget for one record, retries included. After it the record
    /// is handed back with a timeout error (librdkafka's own default is 5 minutes).
    pub delivery_timeout_ms: u64,
    /// Default 10 000 ms: how long one produce request may take before it is retried.
    pub request_timeout_ms: u64,
    /// Default 100 ms: first retry back-off; it doubles up to `retry_backoff_max_ms`.
    pub retry_backoff_ms: u64,
    /// Default 1 000 ms: the longest back-off between retries.
    pub retry_backoff_max_ms: u64,
    /// Default 5: produce requests in flight per broker connection (5 is the most that keeps
    /// ordering with idempotence).
    pub max_in_flight: u32,
    /// Default `murmur2_random`: the same key lands on the same partition as with the Java
    /// client, so StreamLake and Java producers can share a keyed topic.
    pub partitioner: String,
    /// The circuit breaker of the spooling producer: after `failure_threshold` retriable
    /// failures in a row (default 5) records go to the spool, or fail at once without one,
    /// until a probe gets through (every `open_ms`, default 5000).
    pub circuit: crate::producer::CircuitConfig,
    /// Unset by default. Set, the producer is transactional (use
    /// [`crate::producer::TransactionalProducer`]): records sent between begin and commit
    /// become visible to `read_committed` consumers together, or never if the transaction is
    /// aborted. Each running instance needs its own id; a second one with the same id fences
    /// the first.
    pub transactional_id: Option<String>,
    /// Default 60 000 ms: how long the broker lets a transaction stay open before it aborts it.
    pub transaction_timeout_ms: u64,
    /// Raw librdkafka producer properties.
    pub properties: BTreeMap<String, String>,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        Self {
            acks: Acks::All,
            enable_idempotence: true,
            compression: Compression::Lz4,
            linger_ms: 5,
            batch_size_bytes: 1_048_576,
            queue_max_messages: 10_000,
            queue_max_kbytes: 32_768,
            delivery_timeout_ms: 30_000,
            request_timeout_ms: 10_000,
            retry_backoff_ms: 100,
            retry_backoff_max_ms: 1_000,
            max_in_flight: 5,
            partitioner: "murmur2_random".to_owned(),
            circuit: crate::producer::CircuitConfig::default(),
            transactional_id: None,
            transaction_timeout_ms: 60_000,
            properties: BTreeMap::new(),
        }
    }
}

/// `acks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Acks {
    /// Every in-sync replica (`acks=all`).
    All,
    /// The partition leader only (`acks=1`).
    Leader,
    /// No acknowledgement (`acks=0`): records can be lost without an error.
    None,
}

impl Acks {
    fn as_librdkafka(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Leader => "1",
            Self::None => "0",
        }
    }
}

/// `compression.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// No compression.
    None,
    /// gzip.
    Gzip,
    /// Snappy.
    Snappy,
    /// LZ4 (default).
    Lz4,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// The librdkafka name of the codec.
    pub fn as_librdkafka(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Snappy => "snappy",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
        }
    }
}

/// Consumer settings.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsumerConfig {
    /// Consumer group. Required to subscribe; not needed to read assigned partitions.
    pub group_id: Option<String>,
    /// Default `earliest`: where a group with no committed offset starts, so nothing written
    /// before the group first joined is skipped.
    pub auto_offset_reset: OffsetReset,
    /// Default `true`: offsets of processed records are committed every
    /// `auto_commit_interval_ms` and on close. With `false` the application commits.
    pub enable_auto_commit: bool,
    /// Default 5 000 ms.
    pub auto_commit_interval_ms: u64,
    /// Default 45 000 ms: how long the group waits for a silent member before rebalancing.
    pub session_timeout_ms: u64,
    /// Default 300 000 ms: the longest gap between two reads before the member is removed.
    pub max_poll_interval_ms: u64,
    /// Default `read_committed`: records of aborted transactions are never returned.
    pub isolation_level: IsolationLevel,
    /// Raw librdkafka consumer properties.
    pub properties: BTreeMap<String, String>,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            group_id: None,
            auto_offset_reset: OffsetReset::Earliest,
            enable_auto_commit: true,
            auto_commit_interval_ms: 5_000,
            session_timeout_ms: 45_000,
            max_poll_interval_ms: 300_000,
            isolation_level: IsolationLevel::ReadCommitted,
            properties: BTreeMap::new(),
        }
    }
}

/// `auto.offset.reset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OffsetReset {
    /// The oldest record.
    Earliest,
    /// Only records written after joining.
    Latest,
    /// Fail instead of guessing.
    Error,
}

/// `isolation.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IsolationLevel {
    /// Only committed transactional records.
    ReadCommitted,
    /// Everything, including records of open or aborted transactions.
    ReadUncommitted,
}

/// Confluent-compatible Schema Registry settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchemaRegistryConfig {
    /// Registry URL, or several separated by commas (tried in order). Required for the Avro,
    /// Protobuf and JSON Schema formats. Also `STREAMLAKE_SCHEMA_REGISTRY_URL`.
    pub url: Option<String>,
    /// HTTP basic auth user (Confluent Cloud: the API key).
    pub basic_auth_user: Option<String>,
    /// HTTP basic auth password (Confluent Cloud: the API secret). Redacted everywhere.
    pub basic_auth_password: Option<Secret>,
    /// Bearer token, instead of basic auth. Redacted everywhere.
    pub bearer_token: Option<Secret>,
    /// CA bundle to verify the registry's TLS certificate (PEM). Default: the system store.
    pub ssl_ca_location: Option<String>,
    /// Default `topic`: the subject is `<topic>-value` / `<topic>-key`. `record` uses the
    /// record's full name; `topic_record` both.
    pub subject_name_strategy: SubjectNameStrategy,
    /// Default `true`: a schema not yet in the registry is registered on first use.
    pub auto_register: bool,
    /// Default `false`: serialize with the latest registered version instead of the local
    /// schema's own id. Requires `auto_register: false`.
    pub use_latest_version: bool,
    /// Default 10 000 ms: the longest one registry request may take.
    pub request_timeout_ms: u64,
}

impl Default for SchemaRegistryConfig {
    fn default() -> Self {
        Self {
            url: None,
            basic_auth_user: None,
            basic_auth_password: None,
            bearer_token: None,
            ssl_ca_location: None,
            subject_name_strategy: SubjectNameStrategy::Topic,
            auto_register: true,
            use_latest_version: false,
            request_timeout_ms: 10_000,
        }
    }
}

/// How the registry subject of a schema is named.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectNameStrategy {
    /// `<topic>-key` / `<topic>-value`.
    #[default]
    Topic,
    /// The record's full name (Avro namespace.name, Protobuf package.Message, JSON Schema title).
    Record,
    /// `<topic>-<record full name>`.
    TopicRecord,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_redacts_secret_properties() {
        let mut c = Config::default();
        c.properties
            .insert("sasl.password".into(), "hunter2-a".into());
        c.producer
            .properties
            .insert("Sasl.Pasword ".into(), "hunter2-b".into());
        c.consumer
            .properties
            .insert("ssl.key.pem".into(), "hunter2-c".into());
        c.properties
            .insert("socket.keepalive.enable".into(), "true".into());
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains(r#""sasl.password": "[redacted]""#)
                && shown.contains(r#""socket.keepalive.enable": "true""#)
                && shown.contains("linger_ms: 5"),
            "{shown}"
        );
    }
}
