//! Topic administration: create, delete, list and describe topics, read and change their
//! configs ([`Admin::topic_configs`], [`Admin::alter_topic_config`]).

mod configs;

pub use configs::{ConfigChange, TopicConfigEntry};

use crate::config::{ClientKind, Config};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::{Client, ClientContext, DefaultClientContext};
use rdkafka::error::RDKafkaErrorCode;
use std::time::Duration;

/// Why an admin operation failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The configuration is invalid.
    #[error("{0}")]
    Config(String),
    /// The topic already exists.
    #[error("topic `{0}` already exists")]
    TopicExists(String),
    /// The topic does not exist.
    #[error("topic `{0}` does not exist")]
    UnknownTopic(String),
    /// Any other error, with the broker's or client's reason.
    #[error("{0}")]
    Kafka(String),
}

impl AdminError {
    /// Worth trying again later.
    pub fn is_retriable(&self) -> bool {
        matches!(self, Self::Kafka(_))
    }
}

impl From<crate::config::ConfigError> for AdminError {
    fn from(e: crate::config::ConfigError) -> Self {
        Self::Config(e.to_string())
    }
}

/// One partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// Partition id.
    pub id: i32,
    /// Leader broker id.
    pub leader: i32,
    /// Replica broker ids.
    pub replicas: Vec<i32>,
    /// In-sync replica broker ids.
    pub isr: Vec<i32>,
}

/// A topic and its partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// Topic name.
    pub name: String,
    /// Partitions, by id.
    pub partitions: Vec<PartitionInfo>,
}

/// An admin client.
pub struct Admin {
    client: AdminClient<DefaultClientContext>,
    timeout: Duration,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin").finish_non_exhaustive()
    }
}

impl Admin {
    /// Creates an admin client; operations wait at most `timeout` for the cluster.
    pub fn new(config: &Config, timeout: Duration) -> Result<Self, AdminError> {
        let client = config
            .client_config(ClientKind::Admin)?
            .create()
            .map_err(|e| AdminError::Kafka(format!("cannot create admin client: {e}")))?;
        Ok(Self { client, timeout })
    }

    fn options(&self) -> AdminOptions {
        AdminOptions::new()
            .operation_timeout(Some(self.timeout))
            .request_timeout(Some(self.timeout))
    }

