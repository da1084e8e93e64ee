//! Topic configs: read every entry with where its value comes from, and change some of them
//! while keeping the others.
//!
//! # Guarantees
//! - [`Admin::alter_topic_config`] keeps every value already set on the topic that the change
//!   does not name. Kafka's `AlterConfigs` replaces a topic's whole set of overrides, so the
//!   current overrides are read first and sent back with the change; a topic with an
//!   override the brokers do not reveal (a sensitive one) is refused rather than have that
//!   value reset.
//! - Nothing is sent when a change names a key twice or is empty; the error names the key.
//! - Between the read and the write, a change made by someone else to the same topic can be
//!   lost: run one change at a time per topic.

use super::{Admin, AdminError};
use rdkafka::admin::{AlterConfig, ConfigSource, ResourceSpecifier};
use serde::Serialize;
use std::collections::BTreeMap;

/// One config entry of a topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopicConfigEntry {
    /// Key, e.g. `retention.ms`.
    pub name: String,
    /// Value (none when the broker keeps it secret).
    pub value: Option<String>,
    /// Where the value comes from: `topic` (set on this topic), `broker`, `default`, or
    /// `unknown` (older brokers do not say).
    pub source: &'static str,
    /// The broker does not let it be changed.
    pub read_only: bool,
    /// The broker does not reveal it.
    pub sensitive: bool,
}

/// A change of a topic's configs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigChange {
    /// Keys to set, with their new values.
    pub set: Vec<(String, String)>,
    /// Keys to return to the broker's default.
    pub delete: Vec<String>,
}

fn source(s: &ConfigSource) -> &'static str {
    match s {
        ConfigSource::DynamicTopic => "topic",
        ConfigSource::DynamicBroker
        | ConfigSource::DynamicDefaultBroker
        | ConfigSource::StaticBroker => "broker",
        ConfigSource::Default => "default",
        ConfigSource::Unknown => "unknown",
    }
}

impl ConfigChange {
    /// The overrides `current` (a topic's entries) would have after this change, or the
    /// problem with the change.
    pub fn apply(
        &self,
        topic: &str,
        current: &[TopicConfigEntry],
    ) -> Result<BTreeMap<String, String>, AdminError> {
        let invalid = |msg: String| Err(AdminError::Config(format!("topic `{topic}`: {msg}")));
        if self.set.is_empty() && self.delete.is_empty() {
            return invalid("no config to set or delete".into());
        }
        let mut named = std::collections::BTreeSet::new();
        for key in self.set.iter().map(|(k, _)| k).chain(&self.delete) {
            if key.trim().is_empty() {
                return invalid("a config key is empty".into());
            }
            if !named.insert(key.as_str()) {
                return invalid(format!("config `{key}` is named twice"));
            }
        }
        let mut overrides = BTreeMap::new();
        for e in current.iter().filter(|e| e.source == "topic") {
            match &e.value {
                Some(v) => {
                    overrides.insert(e.name.clone(), v.clone());
                }
                None if named.contains(e.name.as_str()) => {}
                None => {
                    return invalid(format!(
                        "config `{}` is set on the topic but the brokers do not reveal its \
                         value, so it cannot be kept; set or delete it in the same change",
                        e.name
                    ))
                }
            }
        }
        for e in current.iter().filter(|e| e.read_only) {
            if named.contains(e.name.as_str()) {
                return invalid(format!("config `{}` is read-only", e.name));
            }
        }
        for key in &self.delete {
            overrides.remove(key);
        }
        for (k, v) in &self.set {
            overrides.insert(k.clone(), v.clone());
        }
        Ok(overrides)
    }
}

