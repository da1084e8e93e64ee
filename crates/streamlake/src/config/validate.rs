//! Cross-field checks: settings that are each valid but do not work together.

use super::{client, Acks, Config, Problem, SaslMechanism};

/// Every problem in `config`, in key order.
pub(crate) fn problems(config: &Config) -> Vec<Problem> {
    let mut out = Vec::new();
    bootstrap(config, &mut out);
    producer(config, &mut out);
    consumer(config, &mut out);
    security(config, &mut out);
    registry(config, &mut out);
    if let Err(e) = config.spool.validate() {
        out.push(Problem::new("spool", e.to_string()));
    }
    out.extend(client::passthrough_problems(config));
    out
}

fn bootstrap(config: &Config, out: &mut Vec<Problem>) {
    let servers = config.bootstrap_servers.trim();
    if servers.is_empty() {
        out.push(Problem::new(
            "bootstrap_servers",
            "is empty; give at least one host:port",
        ));
        return;
    }
    for server in servers.split(',').map(str::trim) {
        let addr = server.rsplit("://").next().unwrap_or(server);
        let port_ok = addr
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
        if !port_ok {
            out.push(Problem::new(
                "bootstrap_servers",
                format!("`{server}` is not host:port"),
            ));
        }
    }
}

fn producer(config: &Config, out: &mut Vec<Problem>) {
    let p = &config.producer;
    if p.enable_idempotence && p.acks != Acks::All {
        out.push(Problem::new(
            "producer.acks",
            "must be `all` while producer.enable_idempotence is true; set acks to all or set enable_idempotence to false",
        ));
    }
    if p.max_in_flight == 0 {
        out.push(Problem::new("producer.max_in_flight", "must be at least 1"));
    }
    if let Some(id) = &p.transactional_id {
        if id.trim().is_empty() {
            out.push(Problem::new(
                "producer.transactional_id",
                "is empty; give each producer instance its own id, or remove the setting",
            ));
        }
        if !p.enable_idempotence {
            out.push(Problem::new(
                "producer.enable_idempotence",
                "must be true for a transactional producer (producer.transactional_id is set)",
            ));
        }
        if config.spool.enabled() {
            out.push(Problem::new(
                "spool.dir",
                "cannot be used with producer.transactional_id: a spooled record would be replayed outside its transaction",
            ));
        }
    }
    if p.transaction_timeout_ms < 1_000 {
        out.push(Problem::new(
            "producer.transaction_timeout_ms",
            "must be at least 1000",
        ));
    }
    if p.enable_idempotence && p.max_in_flight > 5 {
        out.push(Problem::new(
            "producer.max_in_flight",
            format!("is {} but idempotence allows at most 5; lower it or set enable_idempotence to false", p.max_in_flight),
        ));
    }
    if p.delivery_timeout_ms < p.linger_ms {
        out.push(Problem::new(
            "producer.delivery_timeout_ms",
            format!(
                "({}) is shorter than producer.linger_ms ({}); raise it or lower linger_ms",
                p.delivery_timeout_ms, p.linger_ms
            ),
        ));
    }
    if p.delivery_timeout_ms == 0 {
        out.push(Problem::new(
            "producer.delivery_timeout_ms",
            "must be above 0: every record needs a deadline",
        ));
    }
    for (key, v) in [
        ("producer.queue_max_messages", p.queue_max_messages),
        ("producer.queue_max_kbytes", p.queue_max_kbytes),
        ("producer.batch_size_bytes", p.batch_size_bytes),
    ] {
        if v == 0 {
            out.push(Problem::new(key, "must be at least 1"));
        }
    }
    if p.retry_backoff_ms > p.retry_backoff_max_ms {
        out.push(Problem::new(
            "producer.retry_backoff_ms",
            format!(
                "({}) is above producer.retry_backoff_max_ms ({})",
                p.retry_backoff_ms, p.retry_backoff_max_ms
            ),
        ));
    }
}

fn consumer(config: &Config, out: &mut Vec<Problem>) {
    let c = &config.consumer;
    if c.max_poll_interval_ms < c.session_timeout_ms {
        out.push(Problem::new(
            "consumer.max_poll_interval_ms",
            format!(
                "({}) must be at least consumer.session_timeout_ms ({})",
                c.max_poll_interval_ms, c.session_timeout_ms
            ),
        ));
    }
    if c.group_id.as_deref().is_some_and(|g| g.trim().is_empty()) {
        out.push(Problem::new(
            "consumer.group_id",
            "is empty; remove it or name a group",
        ));
    }
}

fn registry(config: &Config, out: &mut Vec<Problem>) {
    let r = &config.schema_registry;
    if r.auto_register && r.use_latest_version {
        out.push(Problem::new(
            "schema_registry.use_latest_version",
            "requires schema_registry.auto_register: false (a schema is either registered from the local file or taken from the registry)",
        ));
    }
    if r.bearer_token.is_some() && (r.basic_auth_user.is_some() || r.basic_auth_password.is_some())
    {
        out.push(Problem::new(
            "schema_registry.bearer_token",
            "is set together with basic auth; keep one of them",
        ));
    }
    if r.basic_auth_user.is_some() != r.basic_auth_password.is_some() {
        out.push(Problem::new(
            "schema_registry.basic_auth_user",
            "and schema_registry.basic_auth_password go together",
        ));
    }
    for url in r.url.iter().flat_map(|u| u.split(',')).map(str::trim) {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            out.push(Problem::new(
                "schema_registry.url",
                format!("`{url}` is not an http:// or https:// URL"),
            ));
        }
    }
}

