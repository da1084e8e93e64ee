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
    "basic.auth.user.info",
];

/// Words that mark a name as holding a secret, also when misspelled by a letter or two (a
/// mistyped secret property is still a secret).
const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "jaas",
    "credential",
    "credentials",
    "apikey",
    "keytab",
    "private",
];

/// Whether a librdkafka property (or a StreamLake key) holds a secret. The name is judged
/// after trimming and lower-casing, and by its parts (split at `.`, `_`, `-` and spaces): a
/// part that is, contains or is an edit or two away from `password`, `secret`, `token`,
/// `jaas`, `credential`, … (two for the long words, one for the short) marks a secret, as do `pass`/`pwd`, a key's PEM (`key` and `pem`)
/// and user info (`user` and `info`). It errs on the side of hiding.
pub fn is_sensitive_property(key: &str) -> bool {
    let key = key.trim().to_ascii_lowercase();
    if SENSITIVE.contains(&key.as_str()) {
        return true;
    }
    let squashed: String = key.chars().filter(char::is_ascii_alphanumeric).collect();
    if SECRET_WORDS.iter().any(|w| squashed.contains(w)) {
        return true;
    }
    let parts: Vec<&str> = key
        .split(|c: char| c == '.' || c == '_' || c == '-' || c.is_whitespace())
        .filter(|p| !p.is_empty())
        .collect();
    let has = |w: &str| parts.contains(&w);
    if has("pass") || has("pwd") || (has("pem") && parts.iter().any(|p| p.starts_with("key"))) {
        return true;
    }
    if has("info") && parts.iter().any(|p| p.contains("user")) {
        return true;
    }
    parts.iter().any(|part| {
        SECRET_WORDS.iter().any(|word| {
            let allowed = if word.len() >= 8 { 2 } else { 1 };
            part.len() + allowed >= word.len() && strsim::damerau_levenshtein(part, word) <= allowed
        })
    })
}

/// A property name as it may be printed: a name that runs on past a secret word
/// (`sasl.password4s3cr3t`, a line that lost its `=`) may carry the secret itself, so it is
/// cut after the word (`sasl.password…`). Other names are printed as they are.
pub fn shown_name(name: &str) -> std::borrow::Cow<'_, str> {
    let lower = name.to_ascii_lowercase();
    let cut = SECRET_WORDS
        .iter()
        .filter_map(|w| lower.find(w).map(|at| at + w.len()))
        .min();
    match cut {
        Some(end)
            if name.len() > end
                && !matches!(name.as_bytes()[end], b'.' | b'_' | b'-' | b' ')
                && name.is_char_boundary(end) =>
        {
            std::borrow::Cow::Owned(format!("{}…", &name[..end]))
        }
        _ => std::borrow::Cow::Borrowed(name),
    }
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
    /// Every property has been accepted by librdkafka; what it refuses is a
    /// [`ConfigError::Invalid`] naming the key path, never the value of an unknown or secret
    /// property.
    pub fn client_config(&self, kind: ClientKind) -> Result<ClientConfig, ConfigError> {
        self.validate()?;
        let cc = self.native_properties(kind);
        if cc.create_native_config().is_err() {
            let mut problems = self.librdkafka_problems(kind);
            if problems.is_empty() {
                problems.push(Problem::new(
                    "properties",
                    "librdkafka refuses this configuration",
                ));
            }
            return Err(ConfigError::Invalid(problems));
        }
        Ok(cc)
    }

    /// The librdkafka properties of one client kind, unchecked.
    fn native_properties(&self, kind: ClientKind) -> ClientConfig {
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
        cc
    }

    /// Asks librdkafka itself whether it accepts every property for every client kind; each
    /// rejection becomes a problem naming the key path it came from. The settings need not be
    /// valid otherwise, so these problems can be reported together with all the others. No
    /// problem shows the value of an unknown or secret property.
    pub fn check_with_librdkafka(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        for kind in [ClientKind::Producer, ClientKind::Consumer] {
            for p in self.librdkafka_problems(kind) {
                if !problems.contains(&p) {
                    problems.push(p);
                }
            }
        }
        problems
    }

    fn librdkafka_problems(&self, kind: ClientKind) -> Vec<Problem> {
        let mut problems = Vec::new();
        for (property, value) in self.native_properties(kind).config_map() {
            let mut one = ClientConfig::new();
            one.set(property, value);
            if let Err(e) = one.create_native_config() {
                problems.push(Problem::new(
                    origin_of(self, kind, property),
                    rejection(property, &e),
                ));
            }
        }
        problems
    }
}

