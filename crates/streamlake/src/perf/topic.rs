//! Making sure the topic of a run exists before the clock starts.

use super::PerfError;
use crate::admin::{Admin, AdminError};
use crate::config::Config;
use std::time::{Duration, Instant};

/// How long metadata look-ups and topic creation may take.
const TIMEOUT: Duration = Duration::from_secs(15);

/// A topic to create when it does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateTopic {
    /// Partitions.
    pub partitions: i32,
    /// Replicas of each partition.
    pub replication: i32,
}

/// The topic as found (or made).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicReady {
    /// Its partitions.
    pub partitions: usize,
    /// Whether this call created it.
    pub created: bool,
}

/// Looks `topic` up; when it does not exist, creates it as `create` says (and waits until the
/// cluster reports it) or fails with [`PerfError::UnknownTopic`]. Never creates a topic
/// otherwise.
pub async fn ensure_topic(
    config: &Config,
    topic: &str,
    create: Option<CreateTopic>,
) -> Result<TopicReady, PerfError> {
    let admin = Admin::new(config, TIMEOUT)?;
    match partitions(&admin, topic) {
        Ok(Some(n)) => {
            return Ok(TopicReady {
                partitions: n,
                created: false,
            })
        }
        Ok(None) => {}
        Err(e) => return Err(e.into()),
    }
    let Some(spec) = create else {
        return Err(PerfError::UnknownTopic(topic.to_owned()));
    };
    match admin
        .create_topic(topic, spec.partitions, spec.replication, &[])
        .await
    {
        // Someone else made it meanwhile: use theirs.
        Ok(()) | Err(AdminError::TopicExists(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(n) = partitions(&admin, topic)?.filter(|n| *n > 0) {
            return Ok(TopicReady {
                partitions: n,
                created: true,
            });
        }
        if Instant::now() >= deadline {
            return Err(PerfError::Admin(AdminError::Kafka(format!(
                "topic `{topic}` was created but the cluster did not report it within {TIMEOUT:?}"
            ))));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Partitions of `topic`, `None` when it does not exist.
fn partitions(admin: &Admin, topic: &str) -> Result<Option<usize>, AdminError> {
    match admin.describe(Some(topic)) {
        Ok(topics) => Ok(topics
            .iter()
            .find(|t| t.name == topic)
            .map(|t| t.partitions.len())
            .filter(|n| *n > 0)),
        Err(AdminError::UnknownTopic(_)) => Ok(None),
        Err(e) => Err(e),
    }
}
