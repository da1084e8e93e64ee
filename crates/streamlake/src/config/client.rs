//! Turns a [`Config`] into librdkafka client configurations. This is the only place where
//! StreamLake settings become librdkafka properties.

use super::{Config, ConfigError, Problem};
use rdkafka::ClientConfig;

/// Which client a configuration is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// A producer.
    Producer,
    /// A consumer.
    Consumer,
    /// An admin client (and metadata look-ups).
    Admin,
}

/// librdkafka properties whose values are secrets. Matches rust-rdkafka's own list, plus
/// `sasl.jaas.config`-style values that may be passed through.
const SENSITIVE: &[&str] = &[
    "sasl.password",
    "ssl.key.password",
    "ssl.keystore.password",
    "ssl.truststore.password",
    "sasl.oauthbearer.client.secret",
    "ssl.key.pem",
    "sasl.oauthbearer.config",
    "sasl.jaas.config",
];

/// Whether a librdkafka property (or a StreamLake key) holds a secret.
pub fn is_sensitive_property(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SENSITIVE.contains(&key.as_str())
        || key.ends_with("password")
        || key.ends_with("secret")
        || key.contains("token")
}

/// The value to print for a property: `[redacted]` for secrets.
pub fn redact_property<'a>(key: &str, value: &'a str) -> &'a str {
    if is_sensitive_property(key) {
        super::secret::REDACTED
    } else {
        value
    }
}

/// One librdkafka property derived from a typed setting.
pub(crate) struct Derived {
    /// The librdkafka property.
    pub property: &'static str,
    /// The StreamLake key path it comes from.
    pub key: &'static str,
    pub value: Option<String>,
}

fn d(property: &'static str, key: &'static str, value: impl ToString) -> Derived {
    Derived {
        property,
        key,
        value: Some(value.to_string()),
    }
}

fn opt(property: &'static str, key: &'static str, value: Option<&str>) -> Derived {
    Derived {
        property,
        key,
        value: value.map(str::to_owned),
    }
}

/// Every typed setting that becomes a librdkafka property, for one client kind.
pub(crate) fn derived(config: &Config, kind: ClientKind) -> Vec<Derived> {
    let s = &config.security;
    let mut out = vec![
        d(
            "bootstrap.servers",
            "bootstrap_servers",
            &config.bootstrap_servers,
        ),
        d("client.id", "client_id", &config.client_id),
        d(
            "statistics.interval.ms",
            "statistics_interval_ms",
            config.statistics_interval_ms,
        ),
        d(
            "security.protocol",
            "security.protocol",
            s.protocol.as_librdkafka(),
        ),
        opt(
            "sasl.mechanism",
            "security.sasl_mechanism",
            s.sasl_mechanism.map(|m| m.as_librdkafka()),
        ),
        opt(
            "sasl.username",
            "security.sasl_username",
            s.sasl_username.as_deref(),
        ),
        opt(
            "sasl.password",
            "security.sasl_password",
            s.sasl_password.as_ref().map(|p| p.expose()),
        ),
        opt(
            "ssl.ca.location",
            "security.ssl_ca_location",
            s.ssl_ca_location.as_deref(),
        ),
        opt(
            "ssl.certificate.location",
            "security.ssl_certificate_location",
            s.ssl_certificate_location.as_deref(),
        ),
        opt(
            "ssl.key.location",
            "security.ssl_key_location",
            s.ssl_key_location.as_deref(),
        ),
        opt(
            "ssl.key.password",
            "security.ssl_key_password",
            s.ssl_key_password.as_ref().map(|p| p.expose()),
        ),
    ];
    match kind {
        ClientKind::Producer => {
            let p = &config.producer;
            out.extend([
                d("acks", "producer.acks", p.acks.as_librdkafka()),
                d(
                    "enable.idempotence",
                    "producer.enable_idempotence",
                    p.enable_idempotence,
                ),
                d(
                    "compression.type",
                    "producer.compression",
                    p.compression.as_librdkafka(),
                ),
                d("linger.ms", "producer.linger_ms", p.linger_ms),
                d(
                    "batch.size",
                    "producer.batch_size_bytes",
                    p.batch_size_bytes,
                ),
                d(
                    "queue.buffering.max.messages",
                    "producer.queue_max_messages",
                    p.queue_max_messages,
                ),
                d(
                    "queue.buffering.max.kbytes",
                    "producer.queue_max_kbytes",
                    p.queue_max_kbytes,
                ),
                d(
                    "message.timeout.ms",
                    "producer.delivery_timeout_ms",
                    p.delivery_timeout_ms,
                ),
                d(
                    "request.timeout.ms",
                    "producer.request_timeout_ms",
                    p.request_timeout_ms,
                ),
                d(
                    "retry.backoff.ms",
                    "producer.retry_backoff_ms",
                    p.retry_backoff_ms,
                ),
                d(
                    "retry.backoff.max.ms",
                    "producer.retry_backoff_max_ms",
                    p.retry_backoff_max_ms,
                ),
                d(
                    "max.in.flight.requests.per.connection",
                    "producer.max_in_flight",
                    p.max_in_flight,
                ),
                d("partitioner", "producer.partitioner", &p.partitioner),
                opt(
                    "transactional.id",
                    "producer.transactional_id",
                    p.transactional_id.as_deref(),
                ),
                d(
                    "transaction.timeout.ms",
                    "producer.transaction_timeout_ms",
                    p.transaction_timeout_ms,
                ),
            ]);
        }
        ClientKind::Consumer => {
            let c = &config.consumer;
            let reset = match c.auto_offset_reset {
                super::OffsetReset::Earliest => "earliest",
                super::OffsetReset::Latest => "latest",
                super::OffsetReset::Error => "error",
            };
            let isolation = match c.isolation_level {
                super::IsolationLevel::ReadCommitted => "read_committed",
                super::IsolationLevel::ReadUncommitted => "read_uncommitted",
            };
            out.extend([
                opt("group.id", "consumer.group_id", c.group_id.as_deref()),
                d("auto.offset.reset", "consumer.auto_offset_reset", reset),
                d(
                    "enable.auto.commit",
                    "consumer.enable_auto_commit",
                    c.enable_auto_commit,
                ),
                d(
                    "auto.commit.interval.ms",
                    "consumer.auto_commit_interval_ms",
                    c.auto_commit_interval_ms,
                ),
                d(
                    "session.timeout.ms",
                    "consumer.session_timeout_ms",
                    c.session_timeout_ms,
                ),
                d(
                    "max.poll.interval.ms",
                    "consumer.max_poll_interval_ms",
                    c.max_poll_interval_ms,
                ),
                d("isolation.level", "consumer.isolation_level", isolation),
            ]);
        }
        ClientKind::Admin => {}
    }
    out
}