impl Admin {
    /// Every config entry of `topic`, sorted by name.
    pub async fn topic_configs(&self, topic: &str) -> Result<Vec<TopicConfigEntry>, AdminError> {
        let results = self
            .client
            .describe_configs(&[ResourceSpecifier::Topic(topic)], &self.options())
            .await
            .map_err(|e| AdminError::Kafka(e.to_string()))?;
        let resource = results
            .into_iter()
            .next()
            .ok_or_else(|| AdminError::Kafka(format!("topic `{topic}`: no configs returned")))?
            .map_err(|code| match code {
                rdkafka::types::RDKafkaErrorCode::UnknownTopicOrPartition => {
                    AdminError::UnknownTopic(topic.to_owned())
                }
                code => AdminError::Kafka(format!("topic `{topic}`: {code}")),
            })?;
        let mut entries: Vec<TopicConfigEntry> = resource
            .entries
            .iter()
            .map(|e| TopicConfigEntry {
                name: e.name.clone(),
                value: if e.is_sensitive {
                    None
                } else {
                    e.value.clone()
                },
                source: source(&e.source),
                read_only: e.is_read_only,
                sensitive: e.is_sensitive,
            })
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// Applies `change` to `topic`, keeping its other overrides (see the module docs), and
    /// returns the topic's entries as the brokers report them afterwards.
    pub async fn alter_topic_config(
        &self,
        topic: &str,
        change: &ConfigChange,
    ) -> Result<Vec<TopicConfigEntry>, AdminError> {
        let current = self.topic_configs(topic).await?;
        let overrides = change.apply(topic, &current)?;
        let mut alter = AlterConfig::new(ResourceSpecifier::Topic(topic));
        for (k, v) in &overrides {
            alter = alter.set(k, v);
        }
        let results = self
            .client
            .alter_configs([&alter], &self.options())
            .await
            .map_err(|e| AdminError::Kafka(e.to_string()))?;
        for r in results {
            if let Err((_, code)) = r {
                return Err(AdminError::Kafka(format!(
                    "cannot change the configs of topic `{topic}`: {code}"
                )));
            }
        }
        self.topic_configs(topic).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, value: Option<&str>, source: &'static str) -> TopicConfigEntry {
        TopicConfigEntry {
            name: name.into(),
            value: value.map(Into::into),
            source,
            read_only: false,
            sensitive: value.is_none(),
        }
    }

    fn change(set: &[(&str, &str)], delete: &[&str]) -> ConfigChange {
        ConfigChange {
            set: set
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            delete: delete.iter().map(|k| (*k).into()).collect(),
        }
    }

    #[test]
    fn a_change_keeps_the_other_overrides_and_drops_the_deleted_ones() {
        let current = [
            entry("min.insync.replicas", Some("2"), "topic"),
            entry("cleanup.policy", Some("delete"), "topic"),
            entry("retention.ms", Some("604800000"), "default"),
            entry("segment.bytes", Some("1073741824"), "broker"),
        ];
        let after = change(&[("retention.ms", "3600000")], &["cleanup.policy"])
            .apply("orders", &current)
            .unwrap();
        assert_eq!(
            after.into_iter().collect::<Vec<_>>(),
            [
                ("min.insync.replicas".to_owned(), "2".to_owned()),
                ("retention.ms".to_owned(), "3600000".to_owned()),
            ]
        );
    }

    #[test]
    fn a_change_that_would_lose_a_hidden_value_or_names_a_key_twice_is_refused() {
        let current = [
            entry("secret.thing", None, "topic"),
            entry("retention.ms", Some("1"), "topic"),
        ];
        let err = change(&[("retention.ms", "2")], &[])
            .apply("orders", &current)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`secret.thing`") && err.contains("orders"),
            "{err}"
        );
        assert!(change(&[("retention.ms", "2")], &["secret.thing"])
            .apply("orders", &current)
            .is_ok());
        let err = change(&[("retention.ms", "2")], &["retention.ms"])
            .apply("orders", &current[1..])
            .unwrap_err()
            .to_string();
        assert!(err.contains("`retention.ms` is named twice"), "{err}");
        let err = change(&[], &[]).apply("orders", &current[1..]).unwrap_err();
        assert!(err.to_string().contains("no config"), "{err}");
    }
}