/// Why librdkafka refuses one property, in words that never include the value of an unknown
/// or secret property (rust-rdkafka's own message repeats the value).
fn rejection(property: &str, e: &rdkafka::error::KafkaError) -> String {
    use rdkafka::error::KafkaError;
    use rdkafka::types::RDKafkaConfRes;
    match e {
        KafkaError::ClientConfig(RDKafkaConfRes::RD_KAFKA_CONF_UNKNOWN, ..) => {
            let lower = property.trim().to_ascii_lowercase();
            let hint = if lower != property && known_property(&lower) {
                format!("; property names are lower-case: `{lower}`")
            } else {
                suggest_property(&lower)
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default()
            };
            let property = shown_name(property);
            format!("librdkafka has no property `{property}` (the value is not shown){hint}")
        }
        KafkaError::ClientConfig(_, description, ..) if !is_sensitive_property(property) => {
            format!("librdkafka rejects `{property}`: {description}")
        }
        KafkaError::ClientConfig(..) => {
            format!("librdkafka rejects the value of `{property}` (the value is not shown)")
        }
        KafkaError::Nul(_) => format!("`{property}`: the name or the value holds a NUL byte"),
        _ => format!("librdkafka rejects `{property}`"),
    }
}

/// Whether librdkafka knows a property name (the probe value may be invalid; only an unknown
/// name counts).
fn known_property(name: &str) -> bool {
    use rdkafka::error::KafkaError;
    use rdkafka::types::RDKafkaConfRes;
    let mut one = ClientConfig::new();
    one.set(name, "");
    !matches!(
        one.create_native_config(),
        Err(KafkaError::ClientConfig(
            RDKafkaConfRes::RD_KAFKA_CONF_UNKNOWN,
            ..
        )) | Err(KafkaError::Nul(_))
    )
}

/// librdkafka properties a mistyped name is compared with for a "did you mean".
const COMMON: &[&str] = &[
    "sasl.password",
    "sasl.username",
    "sasl.mechanism",
    "sasl.mechanisms",
    "ssl.key.password",
    "ssl.key.pem",
    "ssl.key.location",
    "ssl.ca.location",
    "ssl.certificate.location",
    "ssl.keystore.password",
    "ssl.keystore.location",
    "sasl.oauthbearer.client.secret",
    "sasl.oauthbearer.client.id",
    "sasl.oauthbearer.config",
    "sasl.oauthbearer.token.endpoint.url",
    "security.protocol",
    "bootstrap.servers",
    "message.max.bytes",
    "socket.keepalive.enable",
    "compression.type",
    "linger.ms",
    "batch.size",
    "fetch.min.bytes",
    "fetch.max.bytes",
    "client.id",
    "group.id",
];

fn suggest_property(name: &str) -> Option<&'static str> {
    COMMON
        .iter()
        .map(|c| (strsim::jaro_winkler(name, c), *c))
        .filter(|(score, c)| *score > 0.9 && *c != name)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// The key path a librdkafka property came from.
