//! Records in the client, in acceptance order: how long the oldest has waited, and a hold that
//! lets failed records out only in acceptance order.
//!
//! librdkafka does not report failures in acceptance order: a purge reports the records still
//! in the partition queues (the youngest) before those in requests to the broker (the oldest).
//! A failed record is therefore *held* until every older record has left the client
//! (delivered, failed, or held itself); held records are released oldest first, inside the
//! lock, so whoever takes them (the spool) sees them in acceptance order.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Records in the client by acceptance number, and failed ones held back.
#[derive(Debug)]
pub(crate) struct Order<T> {
    state: Mutex<State<T>>,
}

#[derive(Debug)]
struct State<T> {
    /// The next record's number.
    next: u64,
    /// Number → when it entered the client.
    in_client: BTreeMap<u64, Instant>,
    /// Number → a failed record waiting for older ones to leave the client.
    held: BTreeMap<u64, T>,
}

impl<T> Default for Order<T> {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                next: 0,
                in_client: BTreeMap::new(),
                held: BTreeMap::new(),
            }),
        }
    }
}

impl<T> Order<T> {
    /// Numbers a record entering the client now.
    pub fn enter(&self) -> u64 {
        let mut state = self.state.lock().expect("lock");
        let n = state.next;
        state.next += 1;
        state.in_client.insert(n, Instant::now());
        n
    }

    /// How long the oldest record still in the client has waited (`None` when none is).
    pub fn oldest(&self) -> Option<Duration> {
        let state = self.state.lock().expect("lock");
        state.in_client.first_key_value().map(|(_, t)| t.elapsed())
    }

    /// Record `n` has left the client (delivered, or failed and not held). `release` gets every
    /// held record that may go now, oldest first, under the lock.
    pub fn leave(&self, n: u64, release: impl FnMut(T)) {
        let mut state = self.state.lock().expect("lock");
        state.in_client.remove(&n);
        state.release(release);
    }

    /// Record `n` failed: it leaves the client and is held as `item` until every older record
    /// has left. `release` gets every held record that may go now (`item` among them if
    /// nothing older is in the client), oldest first, under the lock.
    pub fn hold(&self, n: u64, item: T, release: impl FnMut(T)) {
        let mut state = self.state.lock().expect("lock");
        state.in_client.remove(&n);
        state.held.insert(n, item);
        state.release(release);
    }
}

impl<T> State<T> {
    fn release(&mut self, mut release: impl FnMut(T)) {
        let oldest = self.in_client.first_key_value().map(|(n, _)| *n);
        while let Some(entry) = self.held.first_entry() {
            if oldest.is_some_and(|o| o < *entry.key()) {
                break;
            }
            release(entry.remove());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn released(
        order: &Order<&'static str>,
        n: u64,
        item: Option<&'static str>,
    ) -> Vec<&'static str> {
        let mut out = Vec::new();
        match item {
            Some(item) => order.hold(n, item, |x| out.push(x)),
            None => order.leave(n, |x| out.push(x)),
        }
        out
    }

    #[test]
    fn failures_reported_youngest_first_are_released_oldest_first() {
        let order = Order::default();
        let [a, b, c, d] = [order.enter(), order.enter(), order.enter(), order.enter()];
        // A purge reports the queued (younger) records before the one in flight.
        assert!(released(&order, c, Some("c")).is_empty());
        assert!(released(&order, d, Some("d")).is_empty());
        assert!(
            released(&order, b, Some("b")).is_empty(),
            "a is older and still in"
        );
        assert_eq!(released(&order, a, Some("a")), ["a", "b", "c", "d"]);
        assert_eq!(order.oldest(), None);
    }

    #[test]
    fn a_delivered_older_record_releases_the_held_ones() {
        let order = Order::default();
        let [a, b, c] = [order.enter(), order.enter(), order.enter()];
        assert!(released(&order, b, Some("b")).is_empty());
        assert_eq!(released(&order, a, None), ["b"]);
        assert!(order.oldest().is_some(), "c is still in the client");
        assert!(released(&order, c, None).is_empty());
    }

    #[test]
    fn the_oldest_record_in_the_client_sets_the_age() {
        let order: Order<()> = Order::default();
        let first = order.enter();
        std::thread::sleep(Duration::from_millis(30));
        let second = order.enter();
        let both = order.oldest().unwrap();
        assert!(both >= Duration::from_millis(30), "{both:?}");
        order.leave(first, |_| {});
        assert!(order.oldest().unwrap() < both);
        order.leave(second, |_| {});
        assert_eq!(order.oldest(), None);
    }
}
