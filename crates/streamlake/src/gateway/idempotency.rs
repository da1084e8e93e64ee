//! The idempotency store: one write per (caller, dataset, `Idempotency-Key`).
//!
//! # Guarantees
//! - Scoped per caller: with API keys on, the scope is the key's name, so one tenant can never
//!   see or replay another's answers by reusing its `Idempotency-Key`.
//! - A request is claimed before anything is sent. A concurrent request with the same key
//!   waits for the first to finish and then gets its answer (or, if its own deadline passes
//!   first, 409 with `Retry-After`); it never writes on its own.
//! - The result is kept when the first request finishes, even if its client went away.
//! - Per event: a retry of a request answered 503 sends only the events that were not written
//!   (same ingestion ids), and keeps the others' results.
//! - The same key with a different body (or content type) is refused, never answered with the
//!   first body's results.
//! - Bounded by entries (`max_keys`), bytes (`max_bytes`) and age (`ttl_ms`): the oldest
//!   finished entries are evicted first, one at a time, never all at once. An evicted or
//!   expired key is new again: a retry after that writes again (at least once).
//! - In memory only: a restart forgets every key.

use super::outcome::EventResult;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `idempotency:` in the gateway config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdempotencyConfig {
    /// Keys remembered at most. Default 100000.
    pub max_keys: usize,
    /// Bytes of remembered results at most (about 80 bytes an event, plus the text of
    /// invalid events' errors). Default 64 MiB.
    pub max_bytes: usize,
    /// How long a key is remembered after its request finished, in milliseconds. Default 24 h.
    pub ttl_ms: u64,
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        Self {
            max_keys: 100_000,
            max_bytes: 64 << 20,
            ttl_ms: 24 * 3600 * 1000,
        }
    }
}

/// Who asked, where, under which key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub scope: String,
    pub dataset: String,
    pub key: String,
}

/// A 128-bit digest of a request's body and layout, keyed per process.
pub(crate) type Fingerprint = u128;

/// The fingerprint of `parts`.
pub(crate) fn fingerprint(parts: &[&[u8]]) -> Fingerprint {
    static SEEDS: std::sync::OnceLock<(std::hash::RandomState, std::hash::RandomState)> =
        std::sync::OnceLock::new();
    let (a, b) = SEEDS.get_or_init(Default::default);
    let (mut ha, mut hb) = (a.build_hasher(), b.build_hasher());
    for p in parts {
        ha.write_usize(p.len());
        ha.write(p);
        hb.write_usize(p.len());
        hb.write(p);
    }
    (u128::from(ha.finish()) << 64) | u128::from(hb.finish())
}

/// What a request may do under its key.
#[derive(Debug)]
pub(crate) enum Begin {
    /// Run it (with the results of an earlier try whose retriable failures are to be sent
    /// again), then [`Claim::finish`].
    Run(Claim, Option<Arc<[EventResult]>>),
    /// Answer with these results; send nothing.
    Replay(Arc<[EventResult]>),
    /// The key was used for a different body.
    Conflict,
    /// Another request with this key is running: wait for this, then ask again.
    Wait(tokio::sync::watch::Receiver<()>),
}

enum Slot {
    Running {
        fingerprint: Fingerprint,
        done: tokio::sync::watch::Receiver<()>,
    },
    Done {
        fingerprint: Fingerprint,
        results: Arc<[EventResult]>,
        at: Instant,
        seq: u64,
        bytes: usize,
    },
}

#[derive(Default)]
struct Inner {
    slots: HashMap<Key, Slot>,
    /// Finished entries, oldest first (an entry re-run later has a newer `seq`; stale ones
    /// are skipped).
    order: VecDeque<(u64, Key)>,
    bytes: usize,
    done: usize,
    seq: u64,
}

/// The store, shared by every request.
pub(crate) struct Store {
    config: IdempotencyConfig,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The right to run one request under its key; dropped unfinished, it lets the next one run.
pub(crate) struct Claim {
    store: Arc<Store>,
    key: Key,
    fingerprint: Fingerprint,
    _done: tokio::sync::watch::Sender<()>,
    finished: bool,
}

impl std::fmt::Debug for Claim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claim").field("key", &self.key).finish()
    }
}

