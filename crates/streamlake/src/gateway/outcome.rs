//! What happened to each event of a request, kept compactly (for idempotent replays) and
//! rendered as the response.
//!
//! # Guarantees
//! - The status says what the caller should do: 200 every event is in Kafka; 207 some are in
//!   Kafka and the others were dead-lettered or can never be written; 422 none is in Kafka and
//!   none ever will be as sent (dead-lettered, or permanently refused such as too large); 500
//!   the gateway cannot write the dataset's topic (not the caller's fault, and not
//!   dead-lettered); 503 with `Retry-After` at least one event was not written for a passing
//!   reason, and sending the same request again (with the same `Idempotency-Key`) writes only
//!   those.
//! - A permanent per-event error (too large for the brokers' message size limit) is never
//!   answered with 503: retrying it could never succeed.

use crate::producer::ProduceError;
use axum::http::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

/// One event's fate.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum EventOutcome {
    /// Written to the dataset's topic.
    Accepted { partition: i32, offset: i64 },
    /// Invalid, written to the dead-letter topic.
    Invalid {
        step: &'static str,
        errors: Box<[String]>,
        partition: i32,
        offset: i64,
    },
    /// Not written.
    Failed(Failure),
}

/// Why an event was not written: its class decides the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Passing: Kafka unavailable, too slow, or the gateway overloaded. Worth a retry.
    Retriable(&'static str),
    /// The event itself can never be written as it is (too large).
    Rejected(&'static str),
    /// The gateway may not, or cannot, write the dataset's topic.
    Server(&'static str),
}

impl Failure {
    /// The class of a producer error, with its stable kind label.
    pub(crate) fn of(e: &ProduceError) -> Self {
        match e {
            ProduceError::TooLarge { .. } => Self::Rejected(e.kind()),
            ProduceError::UnknownTopic { .. } | ProduceError::Unauthorized { .. } => {
                Self::Server(e.kind())
            }
            _ if e.is_retriable() => Self::Retriable(e.kind()),
            _ => Self::Server(e.kind()),
        }
    }

    fn message(self) -> &'static str {
        match self {
            Self::Retriable("circuit_open") => {
                "not written: Kafka has not been taking events; retry later"
            }
            Self::Retriable("timeout") | Self::Retriable("queue_full") => {
                "not written within the request deadline; retry later"
            }
            Self::Retriable(_) => "not written to Kafka; retry later",
            Self::Rejected(_) => {
                "the event is larger than the brokers accept as one record; it can never be written as it is"
            }
            Self::Server(_) => {
                "the gateway cannot write to this dataset's topic; the operator has been told"
            }
        }
    }

    pub(crate) fn is_retriable(self) -> bool {
        matches!(self, Self::Retriable(_))
    }
}

/// One event of a request: its ingestion id and fate.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EventResult {
    pub id: Uuid,
    pub outcome: EventOutcome,
}

impl EventResult {
    /// Final: a retry of the request must not send this event again.
    pub(crate) fn is_final(&self) -> bool {
        !matches!(self.outcome, EventOutcome::Failed(f) if f.is_retriable())
    }

    /// Bytes this result holds, for the idempotency store's bound.
    pub(crate) fn size(&self) -> usize {
        size_of::<Self>()
            + match &self.outcome {
                EventOutcome::Invalid { errors, .. } => {
                    errors.iter().map(|e| e.len() + 24).sum::<usize>()
                }
                _ => 0,
            }
    }
}

/// Counts by fate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub accepted: u64,
    pub invalid: u64,
    pub retriable: u64,
    pub rejected: u64,
    pub server: u64,
}

impl Tally {
    pub(crate) fn of(results: &[EventResult]) -> Self {
        let mut t = Self::default();
        for r in results {
            t.add(&r.outcome);
        }
        t
    }

