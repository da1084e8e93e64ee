//! Java-style `client.properties` files, as managed Kafka services hand them out, translated
//! into StreamLake keys so users can point at their cluster without rewriting anything.

use super::Problem;

/// One `key=value` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    pub line: usize,
    pub key: String,
    pub value: String,
}

/// Parses the Java properties syntax: `#`/`!` comments, `=`, `:` or blank separators,
/// backslash line continuations and the common escapes.
pub(crate) fn parse(text: &str) -> Vec<Line> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((idx, raw)) = lines.next() {
        let mut logical = raw.trim_start().to_owned();
        if logical.is_empty() || logical.starts_with('#') || logical.starts_with('!') {
            continue;
        }
        while ends_with_odd_backslashes(&logical) {
            logical.pop();
            match lines.next() {
                Some((_, next)) => logical.push_str(next.trim_start()),
                None => break,
            }
        }
        let (key, value) = split(&logical);
        out.push(Line {
            line: idx + 1,
            key: unescape(key.trim()),
            value: unescape(value.trim()),
        });
    }
    out
}

fn ends_with_odd_backslashes(s: &str) -> bool {
    s.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1
}

fn split(line: &str) -> (&str, &str) {
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '=' | ':' => return (&line[..i], &line[i + 1..]),
            c if c.is_whitespace() => {
                let rest = line[i..].trim_start();
                let rest = rest.strip_prefix(['=', ':']).unwrap_or(rest);
                return (&line[..i], rest);
            }
            _ => {}
        }
    }
    (line, "")
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// Where a Java property goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// StreamLake key paths and their (translated) values.
    Keys(Vec<(Vec<String>, String)>),
    /// A Java-only property that librdkafka has no use for.
    Ignored(&'static str),
}

fn path(path: &str) -> Vec<String> {
    path.split('.').map(str::to_owned).collect()
}

fn key(p: &str, value: impl Into<String>) -> Target {
    Target::Keys(vec![(path(p), value.into())])
}

const JAVA_ONLY: &[(&str, &str)] = &[
    (
        "key.serializer",
        "serializers are chosen with --key-format/--value-format",
    ),
    (
        "value.serializer",
        "serializers are chosen with --key-format/--value-format",
    ),
    (
        "key.deserializer",
        "deserializers are chosen with --key-format/--value-format",
    ),
    (
        "value.deserializer",
        "deserializers are chosen with --key-format/--value-format",
    ),
    (
        "client.dns.lookup",
        "librdkafka resolves every address by default",
    ),
    ("buffer.memory", "use producer.queue_max_kbytes"),
    ("sasl.login.callback.handler.class", "Java class"),
    ("sasl.client.callback.handler.class", "Java class"),
    ("ssl.truststore.type", "Java keystore setting"),
    ("ssl.keystore.type", "Java keystore setting"),
    (
        "schema.registry.url",
        "schema registry settings are not Kafka client settings",
    ),
    (
        "basic.auth.credentials.source",
        "schema registry settings are not Kafka client settings",
    ),
    (
        "basic.auth.user.info",
        "schema registry settings are not Kafka client settings",
    ),
];

/// Translates one Java property. Errors name the line.
pub(crate) fn translate(line: &Line) -> Result<Target, Problem> {
    let v = line.value.as_str();
    let k = line.key.as_str();
    let at = |msg: String| Problem::new(format!("line {} `{k}`", line.line), msg);
    if let Some((_, why)) = JAVA_ONLY.iter().find(|(j, _)| *j == k) {
        return Ok(Target::Ignored(why));
    }
    Ok(match k {
        "bootstrap.servers" => key("bootstrap_servers", v),
        "client.id" => key("client_id", v),
        "security.protocol" => key("security.protocol", v.to_ascii_lowercase()),
        "sasl.mechanism" | "sasl.mechanisms" => key("security.sasl_mechanism", v.to_ascii_uppercase()),
        "sasl.username" => key("security.sasl_username", v),
        "sasl.password" => key("security.sasl_password", v),
        "sasl.jaas.config" => return jaas(v).map_err(at),
        "ssl.ca.location" => key("security.ssl_ca_location", v),
        "ssl.certificate.location" => key("security.ssl_certificate_location", v),
        "ssl.key.location" => key("security.ssl_key_location", v),
        "ssl.key.password" => key("security.ssl_key_password", v),
        "ssl.truststore.location" | "ssl.keystore.location" => {
            return Err(at("Java keystores (JKS/PKCS12) are not readable by librdkafka; convert to PEM and set ssl.ca.location (or ssl.certificate.location/ssl.key.location)".into()))
        }
        "acks" => key(
            "producer.acks",
            match v {
                "all" | "-1" => "all",
                "1" => "leader",
                "0" => "none",
                _ => return Err(at(format!("`{v}` is not one of all, -1, 1, 0"))),
            },
        ),
        "enable.idempotence" => key("producer.enable_idempotence", v),
        "compression.type" => key("producer.compression", v),
        "linger.ms" => key("producer.linger_ms", v),
        "batch.size" => key("producer.batch_size_bytes", v),
        "delivery.timeout.ms" | "message.timeout.ms" => key("producer.delivery_timeout_ms", v),
        "request.timeout.ms" => key("producer.request_timeout_ms", v),
        "retry.backoff.ms" => key("producer.retry_backoff_ms", v),
        "retry.backoff.max.ms" => key("producer.retry_backoff_max_ms", v),
        "max.in.flight.requests.per.connection" => key("producer.max_in_flight", v),
        "group.id" => key("consumer.group_id", v),
        "auto.offset.reset" => key("consumer.auto_offset_reset", v),
        "enable.auto.commit" => key("consumer.enable_auto_commit", v),
        "auto.commit.interval.ms" => key("consumer.auto_commit_interval_ms", v),
        "session.timeout.ms" => key("consumer.session_timeout_ms", v),
        "max.poll.interval.ms" => key("consumer.max_poll_interval_ms", v),
        "isolation.level" => key("consumer.isolation_level", v),
        other => Target::Keys(vec![(vec!["properties".to_owned(), other.to_owned()], v.to_owned())]),
    })
}