impl Store {
    pub(crate) fn new(config: IdempotencyConfig) -> Arc<Self> {
        Arc::new(Self {
            config,
            inner: Mutex::default(),
        })
    }

    /// Claims `key` for a request whose body has `fingerprint`, or says why not.
    pub(crate) fn begin(self: &Arc<Self>, key: Key, fingerprint: Fingerprint) -> Begin {
        let mut inner = self.inner.lock().expect("lock");
        self.expire(&mut inner, Instant::now());
        let previous = match inner.slots.get(&key) {
            Some(Slot::Running {
                fingerprint: f,
                done,
            }) => {
                return if *f == fingerprint {
                    Begin::Wait(done.clone())
                } else {
                    Begin::Conflict
                }
            }
            Some(Slot::Done {
                fingerprint: f,
                results,
                ..
            }) => {
                if *f != fingerprint {
                    return Begin::Conflict;
                }
                if results.iter().all(EventResult::is_final) {
                    return Begin::Replay(Arc::clone(results));
                }
                Some(Arc::clone(results))
            }
            None => None,
        };
        if let Some(Slot::Done { bytes, .. }) = inner.slots.remove(&key) {
            inner.bytes -= bytes;
            inner.done -= 1;
        }
        let (tx, rx) = tokio::sync::watch::channel(());
        inner.slots.insert(
            key.clone(),
            Slot::Running {
                fingerprint,
                done: rx,
            },
        );
        Begin::Run(
            Claim {
                store: Arc::clone(self),
                key,
                fingerprint,
                _done: tx,
                finished: false,
            },
            previous,
        )
    }

    /// Drops finished entries past their age, then the oldest ones while over a bound.
    fn expire(&self, inner: &mut Inner, now: Instant) {
        let ttl = Duration::from_millis(self.config.ttl_ms);
        while let Some((seq, key)) = inner.order.front().cloned() {
            let evict = match inner.slots.get(&key) {
                Some(Slot::Done { seq: s, at, .. }) if *s == seq => {
                    now.duration_since(*at) >= ttl
                        || inner.done > self.config.max_keys
                        || inner.bytes > self.config.max_bytes
                }
                // Stale: the key was run again since (or evicted).
                _ => {
                    inner.order.pop_front();
                    continue;
                }
            };
            if !evict {
                break;
            }
            inner.order.pop_front();
            if let Some(Slot::Done { bytes, .. }) = inner.slots.remove(&key) {
                inner.bytes -= bytes;
                inner.done -= 1;
            }
        }
    }

    /// How many keys are remembered, finished or running.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().expect("lock").slots.len()
    }
}

impl Claim {
    /// Keeps `results` as the answer for this key, and wakes any request waiting for it.
    pub(crate) fn finish(mut self, results: Arc<[EventResult]>) {
        self.finished = true;
        let bytes = results.iter().map(EventResult::size).sum::<usize>() + 64 + self.key_len();
        let store = Arc::clone(&self.store);
        let mut inner = store.inner.lock().expect("lock");
        inner.seq += 1;
        let seq = inner.seq;
        inner.slots.insert(
            self.key.clone(),
            Slot::Done {
                fingerprint: self.fingerprint,
                results,
                at: Instant::now(),
                seq,
                bytes,
            },
        );
        inner.order.push_back((seq, self.key.clone()));
        inner.bytes += bytes;
        inner.done += 1;
        store.expire(&mut inner, Instant::now());
    }