/// The passthrough maps that apply to a client kind, with their key paths.
pub(crate) fn passthrough(
    config: &Config,
    kind: ClientKind,
) -> Vec<(&'static str, &std::collections::BTreeMap<String, String>)> {
    let mut maps = vec![("properties", &config.properties)];
    match kind {
        ClientKind::Producer => maps.push(("producer.properties", &config.producer.properties)),
        ClientKind::Consumer => maps.push(("consumer.properties", &config.consumer.properties)),
        ClientKind::Admin => {}
    }
    maps
}

/// Properties StreamLake always sets itself; a passthrough value for them would break a
/// guarantee (offsets are stored only for processed records; delivery reports carry the
/// record back).
const RESERVED: &[(&str, &str)] = &[
    (
        "enable.auto.offset.store",
        "offsets are stored only once a record has been processed",
    ),
    (
        "delivery.report.only.error",
        "every record must report its outcome",
    ),
    (
        "enable.partition.eof",
        "set by the consumer when end-of-partition events are asked for",
    ),
];

impl Config {
    /// The librdkafka configuration for one client kind: derived typed settings, then the
    /// passthrough maps (shared first, then the kind's own), then what StreamLake reserves.
    pub fn client_config(&self, kind: ClientKind) -> Result<ClientConfig, ConfigError> {
        self.validate()?;
        let mut cc = ClientConfig::new();
        for item in derived(self, kind) {
            if let Some(v) = item.value {
                cc.set(item.property, v);
            }
        }
        for (_, map) in passthrough(self, kind) {
            for (k, v) in map {
                cc.set(k, v);
            }
        }
        match kind {
            ClientKind::Producer => {
                cc.set("delivery.report.only.error", "false");
            }
            ClientKind::Consumer => {
                cc.set("enable.auto.offset.store", "false");
            }
            ClientKind::Admin => {}
        }
        Ok(cc)
    }

    /// Asks librdkafka itself whether it accepts every property for every client kind; each
    /// rejection becomes a problem naming the key path it came from.
    pub fn check_with_librdkafka(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        for kind in [ClientKind::Producer, ClientKind::Consumer] {
            let Ok(cc) = self.client_config(kind) else {
                continue;
            };
            for (property, value) in cc.config_map() {
                let mut one = ClientConfig::new();
                one.set(property, value);
                if let Err(e) = one.create_native_config() {
                    let key = origin_of(self, kind, property);
                    let p = Problem::new(
                        key,
                        format!("librdkafka rejects `{property}`: {}", strip(&e)),
                    );
                    if !problems.contains(&p) {
                        problems.push(p);
                    }
                }
            }
        }
        problems
    }
}

fn strip(e: &rdkafka::error::KafkaError) -> String {
    let s = e.to_string();
    s.trim_start_matches("Client config error: ").to_owned()
}

