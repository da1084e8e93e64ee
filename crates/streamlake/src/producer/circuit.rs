//! The circuit breaker: stop sending into a cluster that is not answering.
//!
//! Closed: records are sent. After `failure_threshold` retriable failures in a row (delivery
//! timeouts, transport errors) it opens: new records go to the spool, or fail at once, instead
//! of piling up in memory. After `open_ms` it lets one probe through (half-open); a delivered
//! probe closes it, a failed one opens it again.

use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// `producer.circuit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CircuitConfig {
    /// Retriable failures in a row that open the circuit. 0 turns the breaker off. Default 5.
    pub failure_threshold: u32,
    /// How long the circuit stays open before one probe is let through. Default 5000.
    pub open_ms: u64,
}

impl Default for CircuitConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            open_ms: 5_000,
        }
    }
}

/// What the breaker says about the next record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Send it.
    Send,
    /// Send it as the probe: its outcome decides whether the circuit closes.
    Probe,
    /// Do not send it now (spool it or fail fast).
    Refuse,
}

/// The state, for metrics and status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    /// Records are sent.
    Closed,
    /// Records are refused.
    Open,
    /// One probe is out.
    HalfOpen,
}

impl CircuitState {
    /// `closed`, `open` or `half_open`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen,
}

/// A circuit breaker, shared between the sending side and the delivery callbacks.
#[derive(Debug)]
pub struct Circuit {
    config: CircuitConfig,
    state: Mutex<State>,
}

impl Circuit {
    /// A closed circuit.
    pub fn new(config: CircuitConfig) -> Self {
        Self {
            config,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    /// Whether the next record may be sent.
    pub fn admit(&self) -> Admit {
        self.admit_at(Instant::now())
    }

    fn admit_at(&self, now: Instant) -> Admit {
        let mut state = self.state.lock().expect("lock");
        match *state {
            State::Closed { .. } => Admit::Send,
            State::Open { until } if now >= until => {
                *state = State::HalfOpen;
                Admit::Probe
            }
            State::Open { .. } | State::HalfOpen => Admit::Refuse,
        }
    }

    /// A record was delivered: the circuit closes.
    pub fn success(&self) {
        *self.state.lock().expect("lock") = State::Closed { failures: 0 };
    }

    /// A record failed with a retriable error.
    pub fn failure(&self) {
        self.failure_at(Instant::now());
    }

    fn failure_at(&self, now: Instant) {
        if self.config.failure_threshold == 0 {
            return;
        }
        let open = State::Open {
            until: now + Duration::from_millis(self.config.open_ms),
        };
        let mut state = self.state.lock().expect("lock");
        *state = match *state {
            State::Closed { failures } if failures + 1 < self.config.failure_threshold => {
                State::Closed {
                    failures: failures + 1,
                }
            }
            State::Closed { .. } | State::HalfOpen => {
                tracing::warn!(
                    open_ms = self.config.open_ms,
                    "circuit open: Kafka is not taking records"
                );
                open
            }
            State::Open { until } => State::Open { until },
        };
    }

    /// The current state.
    pub fn state(&self) -> CircuitState {
        match *self.state.lock().expect("lock") {
            State::Closed { .. } => CircuitState::Closed,
            State::Open { .. } => CircuitState::Open,
            State::HalfOpen => CircuitState::HalfOpen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_probes_and_closes() {
        let c = Circuit::new(CircuitConfig {
            failure_threshold: 3,
            open_ms: 1_000,
        });
        let t0 = Instant::now();
        c.failure_at(t0);
        c.failure_at(t0);
        assert_eq!(c.admit_at(t0), Admit::Send);
        c.failure_at(t0);
        assert_eq!(c.state(), CircuitState::Open);
        assert_eq!(c.admit_at(t0 + Duration::from_millis(999)), Admit::Refuse);
        assert_eq!(c.admit_at(t0 + Duration::from_secs(1)), Admit::Probe);
        assert_eq!(c.state(), CircuitState::HalfOpen);
        assert_eq!(
            c.admit_at(t0 + Duration::from_secs(1)),
            Admit::Refuse,
            "one probe at a time"
        );
        // A failed probe opens it again for another interval.
        c.failure_at(t0 + Duration::from_secs(1));
        assert_eq!(c.admit_at(t0 + Duration::from_millis(1500)), Admit::Refuse);
        assert_eq!(c.admit_at(t0 + Duration::from_secs(2)), Admit::Probe);
        c.success();
        assert_eq!(c.state(), CircuitState::Closed);
        assert_eq!(c.admit_at(t0 + Duration::from_secs(2)), Admit::Send);
    }

    #[test]
    fn a_success_resets_the_count_and_zero_turns_it_off() {
        let c = Circuit::new(CircuitConfig {
            failure_threshold: 2,
            open_ms: 1_000,
        });
        let t0 = Instant::now();
        c.failure_at(t0);
        c.success();
        c.failure_at(t0);
        assert_eq!(c.state(), CircuitState::Closed);
        let off = Circuit::new(CircuitConfig {
            failure_threshold: 0,
            open_ms: 1,
        });
        for _ in 0..100 {
            off.failure_at(t0);
        }
        assert_eq!(off.admit_at(t0), Admit::Send);
    }
}