/// `sasl.jaas.config` as Confluent Cloud writes it: a Java login module with `username` and
/// `password` options.
fn jaas(value: &str) -> Result<Target, String> {
    let module = value.split_whitespace().next().unwrap_or("");
    if !module.contains("PlainLoginModule") && !module.contains("ScramLoginModule") {
        // The module is named only when it looks like a Java class: a malformed value may be
        // the password itself.
        let java_class = module.ends_with("LoginModule")
            && module.split('.').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
            });
        let named = if java_class {
            format!(" `{module}`")
        } else {
            String::new()
        };
        return Err(format!(
            "unsupported login module{named} (StreamLake reads PlainLoginModule and ScramLoginModule); set sasl.username and sasl.password instead"
        ));
    }
    let user = jaas_option(value, "username").ok_or("has no username=\"…\" option")?;
    let pass = jaas_option(value, "password").ok_or("has no password=\"…\" option")?;
    Ok(Target::Keys(vec![
        (path("security.sasl_username"), user),
        (path("security.sasl_password"), pass),
    ]))
}

fn jaas_option(value: &str, name: &str) -> Option<String> {
    let mut rest = value;
    while let Some(pos) = rest.find(name) {
        let after = rest[pos + name.len()..].trim_start();
        let preceded_ok = pos == 0 || rest[..pos].ends_with(char::is_whitespace);
        if let (true, Some(after)) = (preceded_ok, after.strip_prefix('=')) {
            let after = after.trim_start();
            let quote = after.chars().next()?;
            if quote == '"' || quote == '\'' {
                let end = after[1..].find(quote)?;
                return Some(after[1..=end].to_owned());
            }
        }
        rest = &rest[pos + name.len()..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_java_syntax() {
        let text = "# comment\n! other\nbootstrap.servers=pkc-1.example:9092\nsasl.mechanisms : PLAIN\nclient.id app\nlong=a\\\n   b\nesc=tab\\there\n\n";
        let lines = parse(text);
        let kv: Vec<_> = lines
            .iter()
            .map(|l| (l.line, l.key.as_str(), l.value.as_str()))
            .collect();
        assert_eq!(
            kv,
            [
                (3, "bootstrap.servers", "pkc-1.example:9092"),
                (4, "sasl.mechanisms", "PLAIN"),
                (5, "client.id", "app"),
                (6, "long", "ab"),
                (8, "esc", "tab\there"),
            ]
        );
    }

    #[test]
    fn jaas_config_yields_credentials() {
        let v = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username='KEY1' password="se=cr;et";"#;
        assert_eq!(
            jaas(v),
            Ok(Target::Keys(vec![
                (path("security.sasl_username"), "KEY1".into()),
                (path("security.sasl_password"), "se=cr;et".into())
            ]))
        );
        assert!(jaas("com.example.CustomLoginModule required;")
            .unwrap_err()
            .contains("unsupported login module `com.example.CustomLoginModule`"));
        let err = jaas("hunter2").unwrap_err();
        assert!(
            err.contains("unsupported login module") && !err.contains("hunter2"),
            "{err}"
        );
        assert!(jaas(
            "org.apache.kafka.common.security.plain.PlainLoginModule required username='x';"
        )
        .unwrap_err()
        .contains("password"));
    }

    #[test]
    fn translation_table() {
        let l = |k: &str, v: &str| Line {
            line: 7,
            key: k.into(),
            value: v.into(),
        };
        assert_eq!(
            translate(&l("acks", "-1")).unwrap(),
            key("producer.acks", "all")
        );
        assert_eq!(
            translate(&l("security.protocol", "SASL_SSL")).unwrap(),
            key("security.protocol", "sasl_ssl")
        );
        assert!(matches!(
            translate(&l("key.serializer", "x")).unwrap(),
            Target::Ignored(_)
        ));
        assert_eq!(
            translate(&l("socket.keepalive.enable", "true")).unwrap(),
            Target::Keys(vec![(
                vec!["properties".into(), "socket.keepalive.enable".into()],
                "true".into()
            )])
        );
        let err = translate(&l("acks", "2")).unwrap_err();
        assert_eq!(err.key, "line 7 `acks`");
        assert!(translate(&l("ssl.truststore.location", "/x.jks"))
            .unwrap_err()
            .message
            .contains("PEM"));
    }
}
