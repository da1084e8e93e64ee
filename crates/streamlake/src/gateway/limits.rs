//! Admission: how many requests and how many body bytes the gateway holds at once, how many
//! events one request may carry, and how long one may take.
//!
//! # Guarantees
//! - Memory is bounded: at most `max_concurrent_requests` requests are read and sent at once,
//!   holding at most `max_in_flight_bytes` of bodies between them; one request holds at most
//!   `max_body_bytes` (decompressed) and `max_events_per_request` events, so its response is
//!   bounded too. Past a bound the request is shed at once (503 with `Retry-After`, or 413 for
//!   a request that can never fit), not queued.
//! - Every request has a deadline (`request_timeout_ms`): events not yet written by then are
//!   answered as failed and retriable (the gateway's delivery timeout is kept within it).

use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// `limits:` in the gateway config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Events one request may carry; more is 413. Default 10000.
    pub max_events_per_request: usize,
    /// Requests read and sent at once; more are answered 503 at once. Default 256.
    pub max_concurrent_requests: usize,
    /// Body bytes held at once by all requests (a request without `Content-Length`, or a
    /// compressed one, counts as `max_body_bytes`); past it, 503. Default 64 MiB.
    pub max_in_flight_bytes: usize,
    /// Time from a request's body to its answer, in milliseconds: the gateway's producer
    /// delivery timeout is capped to it. Default 10000.
    pub request_timeout_ms: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_events_per_request: 10_000,
            max_concurrent_requests: 256,
            max_in_flight_bytes: 64 << 20,
            request_timeout_ms: 10_000,
        }
    }
}

/// The shared budgets.
#[derive(Debug)]
pub(crate) struct Admission {
    requests: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
    max_in_flight_bytes: usize,
    max_concurrent: usize,
}

/// Held while a request is being handled; gives its budget back when dropped.
#[derive(Debug)]
pub(crate) struct Admitted {
    _request: OwnedSemaphorePermit,
    _bytes: OwnedSemaphorePermit,
}

/// Why a request was shed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Shed {
    /// Too many requests at once.
    Requests(usize),
    /// Too many body bytes at once.
    Bytes(usize),
}

impl std::fmt::Display for Shed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Requests(n) => write!(
                f,
                "the gateway is handling its limit of {n} requests; retry shortly"
            ),
            Self::Bytes(n) => write!(
                f,
                "the gateway holds its limit of {n} bytes of request bodies; retry shortly"
            ),
        }
    }
}

impl Admission {
    pub(crate) fn new(c: &LimitsConfig) -> Self {
        let bytes = c.max_in_flight_bytes.min(u32::MAX as usize);
        Self {
            requests: Arc::new(Semaphore::new(c.max_concurrent_requests)),
            bytes: Arc::new(Semaphore::new(bytes)),
            max_in_flight_bytes: bytes,
            max_concurrent: c.max_concurrent_requests,
        }
    }

    /// Admits a request that will hold up to `bytes` of body, or sheds it.
    pub(crate) fn admit(&self, bytes: usize) -> Result<Admitted, Shed> {
        let request = Arc::clone(&self.requests)
            .try_acquire_owned()
            .map_err(|_| Shed::Requests(self.max_concurrent))?;
        let n = u32::try_from(bytes.min(self.max_in_flight_bytes)).unwrap_or(u32::MAX);
        let bytes = Arc::clone(&self.bytes)
            .try_acquire_many_owned(n)
            .map_err(|_| Shed::Bytes(self.max_in_flight_bytes))?;
        Ok(Admitted {
            _request: request,
            _bytes: bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_bytes_are_shed_past_their_budgets_and_given_back() {
        let a = Admission::new(&LimitsConfig {
            max_concurrent_requests: 2,
            max_in_flight_bytes: 1000,
            ..Default::default()
        });
        let one = a.admit(600).unwrap();
        assert_eq!(a.admit(600).unwrap_err(), Shed::Bytes(1000));
        let two = a.admit(400).unwrap();
        assert_eq!(a.admit(1).unwrap_err(), Shed::Requests(2));
        drop((one, two));
        let _three = a.admit(1000).unwrap();
        // Larger than the whole budget: it takes the whole budget, alone.
        assert_eq!(a.admit(5000).unwrap_err(), Shed::Bytes(1000));
    }
}