    fn key_len(&self) -> usize {
        self.key.scope.len() + self.key.dataset.len() + self.key.key.len()
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if !self.finished {
            let mut inner = self.store.inner.lock().expect("lock");
            if matches!(inner.slots.get(&self.key), Some(Slot::Running { .. })) {
                inner.slots.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::outcome::{EventOutcome, Failure};
    use super::*;
    use uuid::Uuid;

    fn key(k: &str) -> Key {
        Key {
            scope: "tenant-a".into(),
            dataset: "orders".into(),
            key: k.into(),
        }
    }

    fn accepted(n: usize) -> Arc<[EventResult]> {
        (0..n)
            .map(|i| EventResult {
                id: Uuid::now_v7(),
                outcome: EventOutcome::Accepted {
                    partition: 0,
                    offset: i as i64,
                },
            })
            .collect()
    }

    fn run(store: &Arc<Store>, k: &str, f: Fingerprint) -> (Claim, Option<Arc<[EventResult]>>) {
        match store.begin(key(k), f) {
            Begin::Run(c, p) => (c, p),
            other => panic!("expected Run, got {other:?}"),
        }
    }

    #[test]
    fn a_running_key_makes_duplicates_wait_and_a_finished_one_replays() {
        let store = Store::new(IdempotencyConfig::default());
        let (claim, previous) = run(&store, "k", 1);
        assert!(previous.is_none());
        let Begin::Wait(done) = store.begin(key("k"), 1) else {
            panic!("a duplicate of a running request must wait");
        };
        assert!(matches!(store.begin(key("k"), 2), Begin::Conflict));
        claim.finish(accepted(3));
        // The waiter is woken (the sender is gone).
        assert!(done.has_changed().is_err());
        let Begin::Replay(r) = store.begin(key("k"), 1) else {
            panic!("expected a replay")
        };
        assert_eq!(r.len(), 3);
        assert!(matches!(store.begin(key("k"), 2), Begin::Conflict));
        // Another tenant's same key is its own.
        let other = Key {
            scope: "tenant-b".into(),
            ..key("k")
        };
        assert!(matches!(store.begin(other, 2), Begin::Run(..)));
    }

    #[test]
    fn an_abandoned_claim_frees_the_key_and_partial_results_resume() {
        let store = Store::new(IdempotencyConfig::default());
        let (claim, _) = run(&store, "k", 1);
        drop(claim);
        let (claim, _) = run(&store, "k", 1);
        let mut results = accepted(2).to_vec();
        results[1].outcome = EventOutcome::Failed(Failure::Retriable("timeout"));
        claim.finish(results.into());
        let (_claim, previous) = run(&store, "k", 1);
        let previous = previous.expect("the earlier results come back");
        assert!(previous[0].is_final() && !previous[1].is_final());
    }

    #[test]
    fn bounds_evict_the_oldest_entries_one_at_a_time() {
        let store = Store::new(IdempotencyConfig {
            max_keys: 3,
            ..Default::default()
        });
        for k in ["a", "b", "c", "d"] {
            run(&store, k, 1).0.finish(accepted(1));
        }
        assert_eq!(store.len(), 3);
        assert!(
            matches!(store.begin(key("a"), 1), Begin::Run(..)),
            "oldest evicted"
        );
        for k in ["c", "d"] {
            assert!(
                matches!(store.begin(key(k), 1), Begin::Replay(_)),
                "{k} kept"
            );
        }
        // Bytes: each entry of 1000 events is about 40 KB.
        let store = Store::new(IdempotencyConfig {
            max_bytes: 100_000,
            ..Default::default()
        });
        for k in ["a", "b", "c"] {
            run(&store, k, 1).0.finish(accepted(1000));
        }
        assert!(matches!(store.begin(key("a"), 1), Begin::Run(..)));
        assert!(matches!(store.begin(key("c"), 1), Begin::Replay(_)));
        // Age.
        let store = Store::new(IdempotencyConfig {
            ttl_ms: 0,
            ..Default::default()
        });
        run(&store, "a", 1).0.finish(accepted(1));
        assert!(matches!(store.begin(key("a"), 1), Begin::Run(..)));
    }

    #[test]
    fn fingerprints_differ_by_body_and_layout() {
        assert_eq!(
            fingerprint(&[b"json", b"{}"]),
            fingerprint(&[b"json", b"{}"])
        );
        assert_ne!(
            fingerprint(&[b"json", b"{}"]),
            fingerprint(&[b"lines", b"{}"])
        );
        assert_ne!(fingerprint(&[b"ab", b"c"]), fingerprint(&[b"a", b"bc"]));
    }
}