pub(crate) fn origin_of(config: &Config, kind: ClientKind, property: &str) -> String {
    for (path, map) in passthrough(config, kind).into_iter().rev() {
        if map.contains_key(property) {
            return format!("{path}.\"{}\"", shown_name(property));
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
    fn rejections_never_show_the_value_of_an_unknown_or_secret_property() {
        let mut c = Config::default();
        for (name, value) in [
            ("SASL.PASSWORD", "hunter2-a"),
            ("Sasl.Password", "hunter2-b"),
            ("sasl.pasword", "hunter2-c"),
            ("sasl.password ", "hunter2-d"),
            ("linger.ms.typo", "hunter2-e"),
        ] {
            c.properties.insert(name.into(), value.into());
        }
        c.producer.properties.insert(
            "queue.buffering.backpressure.threshold".into(),
            "many".into(),
        );
        let problems = c.check_with_librdkafka();
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 6, "{text:#?}");
        assert!(text.iter().all(|t| !t.contains("hunter2")), "{text:#?}");
        let of = |key: &str| {
            problems
                .iter()
                .find(|p| p.key == key)
                .map(|p| p.message.clone())
                .unwrap_or_else(|| panic!("no problem for {key}: {text:#?}"))
        };
        assert!(of("properties.\"SASL.PASSWORD\"")
            .contains("property names are lower-case: `sasl.password`"));
        assert!(of("properties.\"sasl.pasword\"").contains("did you mean `sasl.password`?"));
        assert!(of("properties.\"sasl.password \"").contains("has no property"));
        // A known, non-secret property: librdkafka's own reason, value and all.
        let known = of("producer.properties.\"queue.buffering.backpressure.threshold\"");
        assert!(known.contains("librdkafka rejects"), "{known}");

        let err = c.client_config(ClientKind::Producer).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(err.to_string().contains("SASL.PASSWORD"), "{err}");
    }

    #[test]
    fn a_name_that_runs_on_past_a_secret_word_is_cut() {
        assert_eq!(shown_name("sasl.password4s3cr3t-XYZ"), "sasl.password…");
        assert_eq!(shown_name("SASL.PASSWORDhunter2"), "SASL.PASSWORD…");
        assert_eq!(shown_name("sasl.password"), "sasl.password");
        assert_eq!(shown_name("ssl.key.password"), "ssl.key.password");
        assert_eq!(shown_name("sasl.password.extra"), "sasl.password.extra");
        assert_eq!(shown_name("linger.ms"), "linger.ms");
        let mut c = Config::default();
        c.properties
            .insert("sasl.password4s3cr3t-XYZ".into(), "x".into());
        let text: Vec<String> = c
            .check_with_librdkafka()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(!text.is_empty());
        assert!(text.iter().all(|t| !t.contains("s3cr3t")), "{text:?}");
    }

    #[test]
    fn sensitive_keys_are_recognised() {
        for key in [
            "sasl.password",
            "security.sasl_password",
            "sasl.jaas.config",
            "sasl.password ",
            " SASL.PASSWORD",
            "Sasl.Password",
            "sasl.pasword",
            "sasl.passwrd",
            "sasl.jass.config",
            "ssl.key.pem",
            "ssl_key_pem",
            "ssl.keystore.passphrase",
            "sasl.oauthbearer.client.secrt",
            "sasl.oauthbearer.config",
            "schema_registry.bearer_token",
            "basic.auth.user.info",
            "my.api.pass",
            "cloud.apikey",
            "sasl.kerberos.keytab",
        ] {
            assert!(is_sensitive_property(key), "{key} is a secret");
        }
        for key in [
            "sasl.username",
            "ssl.key.location",
            "ssl.certificate.pem",
            "security.protocol",
            "socket.keepalive.enable",
            "topic.metadata.refresh.interval.ms",
        ] {
            assert!(!is_sensitive_property(key), "{key} is not a secret");
        }
        // Of StreamLake's own keys, exactly the Secret fields are sensitive.
        let loaded = crate::config::LoadedConfig::from_config(Config::default());
        let sensitive: Vec<String> = loaded
            .entries()
            .into_iter()
            .map(|e| e.key)
            .filter(|k| is_sensitive_property(k.rsplit('.').next().unwrap_or(k)))
            .collect();
        assert_eq!(
            sensitive,
            [
                "schema_registry.basic_auth_password",
                "schema_registry.bearer_token",
                "security.sasl_password",
                "security.ssl_key_password"
            ]
        );
        assert_eq!(redact_property("ssl.key.password", "x"), "[redacted]");
    }
}