fn security(config: &Config, out: &mut Vec<Problem>) {
    let s = &config.security;
    if s.protocol.is_sasl() {
        match s.sasl_mechanism {
            None => out.push(Problem::new(
                "security.sasl_mechanism",
                format!(
                    "is required with security.protocol {}",
                    s.protocol.as_librdkafka()
                ),
            )),
            Some(SaslMechanism::OAuthBearer) => {}
            Some(m) => {
                if s.sasl_username.is_none() {
                    out.push(Problem::new(
                        "security.sasl_username",
                        format!("is required for {}", m.as_librdkafka()),
                    ));
                }
                if s.sasl_password.is_none() {
                    out.push(Problem::new(
                        "security.sasl_password",
                        format!("is required for {}", m.as_librdkafka()),
                    ));
                }
            }
        }
    } else {
        for (key, set) in [
            ("security.sasl_mechanism", s.sasl_mechanism.is_some()),
            ("security.sasl_username", s.sasl_username.is_some()),
            ("security.sasl_password", s.sasl_password.is_some()),
        ] {
            if set {
                out.push(Problem::new(
                    key,
                    format!(
                        "is set but security.protocol is {}; set the protocol to sasl_ssl or sasl_plaintext, or delete this key",
                        s.protocol.as_librdkafka()
                    ),
                ));
            }
        }
    }
    if !s.protocol.is_tls() {
        for (key, set) in [
            ("security.ssl_ca_location", s.ssl_ca_location.is_some()),
            (
                "security.ssl_certificate_location",
                s.ssl_certificate_location.is_some(),
            ),
            ("security.ssl_key_location", s.ssl_key_location.is_some()),
            ("security.ssl_key_password", s.ssl_key_password.is_some()),
        ] {
            if set {
                out.push(Problem::new(
                    key,
                    format!(
                        "is set but security.protocol is {}; set the protocol to ssl or sasl_ssl, or delete this key",
                        s.protocol.as_librdkafka()
                    ),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Secret, SecurityProtocol};

    fn keys(c: &Config) -> Vec<String> {
        problems(c).into_iter().map(|p| p.key).collect()
    }

    #[test]
    fn defaults_are_valid() {
        assert!(problems(&Config::default()).is_empty());
    }

    #[test]
    fn idempotence_conflicts_name_both_keys() {
        let mut c = Config::default();
        c.producer.acks = Acks::Leader;
        c.producer.max_in_flight = 10;
        let p = problems(&c);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].message.contains("enable_idempotence"));
        assert_eq!(keys(&c), ["producer.acks", "producer.max_in_flight"]);
    }

    #[test]
    fn bad_bootstrap_entries_are_named() {
        let c = Config::with_bootstrap("good:9092,bad,also:bad");
        let p = problems(&c);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].message.contains("`bad`"));
        assert!(p[1].message.contains("`also:bad`"));
        assert_eq!(keys(&Config::with_bootstrap(" ")), ["bootstrap_servers"]);
    }

    #[test]
    fn sasl_needs_mechanism_and_credentials() {
        let mut c = Config::default();
        c.security.protocol = SecurityProtocol::SaslSsl;
        assert_eq!(keys(&c), ["security.sasl_mechanism"]);
        c.security.sasl_mechanism = Some(SaslMechanism::ScramSha512);
        assert_eq!(
            keys(&c),
            ["security.sasl_username", "security.sasl_password"]
        );
        c.security.sasl_username = Some("u".into());
        c.security.sasl_password = Some(Secret::new("p"));
        assert!(keys(&c).is_empty());
    }

    #[test]
    fn sasl_and_tls_settings_without_their_protocol_conflict() {
        let mut c = Config::default();
        c.security.sasl_username = Some("u".into());
        c.security.ssl_ca_location = Some("/ca.pem".into());
        let p = problems(&c);
        assert_eq!(
            keys(&c),
            ["security.sasl_username", "security.ssl_ca_location"]
        );
        assert!(p[0].message.contains("delete this key"));
    }

    #[test]
    fn registry_conflicts() {
        let mut c = Config::default();
        c.schema_registry.use_latest_version = true;
        c.schema_registry.url = Some("http://ok:8081, registry:8081".into());
        c.schema_registry.basic_auth_user = Some("u".into());
        assert_eq!(
            keys(&c),
            [
                "schema_registry.use_latest_version",
                "schema_registry.basic_auth_user",
                "schema_registry.url"
            ]
        );
    }

    #[test]
    fn timing_and_sizes() {
        let mut c = Config::default();
        c.producer.delivery_timeout_ms = 1;
        c.producer.queue_max_messages = 0;
        c.producer.retry_backoff_ms = 5_000;
        c.consumer.max_poll_interval_ms = 1_000;
        assert_eq!(
            keys(&c),
            [
                "producer.delivery_timeout_ms",
                "producer.queue_max_messages",
                "producer.retry_backoff_ms",
                "consumer.max_poll_interval_ms"
            ]
        );
    }
}