/// The key path a librdkafka property came from.
pub(crate) fn origin_of(config: &Config, kind: ClientKind, property: &str) -> String {
    for (path, map) in passthrough(config, kind).into_iter().rev() {
        if map.contains_key(property) {
            return format!("{path}.\"{property}\"");
        }
    }
    derived(config, kind)
        .into_iter()
        .find(|d| d.property == property)
        .map(|d| d.key.to_owned())
        .unwrap_or_else(|| property.to_owned())
}

/// Conflicts between passthrough properties and typed settings or reserved properties.
pub(crate) fn passthrough_problems(config: &Config) -> Vec<Problem> {
    let mut problems = Vec::new();
    for kind in [
        ClientKind::Producer,
        ClientKind::Consumer,
        ClientKind::Admin,
    ] {
        let typed = derived(config, kind);
        for (path, map) in passthrough(config, kind) {
            for key in map.keys() {
                let full = format!("{path}.\"{key}\"");
                if let Some(t) = typed.iter().find(|t| t.property == key) {
                    problems.push(Problem::new(
                        &full,
                        format!("duplicates the typed setting `{}`; set that instead and delete this one", t.key),
                    ));
                } else if let Some((_, why)) = RESERVED.iter().find(|(r, _)| *r == key) {
                    problems.push(Problem::new(
                        &full,
                        format!("is managed by StreamLake ({why}); delete it"),
                    ));
                }
            }
        }
    }
    problems.sort_by(|a, b| a.key.cmp(&b.key));
    problems.dedup();
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producer_defaults_are_production_grade() {
        let cc = Config::default()
            .client_config(ClientKind::Producer)
            .unwrap();
        assert_eq!(cc.get("acks"), Some("all"));
        assert_eq!(cc.get("enable.idempotence"), Some("true"));
        assert_eq!(cc.get("compression.type"), Some("lz4"));
        assert_eq!(cc.get("linger.ms"), Some("5"));
        assert_eq!(cc.get("message.timeout.ms"), Some("30000"));
        assert_eq!(cc.get("queue.buffering.max.kbytes"), Some("32768"));
        assert_eq!(cc.get("partitioner"), Some("murmur2_random"));
        assert_eq!(cc.get("delivery.report.only.error"), Some("false"));
        assert!(cc.get("group.id").is_none());
    }

    #[test]
    fn consumer_stores_offsets_itself() {
        let cc = Config::default()
            .client_config(ClientKind::Consumer)
            .unwrap();
        assert_eq!(cc.get("enable.auto.offset.store"), Some("false"));
        assert_eq!(cc.get("isolation.level"), Some("read_committed"));
        assert!(cc.get("acks").is_none());
    }

    #[test]
    fn passthrough_reaches_the_client() {
        let mut c = Config::default();
        c.producer
            .properties
            .insert("message.max.bytes".into(), "2000000".into());
        c.properties
            .insert("socket.keepalive.enable".into(), "true".into());
        let cc = c.client_config(ClientKind::Producer).unwrap();
        assert_eq!(cc.get("message.max.bytes"), Some("2000000"));
        assert_eq!(cc.get("socket.keepalive.enable"), Some("true"));
        let consumer = c.client_config(ClientKind::Consumer).unwrap();
        assert!(consumer.get("message.max.bytes").is_none());
    }

    #[test]
    fn passthrough_duplicating_a_typed_setting_is_a_conflict() {
        let mut c = Config::default();
        c.producer
            .properties
            .insert("linger.ms".into(), "50".into());
        c.properties
            .insert("enable.auto.offset.store".into(), "true".into());
        let err = c.client_config(ClientKind::Producer).unwrap_err();
        let keys: Vec<_> = err.problems().iter().map(|p| p.key.as_str()).collect();
        assert!(
            keys.contains(&"producer.properties.\"linger.ms\""),
            "{keys:?}"
        );
        assert!(
            keys.contains(&"properties.\"enable.auto.offset.store\""),
            "{keys:?}"
        );
        assert!(err.to_string().contains("producer.linger_ms"), "{err}");
    }

    #[test]
    fn librdkafka_rejections_name_the_key_path() {
        let mut c = Config::default();
        c.producer
            .properties
            .insert("no.such.property".into(), "1".into());
        let problems = c.check_with_librdkafka();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].key, "producer.properties.\"no.such.property\"");
    }

    #[test]
    fn sensitive_keys_are_recognised() {
        assert!(is_sensitive_property("sasl.password"));
        assert!(is_sensitive_property("security.sasl_password"));
        assert!(is_sensitive_property("sasl.jaas.config"));
        assert!(!is_sensitive_property("sasl.username"));
        assert_eq!(redact_property("ssl.key.password", "x"), "[redacted]");
    }
}
