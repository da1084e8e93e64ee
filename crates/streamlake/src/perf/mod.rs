//! Performance testing: how fast records go into a topic and how long each one takes, and how
//! fast they come out again.
//!
//! # What the producer run measures
//! [`produce::run`] sends from `producers` threads, each with its own [`crate::Producer`]
//! (own client, own connections), and reports in a [`PerfReport`]:
//! - **Throughput**: acknowledged measured records (and their key, value and header bytes)
//!   per second, from the start of the measurement to the last measured record's outcome.
//! - **Delivery latency** (p50, p95, p99, p99.9, max, from an HDR histogram at 3 significant
//!   digits, 1 µs to 10 min): the time of the acknowledgement (the delivery callback) minus
//!   the record's **intended** send time.
//!
//! # Coordinated-omission correction
//! With a throughput target, record `n` is due at `start + n / rate`, a schedule fixed in
//! advance for all producers together. A sender that falls behind (a full client queue while
//! the cluster stalls, a slow machine) does not move the schedule: when it catches up, the
//! records it owes go out at once and each one's latency still counts from when it was due.
//! A stall therefore shows up in the percentiles for every record it delayed, not only for
//! the few that happened to be in flight. The report also carries the
//! [`uncorrected`](PerfReport::uncorrected) figures (from the moment each record was actually
//! handed to the producer), which is what testers without this correction print; a large gap
//! between the two means the producer itself was held up. Without a target, the intended time
//! is the moment the record is handed over (waiting for room in a full queue included).
//!
//! # Warm-up
//! The first records (by default a tenth of the run; see [`Warmup`]) are sent, delivered
//! and accounted for but kept out of `records`, the rates and the latency, so connection set-up
//! and metadata look-ups do not distort them. The measurement starts only once every warm-up
//! record has its outcome (nothing of the warm-up is still queued in front of measured
//! records); with a throughput target the measured records are scheduled from that moment.
//! `--records` and `--duration` bound the measured part; the warm-up comes on top and is
//! reported as `warmup_records`.
//!
//! # Accounting
//! Every record handed to a producer ends counted once: delivered, or failed by
//! [`ProduceError::kind`](crate::ProduceError::kind) in `errors_by_kind` (a record refused at
//! once, one that timed out, one still queued when the producer had to be closed). A stop
//! (Ctrl-C) ends sending at once; records already sent are still waited for and counted.
//!
//! # Records
//! See [`payload`]: exact-size JSON orders by default, keys from a bounded key space, five
//! metadata headers and the send-time header that [`consume::run`] measures end-to-end latency
//! from (now minus the header's send time; the record timestamp when there is no header).
//!
//! Nothing here prints: progress goes to a callback and results are returned.

pub mod consume;
pub mod options;
pub mod payload;
pub mod produce;
pub mod report;
pub mod topic;

pub use options::{ConsumeOptions, PerfOptions, Warmup};
pub use payload::{PayloadSpec, HEADER_NAMES, SENT_AT_HEADER};
pub use report::{ConsumeReport, Percentiles, PerfReport};
pub use topic::{ensure_topic, CreateTopic, TopicReady};

use crate::admin::AdminError;
use crate::consumer::ConsumeError;
use crate::datagen::DatagenError;
use crate::producer::ProduceError;
use crate::serdes::SerdeError;

/// Why a performance run could not start or go on. Records that fail during a run are not
/// errors of the run: they are counted in its report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PerfError {
    /// The options are invalid.
    #[error("{0}")]
    Options(String),
    /// The values to send could not be prepared (payload file, generated records).
    #[error("payload: {0}")]
    Payload(String),
    /// The topic does not exist.
    #[error("topic `{0}` does not exist")]
    UnknownTopic(String),
    /// A value could not be encoded in its format.
    #[error(transparent)]
    Serde(#[from] SerdeError),
    /// Schema-true values could not be generated.
    #[error(transparent)]
    Datagen(#[from] DatagenError),
    /// A producer could not be created.
    #[error(transparent)]
    Produce(#[from] ProduceError),
    /// The consumer could not be created or failed.
    #[error(transparent)]
    Consume(#[from] ConsumeError),
    /// The topic could not be looked up or created.
    #[error(transparent)]
    Admin(#[from] AdminError),
}

impl PerfError {
    /// Whether trying again later may help (the cluster or registry may be back).
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Options(_) | Self::Payload(_) | Self::UnknownTopic(_) => false,
            Self::Serde(e) => e.is_retriable(),
            Self::Datagen(e) => e.is_retriable(),
            Self::Produce(e) => e.is_retriable(),
            Self::Consume(e) => e.is_retriable(),
            Self::Admin(e) => e.is_retriable(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retriable_only_where_the_cause_is() {
        assert!(!PerfError::Options("x".into()).is_retriable());
        assert!(!PerfError::UnknownTopic("t".into()).is_retriable());
        assert!(PerfError::Admin(AdminError::Kafka("down".into())).is_retriable());
        assert!(PerfError::Produce(ProduceError::Purged).is_retriable());
        assert!(!PerfError::Produce(ProduceError::Config("bad".into())).is_retriable());
        let e = PerfError::UnknownTopic("orders".into()).to_string();
        assert_eq!(e, "topic `orders` does not exist");
    }
}