    /// Creates a topic with `partitions` partitions, `replication` replicas and topic configs.
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication: i32,
        configs: &[(&str, &str)],
    ) -> Result<(), AdminError> {
        let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(replication));
        for (k, v) in configs {
            topic = topic.set(k, v);
        }
        let results = self
            .client
            .create_topics([&topic], &self.options())
            .await
            .map_err(|e| AdminError::Kafka(e.to_string()))?;
        for r in results {
            match r {
                Ok(_) => {}
                Err((t, RDKafkaErrorCode::TopicAlreadyExists)) => {
                    return Err(AdminError::TopicExists(t))
                }
                Err((t, code)) => {
                    return Err(AdminError::Kafka(format!(
                        "cannot create topic `{t}`: {code}"
                    )))
                }
            }
        }
        Ok(())
    }

    /// Deletes a topic.
    pub async fn delete_topic(&self, name: &str) -> Result<(), AdminError> {
        let results = self
            .client
            .delete_topics(&[name], &self.options())
            .await
            .map_err(|e| AdminError::Kafka(e.to_string()))?;
        for r in results {
            match r {
                Ok(_) => {}
                Err((t, RDKafkaErrorCode::UnknownTopicOrPartition)) => {
                    return Err(AdminError::UnknownTopic(t))
                }
                Err((t, code)) => {
                    return Err(AdminError::Kafka(format!(
                        "cannot delete topic `{t}`: {code}"
                    )))
                }
            }
        }
        Ok(())
    }

    /// The brokers in the cluster's metadata: `(id, host:port)`, sorted by id.
    pub fn brokers(&self) -> Result<Vec<(i32, String)>, AdminError> {
        let md = self
            .client
            .inner()
            .fetch_metadata(None, self.timeout)
            .map_err(|e| AdminError::Kafka(e.to_string()))?;
        let mut out: Vec<(i32, String)> = md
            .brokers()
            .iter()
            .map(|b| (b.id(), format!("{}:{}", b.host(), b.port())))
            .collect();
        out.sort();
        Ok(out)
    }

    /// Every topic (or just `topic`), sorted by name, internal ones included.
    pub fn describe(&self, topic: Option<&str>) -> Result<Vec<TopicInfo>, AdminError> {
        describe_on(self.client.inner(), topic, self.timeout)
    }

    /// The earliest and the next offset of partition `partition` of `topic`: `high - low` is
    /// how many records (and transaction markers) it holds now. Asks the partition's leader.
    pub fn watermarks(&self, topic: &str, partition: i32) -> Result<(i64, i64), AdminError> {
        self.client
            .inner()
            .fetch_watermarks(topic, partition, self.timeout)
            .map_err(|e| AdminError::Kafka(format!("{topic}/{partition}: offsets: {e}")))
    }

    /// The broker id of the cluster's controller, as the last metadata answer named it
    /// (`None` when no broker named one within the timeout).
    pub fn controller(&self) -> Option<i32> {
        let _ = self.client.inner().fetch_metadata(None, self.timeout);
        let ms = i32::try_from(self.timeout.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: `native_ptr` is the live handle of this admin client, which outlives the
        // call; `rd_kafka_controllerid` only reads the client's cached metadata and takes no
        // ownership. rust-rdkafka has no safe wrapper for it.
        #[allow(unsafe_code)]
        let id = unsafe {
            rdkafka::bindings::rd_kafka_controllerid(self.client.inner().native_ptr(), ms)
        };
        (id >= 0).then_some(id)
    }

    /// One config value of each of `topics` (`min.insync.replicas`, say), as the brokers
    /// report it; a topic whose configs could not be read is left out.
    pub async fn topic_config(
        &self,
        topics: &[String],
        name: &str,
    ) -> Result<std::collections::BTreeMap<String, String>, AdminError> {
        let specs: Vec<ResourceSpecifier<'_>> = topics
            .iter()
            .map(|t| ResourceSpecifier::Topic(t.as_str()))
            .collect();
        if specs.is_empty() {
            return Ok(Default::default());
        }
        let results = self
            .client
            .describe_configs(&specs, &self.options())
            .await
            .map_err(|e| AdminError::Kafka(e.to_string()))?;
        let mut out = std::collections::BTreeMap::new();
        for (topic, r) in topics.iter().zip(results) {
            if let Ok(resource) = r {
                if let Some(v) = resource.get(name).and_then(|e| e.value.clone()) {
                    out.insert(topic.clone(), v);
                }
            }
        }
        Ok(out)
    }
}

/// Every topic (or just `topic`) as `client` sees the cluster, sorted by name, internal ones
/// included: one metadata request, whichever kind of client asks it.
pub(crate) fn describe_on<C: ClientContext>(
    client: &Client<C>,
    topic: Option<&str>,
    timeout: Duration,
) -> Result<Vec<TopicInfo>, AdminError> {
    let md = client
        .fetch_metadata(topic, timeout)
        .map_err(|e| AdminError::Kafka(e.to_string()))?;
    let mut out = Vec::new();
    for t in md.topics() {
        if let Some(err) = t.error() {
            let code = RDKafkaErrorCode::from(err);
            if code == RDKafkaErrorCode::UnknownTopicOrPartition {
                return Err(AdminError::UnknownTopic(t.name().to_owned()));
            }
            return Err(AdminError::Kafka(format!("topic `{}`: {code}", t.name())));
        }
        let mut partitions: Vec<PartitionInfo> = t
            .partitions()
            .iter()
            .map(|p| PartitionInfo {
                id: p.id(),
                leader: p.leader(),
                replicas: p.replicas().to_vec(),
                isr: p.isr().to_vec(),
            })
            .collect();
        partitions.sort_by_key(|p| p.id);
        out.push(TopicInfo {
            name: t.name().to_owned(),
            partitions,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}