    /// Counts one more event with this fate.
    pub(crate) fn add(&mut self, outcome: &EventOutcome) {
        match outcome {
            EventOutcome::Accepted { .. } => self.accepted += 1,
            EventOutcome::Invalid { .. } => self.invalid += 1,
            EventOutcome::Failed(Failure::Retriable(_)) => self.retriable += 1,
            EventOutcome::Failed(Failure::Rejected(_)) => self.rejected += 1,
            EventOutcome::Failed(Failure::Server(_)) => self.server += 1,
        }
    }

    pub(crate) fn failed(&self) -> u64 {
        self.retriable + self.rejected + self.server
    }

    /// The response status for these counts (see the module docs).
    pub(crate) fn status(&self) -> StatusCode {
        if self.retriable > 0 {
            StatusCode::SERVICE_UNAVAILABLE
        } else if self.server > 0 {
            StatusCode::INTERNAL_SERVER_ERROR
        } else if self.invalid == 0 && self.rejected == 0 {
            StatusCode::OK
        } else if self.accepted == 0 {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::MULTI_STATUS
        }
    }
}

/// The response body: counts and one result per event, in request order.
pub(crate) fn render(results: &[EventResult], topic: &str, dlq_topic: &str) -> Value {
    let t = Tally::of(results);
    let items: Vec<Value> = results
        .iter()
        .map(|r| {
            let id = r.id.to_string();
            match &r.outcome {
                EventOutcome::Accepted { partition, offset } => json!({
                    "ingestion_id": id, "status": "accepted",
                    "topic": topic, "partition": partition, "offset": offset,
                }),
                EventOutcome::Invalid {
                    step,
                    errors,
                    partition,
                    offset,
                } => json!({
                    "ingestion_id": id, "status": "invalid", "step": step, "errors": errors,
                    "dlq": {"topic": dlq_topic, "partition": partition, "offset": offset},
                }),
                EventOutcome::Failed(f) => {
                    let (Failure::Retriable(kind)
                    | Failure::Rejected(kind)
                    | Failure::Server(kind)) = *f;
                    json!({
                        "ingestion_id": id, "status": "failed", "error": f.message(),
                        "reason": kind, "retriable": f.is_retriable(),
                    })
                }
            }
        })
        .collect();
    json!({
        "accepted": t.accepted,
        "invalid": t.invalid,
        "failed": t.failed(),
        "results": items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(outcome: EventOutcome) -> EventResult {
        EventResult {
            id: Uuid::now_v7(),
            outcome,
        }
    }

    #[test]
    fn status_follows_the_worst_class_and_permanent_errors_are_not_503() {
        let ok = result(EventOutcome::Accepted {
            partition: 0,
            offset: 1,
        });
        let invalid = result(EventOutcome::Invalid {
            step: "schema",
            errors: vec!["x".to_owned()].into(),
            partition: 0,
            offset: 2,
        });
        let large = result(EventOutcome::Failed(Failure::of(&ProduceError::TooLarge {
            detail: String::new(),
        })));
        let down = result(EventOutcome::Failed(Failure::of(&ProduceError::Timeout {
            detail: String::new(),
        })));
        let denied = result(EventOutcome::Failed(Failure::of(
            &ProduceError::Unauthorized {
                detail: String::new(),
            },
        )));
        let status = |rs: &[&EventResult]| {
            Tally::of(&rs.iter().map(|r| (*r).clone()).collect::<Vec<_>>()).status()
        };
        assert_eq!(status(&[&ok, &ok]), StatusCode::OK);
        assert_eq!(status(&[&ok, &invalid]), StatusCode::MULTI_STATUS);
        assert_eq!(status(&[&ok, &large]), StatusCode::MULTI_STATUS);
        assert_eq!(status(&[&large]), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            status(&[&invalid, &large]),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(status(&[&ok, &denied]), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            status(&[&ok, &large, &down]),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert!(large.is_final() && !down.is_final() && ok.is_final());
        let body = render(&[ok, large], "t", "d");
        assert_eq!(body["results"][1]["retriable"], false);
        assert_eq!(body["results"][1]["reason"], "too_large");
        assert_eq!(body["failed"], 1);
    }
}
