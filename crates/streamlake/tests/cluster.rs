//! Failover on a real three-broker replicated cluster: the cluster of `scripts/cluster.sh`
//! (three crabka-broker 0.3.0 processes, a three-voter controller quorum, data on disk), started
//! once for this test binary by the shared test rig.
//!
//! Every test here stops, kills or freezes brokers of that one cluster, so they run one at a
//! time (`exclusive`), each starts from a healed cluster (every broker running, replicas in
//! sync) and brings every broker back before it ends.
//!
//! Each test writes keyed records `key:seq` with StreamLake's defaults (idempotent,
//! `acks=all`), reads the topic back and checks (`check`): every acknowledged record is there
//! once, at the offset its delivery reported; every spooled record is there once; each key's
//! records are in order; every record not acknowledged came back to the caller with its error.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use streamlake::config::IsolationLevel;
use streamlake::producer::{
    Accepted, CircuitConfig, SendError, SpoolingProducer, TransactionalProducer,
};
use streamlake::spool::SpoolConfig;
use streamlake::{Config, ConsumedRecord, Consumer, ConsumerOptions, Delivery, Received, Record};
use streamlake::{Producer, StartFrom};
use streamlake_test_support::{cluster, unique_topic, Cluster};

const PARTITIONS: i32 = 6;
const KEYS: usize = 24;
/// One record per key every `ROUND`.
const ROUND: Duration = Duration::from_millis(50);

/// The tests of this file, one at a time: they share one cluster and take its brokers down.
static CLUSTER_TESTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The cluster, for this test alone, healed: every broker running and not frozen, the rig's
/// probe topic with its three replicas in sync (an earlier test that failed half-way may have
/// left a broker down).
async fn exclusive() -> (tokio::sync::MutexGuard<'static, ()>, &'static Cluster) {
    let guard = CLUSTER_TESTS.lock().await;
    let cluster = blocking(cluster).await;
    let healed = blocking(move || cluster.heal(Duration::from_secs(90))).await;
    assert!(
        healed.is_ok(),
        "the cluster did not heal within 90 s: {healed:?}\n{}",
        cluster.log_tails(30)
    );
    (guard, cluster)
}

/// Runs blocking rig work (broker signals, metadata look-ups) off the runtime's workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

async fn new_topic(cluster: &'static Cluster, prefix: &str) -> String {
    let topic = unique_topic(prefix);
    let t = topic.clone();
    blocking(move || cluster.create_topic(&t, PARTITIONS)).await;
    topic
}

/// Waits until every partition of `topic` has its three replicas in sync again.
async fn assert_full_isr(cluster: &'static Cluster, topic: &str, within: Duration, summary: &str) {
    let t = topic.to_owned();
    let isr = blocking(move || cluster.wait_for_full_isr(&t, within)).await;
    assert!(
        isr.is_ok(),
        "replicas of {topic} not all in sync within {within:?}: {isr:?}\n{summary}\n{}",
        cluster.log_tails(40)
    );
}

fn text(b: &Option<impl AsRef<[u8]>>) -> String {
    String::from_utf8(b.as_ref().unwrap().as_ref().to_vec()).unwrap()
}

/// `(key, seq)` from a value `key:seq`.
fn parse(value: &str) -> (usize, usize) {
    let (k, s) = value.split_once(':').unwrap();
    (k.parse().unwrap(), s.parse().unwrap())
}

fn record(topic: &str, k: usize, seq: usize) -> Record {
    Record::new(topic, format!("{k}:{seq}")).key(format!("k{k}"))
}

/// Every record of `topic`: read until `n` have arrived, then for 5 s more, so that records
/// beyond the `n` expected (duplicates, records reported failed but written) show up too.
/// crabka-broker answers a fetch that finds nothing new with a null record set, which
/// librdkafka never reports as the end of a partition, so the read cannot stop at the end.
async fn read_all(bootstrap: &str, topic: &str, n: usize) -> Vec<ConsumedRecord> {
    read_at(bootstrap, topic, n, IsolationLevel::ReadUncommitted, 120).await
}

/// [`read_all`] at `isolation`, giving up on the `n` after `patience_s` seconds.
async fn read_at(
    bootstrap: &str,
    topic: &str,
    n: usize,
    isolation: IsolationLevel,
    patience_s: u64,
) -> Vec<ConsumedRecord> {
    let mut config = Config::with_bootstrap(bootstrap);
    config.consumer.isolation_level = isolation;
    let consumer = Consumer::new(&config, ConsumerOptions::default()).unwrap();
    consumer.assign(topic, None, StartFrom::Beginning).unwrap();
    let mut out = Vec::new();
    let mut deadline = tokio::time::Instant::now() + Duration::from_secs(patience_s);
    loop {
        if out.len() >= n {
            deadline = deadline.min(tokio::time::Instant::now() + Duration::from_secs(5));
        }
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Ok(Ok(Received::Record(r))) => out.push(r),
            Ok(Ok(Received::End)) => {}
            Ok(Err(e)) => panic!("{e}"),
            Err(_) => break,
        }
    }
    out
}

/// `(key, seq)`.
type Id = (usize, usize);

/// How each record sent ended.
#[derive(Default)]
struct Ledger {
    /// Records given to a producer.
    sent: usize,
    /// Acknowledged, with where.
    acked: HashMap<Id, Delivery>,
    /// Spooled (by a [`SpoolingProducer`]), to be replayed.
    spooled: BTreeSet<Id>,
    /// Handed back with an error, by error kind (`refused: …` when refused before it was
    /// accepted).
    failed: BTreeMap<Id, String>,
    /// Producers' clients recreated after a fatal error, and the records they sent again
    /// (those in flight at the fatal error: at least once).
    recreated: u64,
    resent: u64,
}

impl Ledger {
    fn settle(&mut self, id: Id, outcome: Result<Delivery, SendError>) {
        match outcome {
            Ok(d) => {
                self.acked.insert(id, d);
            }
            Err(e) => {
                self.failed.insert(id, e.error.kind().to_owned());
            }
        }
    }

    fn failed_by_kind(&self) -> BTreeMap<&str, usize> {
        let mut out = BTreeMap::new();
        for kind in self.failed.values() {
            *out.entry(kind.as_str()).or_default() += 1;
        }
        out
    }
}

/// A first round (seq 0) sent one record at a time: where each key goes.
async fn first_round(producer: &Producer, topic: &str, ledger: &mut Ledger) -> HashMap<usize, i32> {
    let mut partition_of = HashMap::new();
    for k in 0..KEYS {
        let d = producer.send(record(topic, k, 0)).await.unwrap();
        partition_of.insert(k, d.partition);
        ledger.sent += 1;
        ledger.acked.insert((k, 0), d);
    }
    partition_of
}

/// A keyed stream in the background: one record per key every [`ROUND`], seq from 1, each
/// record enqueued after the one before it (so each key's records keep their order in the
/// client), until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    rounds: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<(Ledger, Producer)>,
}

impl Load {
    fn start(producer: Producer, topic: String, mut ledger: Ledger) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let rounds = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn({
            let (stop, rounds) = (stop.clone(), rounds.clone());
            async move {
                let started = Instant::now();
                let mut pending = Vec::new();
                let mut seq = 0;
                while !stop.load(Ordering::SeqCst) {
                    seq += 1;
                    for k in 0..KEYS {
                        ledger.sent += 1;
                        match producer.enqueue(record(&topic, k, seq), None).await {
                            Ok(f) => pending.push(((k, seq), f)),
                            Err(e) => {
                                ledger
                                    .failed
                                    .insert((k, seq), format!("refused: {}", e.error.kind()));
                            }
                        }
                    }
                    rounds.store(seq, Ordering::SeqCst);
                    tokio::time::sleep_until((started + ROUND * seq as u32).into()).await;
                }
                let (ids, futures): (Vec<_>, Vec<_>) = pending.into_iter().unzip();
                for (id, o) in ids
                    .into_iter()
                    .zip(futures::future::join_all(futures).await)
                {
                    ledger.settle(id, o);
                }
                (ledger, producer)
            }
        });
        Load { stop, rounds, task }
    }

    /// Rounds sent so far.
    fn rounds(&self) -> usize {
        self.rounds.load(Ordering::SeqCst)
    }

    /// Stops the stream, waits for every outcome and closes the producer.
    async fn finish(self) -> Ledger {
        self.stop.store(true, Ordering::SeqCst);
        let (mut ledger, producer) = self.task.await.unwrap();
        ledger.recreated += producer.counters().recreated();
        ledger.resent += producer.counters().resent();
        let report = blocking(move || producer.close(Duration::from_secs(30))).await;
        assert_eq!(
            report.accepted,
            report.delivered + report.failed,
            "{report:?}"
        );
        ledger
    }
}

/// What reading the topic back found.
struct Checked {
    summary: String,
}

/// Reads `topic` back and checks it against `ledger`: every record ended once (acknowledged,
/// spooled or failed); every acknowledged record is in the topic once at its acknowledged
/// offset; every spooled one once; no record nobody sent; each key in order. `context` leads
/// the summary printed and carried by every failure message.
async fn check(cluster: &'static Cluster, topic: &str, ledger: &Ledger, context: &str) -> Checked {
    let outcomes = ledger.acked.len() + ledger.spooled.len() + ledger.failed.len();
    assert_eq!(outcomes, ledger.sent, "one outcome per record: {context}");
    let records = read_all(
        &cluster.bootstrap,
        topic,
        ledger.acked.len() + ledger.spooled.len(),
    )
    .await;
    let mut seen: HashMap<Id, (i32, i64)> = HashMap::new();
    let mut duplicates = Vec::new();
    let mut by_key: BTreeMap<usize, Vec<(i64, usize)>> = BTreeMap::new();
    for r in &records {
        let (k, seq) = parse(&text(&r.value));
        assert_eq!(text(&r.key), format!("k{k}"));
        if seen.insert((k, seq), (r.partition, r.offset)).is_some() {
            duplicates.push((k, seq));
        }
        by_key.entry(k).or_default().push((r.offset, seq));
    }
    let missing: Vec<Id> = ledger
        .acked
        .keys()
        .chain(ledger.spooled.iter())
        .filter(|id| !seen.contains_key(id))
        .copied()
        .collect();
    let misplaced: Vec<Id> = ledger
        .acked
        .iter()
        .filter(|(id, d)| {
            seen.get(id)
                .is_some_and(|&(p, o)| (p, o) != (d.partition, d.offset))
        })
        .map(|(id, _)| *id)
        .collect();
    let unknown: Vec<Id> = seen
        .keys()
        .filter(|id| {
            !ledger.acked.contains_key(id)
                && !ledger.spooled.contains(id)
                && !ledger.failed.contains_key(id)
        })
        .copied()
        .collect();
    let failed_but_written = ledger
        .failed
        .keys()
        .filter(|id| seen.contains_key(id))
        .count();
    let mut out_of_order = Vec::new();
    for (k, mut v) in by_key {
        v.sort_unstable();
        if v.windows(2).any(|w| w[0].1 >= w[1].1) {
            out_of_order.push(k);
        }
    }
    let summary = format!(
        "{context}; sent {}: {} acknowledged, {} spooled, {} failed {:?} ({failed_but_written} \
         of them written anyway); read {}; missing {}, duplicated {}, at another offset {}, \
         never sent {}, keys out of order {out_of_order:?}; clients recreated after a fatal \
         error {} ({} records sent again)",
        ledger.sent,
        ledger.acked.len(),
        ledger.spooled.len(),
        ledger.failed.len(),
        ledger.failed_by_kind(),
        records.len(),
        missing.len(),
        duplicates.len(),
        misplaced.len(),
        unknown.len(),
        ledger.recreated,
        ledger.resent,
    );
    eprintln!("{summary}");
    let logs = || cluster.log_tails(40);
    assert!(
        missing.is_empty(),
        "acknowledged or spooled records missing (first {:?}): {summary}\n{}",
        &missing[..missing.len().min(10)],
        logs()
    );
    assert!(
        duplicates.is_empty(),
        "records written twice (first {:?}): {summary}",
        &duplicates[..duplicates.len().min(10)]
    );
    let misplaced_detail: Vec<_> = misplaced
        .iter()
        .take(10)
        .map(|id| {
            let d = &ledger.acked[id];
            (id, (d.partition, d.offset), seen[id])
        })
        .collect();
    assert!(
        misplaced.is_empty(),
        "records at another offset than acknowledged ((key, seq), acknowledged (partition, \
         offset), read at; first 10 {misplaced_detail:?}): {summary}"
    );
    assert!(unknown.is_empty(), "records nobody sent: {summary}");
    assert!(out_of_order.is_empty(), "keys out of order: {summary}");
    Checked { summary }
}

/// The leader of the partition with the most keys among those the controller does not lead
/// (a controller leader's death is another story: see the README), and that partition.
async fn busy_leader(
    cluster: &'static Cluster,
    topic: &str,
    partition_of: &HashMap<usize, i32>,
) -> (i32, i32, usize, i32) {
    let t = topic.to_owned();
    let (controller, parts) =
        blocking(move || (cluster.controller(), cluster.partitions(&t).unwrap())).await;
    let keys_on = |p: i32| partition_of.values().filter(|&&q| q == p).count();
    let busy = (0..PARTITIONS)
        .filter(|&p| parts[p as usize].leader != controller)
        .max_by_key(|&p| keys_on(p))
        .unwrap();
    assert!(
        keys_on(busy) > 0,
        "no key on a partition the controller does not lead"
    );
    (parts[busy as usize].leader, busy, keys_on(busy), controller)
}

/// A keyed stream (StreamLake's defaults: idempotent, acks=all) into a topic with six
/// partitions and three replicas, while the leader of a busy partition is killed with SIGKILL
/// and, later, started again on its data: every acknowledged record is in the topic once, at
/// the offset it was acknowledged with, each key's records are in order, every other record
/// came back with its error, and the partition's replicas are all in sync again at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyed_stream_keeps_every_acknowledged_record_across_a_killed_leader() {
    let (_exclusive, cluster) = exclusive().await;
    let topic = new_topic(cluster, "failover").await;
    let producer = Producer::new(&Config::with_bootstrap(&cluster.bootstrap)).unwrap();
    let mut ledger = Ledger::default();
    let partition_of = first_round(&producer, &topic, &mut ledger).await;
    let (victim, busy, keys_on_busy, controller) =
        busy_leader(cluster, &topic, &partition_of).await;

    // The stream: one record per key every 50 ms. The victim is killed after 10 s, started
    // again once the partition has a new leader, and the stream goes on 10 s more.
    let load = Load::start(producer, topic.clone(), ledger);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let kill_at = load.rounds();
    blocking(move || cluster.kill(victim)).await;
    let killed = Instant::now();
    let failover = {
        let topic = topic.clone();
        blocking(move || {
            while killed.elapsed() < Duration::from_secs(60) {
                if let Ok(parts) = cluster.partitions(&topic) {
                    let l = parts[busy as usize].leader;
                    if l >= 1 && l != victim {
                        return Some((l, killed.elapsed()));
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            None
        })
        .await
    };
    blocking(move || cluster.start(victim)).await;
    let restarted_at = load.rounds();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let ledger = load.finish().await;

    let context = format!(
        "broker {victim} (leader of partition {busy}, {keys_on_busy} of {KEYS} keys; controller \
         {controller}) killed at round {kill_at}, started at round {restarted_at}; new leader: \
         {failover:?}"
    );
    assert_full_isr(cluster, &topic, Duration::from_secs(60), &context).await;
    let checked = check(cluster, &topic, &ledger, &context).await;
    assert!(
        failover.is_some(),
        "partition {busy} got no new leader within 60 s of its leader's death: {}\n{}",
        checked.summary,
        cluster.log_tails(40)
    );
}

/// A rolling restart under a steady keyed stream: each broker in turn is stopped cleanly
/// (SIGINT), started again on its data, and the next one waits until every replica is in sync.
/// The controller leader goes last (the order is chosen from the controller the brokers follow
/// before each step): crabka 0.3.0 needs about 30 s to replace a controller leader, and a
/// rolling restart that starts with the others has the same outcome with less waiting in
/// between. Every acknowledged record is in the topic once at its offset, each key in order,
/// every other record came back with its error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "crabka 0.3.0 keeps idempotent producers' sequence state only in the memory of the \
            leader that took the writes (not replicated, not rebuilt from the log), so a batch \
            the old leader wrote and replicated before its clean stop, retried by librdkafka to \
            the new leader, is appended again: 3-4 records written twice at a stop in 2 of 3 runs \
            (StreamLake recreated no client and resent nothing)"]
async fn a_rolling_restart_keeps_every_acknowledged_record_in_order() {
    let (_exclusive, cluster) = exclusive().await;
    let topic = new_topic(cluster, "rolling").await;
    let producer = Producer::new(&Config::with_bootstrap(&cluster.bootstrap)).unwrap();
    let mut ledger = Ledger::default();
    first_round(&producer, &topic, &mut ledger).await;
    let load = Load::start(producer, topic.clone(), ledger);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;

    let mut steps = Vec::new();
    let mut left: Vec<i32> = vec![1, 2, 3];
    while !left.is_empty() {
        let controller = blocking(move || cluster.controller()).await;
        let n = left
            .iter()
            .copied()
            .find(|&n| n != controller)
            .unwrap_or(left[0]);
        left.retain(|&m| m != n);
        let at = started.elapsed();
        let round = load.rounds();
        blocking(move || cluster.stop(n)).await;
        let stopped = started.elapsed();
        blocking(move || cluster.start(n)).await;
        let back = started.elapsed();
        let t = topic.clone();
        let isr = blocking(move || cluster.wait_for_full_isr(&t, Duration::from_secs(60))).await;
        steps.push(format!(
            "broker {n} (controller {controller}) stopped at {at:.1?} (round {round}, down \
             {:.1?}), listening at {back:.1?}, in sync at {:.1?}",
            stopped - at,
            started.elapsed()
        ));
        assert!(
            isr.is_ok(),
            "replicas not all in sync 60 s after broker {n} came back: {isr:?}\n{steps:?}\n{}",
            cluster.log_tails(40)
        );
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ledger = load.finish().await;
    let context = format!("rolling restart: {}", steps.join("; "));
    check(cluster, &topic, &ledger, &context).await;
    assert_full_isr(cluster, &topic, Duration::from_secs(30), &context).await;
}

/// A partition leader frozen (SIGSTOP: its process and connections stay, it answers nothing)
/// for 8 s, longer than the producer's 3 s request timeout, then resumed, under a keyed
/// stream: requests to it time out and are retried (idempotence keeps the retries from
/// duplicating or reordering), and every acknowledged record is in the topic once at its
/// offset, each key in order, every other record came back with its error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "on crabka 0.3.0 records acknowledged (acks=all) around the freeze are reported at \
            other offsets than they are read at (10 records, two runs), and in one run of two 4 \
            acknowledged records of the round the leader was frozen in were missing from the \
            topic (the partition had moved to another broker); not yet known whether crabka \
            (dedup answers with the last batch's offset, leader state not replicated) or the \
            client side is at fault"]
async fn a_frozen_leader_past_the_request_timeout_loses_and_reorders_nothing() {
    let (_exclusive, cluster) = exclusive().await;
    let topic = new_topic(cluster, "frozen").await;
    let mut config = Config::with_bootstrap(&cluster.bootstrap);
    config.producer.request_timeout_ms = 3_000;
    let producer = Producer::new(&config).unwrap();
    let mut ledger = Ledger::default();
    let partition_of = first_round(&producer, &topic, &mut ledger).await;
    let (victim, busy, keys_on_busy, controller) =
        busy_leader(cluster, &topic, &partition_of).await;

    let load = Load::start(producer, topic.clone(), ledger);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let frozen_at = load.rounds();
    blocking(move || cluster.freeze(victim)).await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    blocking(move || cluster.resume(victim)).await;
    let resumed_at = load.rounds();
    let t = topic.clone();
    let leader_after = blocking(move || {
        // A metadata look-up right after SIGCONT may still miss the frozen broker's news.
        std::thread::sleep(Duration::from_secs(1));
        cluster.leader(&t, busy)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let ledger = load.finish().await;

    let context = format!(
        "broker {victim} (leader of partition {busy}, {keys_on_busy} of {KEYS} keys; controller \
         {controller}) frozen at round {frozen_at} for 8 s, resumed at round {resumed_at}; \
         partition {busy}'s leader 1 s later: {leader_after}"
    );
    assert_full_isr(cluster, &topic, Duration::from_secs(60), &context).await;
    check(cluster, &topic, &ledger, &context).await;
}

/// Two of three brokers stopped, on a topic with `min.insync.replicas` 2: no record can be
/// acknowledged. A plain producer (5 s delivery timeout) gets every record back with its
/// error and none acknowledged; a spooling producer on the same cluster spools what it cannot
/// deliver and, once the brokers are back, replays the spool in order, with new records
/// queued behind it: the topic holds every spooled and every acknowledged record once, each
/// key in order, and nothing acknowledged while the brokers were down.
///
/// The brokers stopped are the two that do not lead the controller quorum: the one left keeps
/// leading it, so it still answers metadata (a quorum of one voter cannot change anything,
/// so no partition gets a new leader or a smaller ISR while the others are down).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "records the spooling producer purged after its 5 s delivery budget had already been \
            appended by the one broker left (crabka keeps the ISR at three while the quorum is \
            lost, so it appends and waits instead of refusing with NOT_ENOUGH_REPLICAS); they \
            are replicated once the brokers return and replayed from the spool too: 10 records \
            written twice (the spool's documented at-least-once replay), so 'every record once' \
            does not hold"]
async fn with_two_brokers_down_nothing_is_acknowledged_and_the_spool_drains_in_order() {
    let (_exclusive, cluster) = exclusive().await;
    let topic = new_topic(cluster, "twodown").await;
    let controller = blocking(move || cluster.controller()).await;
    assert!(controller >= 1, "no controller: {controller}");
    let down: Vec<i32> = (1..=3).filter(|&n| n != controller).collect();
    spool_through_an_outage(cluster, &topic, down, None).await;
}

/// One broker of three down with `min.insync.replicas` 3: once the ISR has shrunk to the two
/// brokers left, the leaders refuse acks=all writes (NOT_ENOUGH_REPLICAS) and append nothing.
/// The same checks as with two brokers down: nothing acknowledged, the plain producer's
/// records all reported failed, the spooling producer's spooled and drained in order once the
/// broker is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "on crabka 0.3.0, with one broker stopped and every partition's ISR shown as two in the \
            metadata, the plain producer's 120 records all came back failed (timeout, not \
            NOT_ENOUGH_REPLICAS), yet 90 of them were in the topic once the broker returned: \
            the leaders appended them instead of refusing; and 18 spooled records were then \
            written twice"]
async fn under_min_insync_replicas_nothing_is_acknowledged_and_the_spool_drains_in_order() {
    let (_exclusive, cluster) = exclusive().await;
    let topic = unique_topic("minisr");
    let t = topic.clone();
    blocking(move || cluster.create_topic_with(&t, PARTITIONS, 3, &[("min.insync.replicas", "3")]))
        .await;
    let controller = blocking(move || cluster.controller()).await;
    assert!(controller >= 1, "no controller: {controller}");
    let down = vec![(1..=3).find(|&n| n != controller).unwrap()];
    spool_through_an_outage(cluster, &topic, down, Some(2)).await;
}

/// Stops the brokers `down` (cleanly), waits until every partition of `topic` has `isr` replicas
/// in sync (when given), then writes through the outage: five rounds with a plain producer
/// (every record must come back failed), ten with a spooling producer (nothing may be
/// acknowledged; records go to the spool), more while the brokers start again and until the
/// spool has drained, and five after (all acknowledged at once). The topic must then hold every
/// spooled and acknowledged record once, each key in order.
async fn spool_through_an_outage(
    cluster: &'static Cluster,
    topic: &str,
    down: Vec<i32>,
    isr: Option<usize>,
) {
    let topic = topic.to_owned();
    let mut config = Config::with_bootstrap(&cluster.bootstrap);
    config.producer.delivery_timeout_ms = 5_000;
    config.producer.request_timeout_ms = 3_000;
    // No record before the outage: crabka 0.3.0 hands out producer ids from a counter of each
    // broker, so a producer that got its id from another broker than the later ones could
    // share an id with them on this topic.
    let mut ledger = Ledger::default();
    let controller = blocking(move || cluster.controller()).await;
    let started = Instant::now();
    {
        let down = down.clone();
        blocking(move || down.iter().for_each(|&n| cluster.stop(n))).await;
    }
    if let Some(isr) = isr {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let t = topic.clone();
            let parts = blocking(move || cluster.partitions(&t)).await;
            if parts
                .as_ref()
                .is_ok_and(|ps| ps.iter().all(|p| p.isr.len() == isr && p.leader >= 0))
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the ISR of {topic} did not shrink to {isr} within 90 s of stopping {down:?}: \
                 {parts:?}\n{}",
                cluster.log_tails(30)
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let stopped_in = started.elapsed();
    let t = topic.clone();
    let during = blocking(move || (cluster.controller(), cluster.partitions(&t))).await;

    // A plain producer: every record comes back with its error, none is acknowledged.
    let mut seq = 1;
    let plain_started = Instant::now();
    let plain_details: BTreeMap<String, usize> = {
        let producer = Producer::new(&config).unwrap();
        let mut pending = Vec::new();
        for _ in 0..5 {
            for k in 0..KEYS {
                ledger.sent += 1;
                match producer.enqueue(record(&topic, k, seq), None).await {
                    Ok(f) => pending.push(((k, seq), f)),
                    Err(e) => {
                        ledger
                            .failed
                            .insert((k, seq), format!("refused: {}", e.error.kind()));
                    }
                }
            }
            seq += 1;
        }
        let mut details = BTreeMap::new();
        let (ids, futures): (Vec<_>, Vec<_>) = pending.into_iter().unzip();
        let mut acked_while_down = Vec::new();
        for (id, o) in ids
            .into_iter()
            .zip(futures::future::join_all(futures).await)
        {
            match &o {
                Ok(d) => acked_while_down.push((id, d.partition, d.offset)),
                Err(e) => *details.entry(e.error.to_string()).or_default() += 1,
            }
            ledger.settle(id, o);
        }
        blocking(move || producer.close(Duration::from_secs(10))).await;
        assert!(
            acked_while_down.is_empty(),
            "acknowledged while brokers {down:?} were down: {acked_while_down:?}"
        );
        details
    };
    let plain_took = plain_started.elapsed();

    // A spooling producer: what it cannot deliver goes to the spool.
    let spool_dir = tempfile::tempdir().unwrap();
    let (spooling, _) = SpoolingProducer::new(
        &config,
        &SpoolConfig::with_dir(spool_dir.path().join("spool")),
        CircuitConfig {
            failure_threshold: 5,
            open_ms: 1_000,
        },
    )
    .unwrap();
    let round = |spooling, seq| spooling_round(spooling, &topic, seq);
    let settle = |ledger: &mut Ledger, seq: usize, outcomes: Vec<Result<Accepted, SendError>>| {
        let mut acked = 0;
        for (k, o) in outcomes.into_iter().enumerate() {
            ledger.sent += 1;
            match o {
                Ok(Accepted::Delivered(d)) => {
                    acked += 1;
                    ledger.acked.insert((k, seq), d);
                }
                Ok(Accepted::Spooled) => {
                    ledger.spooled.insert((k, seq));
                }
                Err(e) => {
                    ledger.failed.insert((k, seq), e.error.kind().to_owned());
                }
            }
        }
        acked
    };
    let spool_started = Instant::now();
    let mut acked_while_down = 0;
    for _ in 0..10 {
        let outcomes = round(&spooling, seq).await;
        acked_while_down += settle(&mut ledger, seq, outcomes);
        seq += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let spooled_while_down = ledger.spooled.len();
    let spool_took = spool_started.elapsed();

    // The brokers come back while the stream goes on (new records queue behind the spool).
    let restart = {
        let down = down.clone();
        tokio::task::spawn_blocking(move || down.iter().for_each(|&n| cluster.start(n)))
    };
    let restart_began = started.elapsed();
    let mut rounds_during_restart = 0;
    while !restart.is_finished() {
        let outcomes = round(&spooling, seq).await;
        settle(&mut ledger, seq, outcomes);
        seq += 1;
        rounds_during_restart += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    restart.await.unwrap();
    let back = started.elapsed();
    let drain_deadline = Instant::now() + Duration::from_secs(60);
    while spooling.spooled_pending() > 0 || spooling.draining() {
        assert!(
            Instant::now() < drain_deadline,
            "the spool did not drain within 60 s of the brokers' return: {} pending, {:?}",
            spooling.spooled_pending(),
            spooling.counts()
        );
        let outcomes = round(&spooling, seq).await;
        settle(&mut ledger, seq, outcomes);
        seq += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let drained = started.elapsed();
    // Straight to Kafka again.
    let mut direct_after = 0;
    for _ in 0..5 {
        let outcomes = round(&spooling, seq).await;
        direct_after += settle(&mut ledger, seq, outcomes);
        seq += 1;
    }
    ledger.recreated += spooling.producer().counters().recreated();
    ledger.resent += spooling.producer().counters().resent();
    let report = spooling.close(Duration::from_secs(30)).await;

    let context = format!(
        "brokers {down:?} stopped in {stopped_in:.1?} (controller {controller}; during the \
         outage: controller {:?}, partitions {:?}); plain producer: {} records in {plain_took:.1?}, \
         errors {plain_details:?}; spooling producer: {spooled_while_down} spooled and \
         {acked_while_down} acknowledged in {spool_took:.1?} while down; restart from \
         {restart_began:.1?} to {back:.1?} ({rounds_during_restart} rounds meanwhile), spool \
         drained at {drained:.1?}; {direct_after} of {} acknowledged after; close {report:?}",
        during.0,
        during.1,
        5 * KEYS,
        5 * KEYS,
    );
    assert_eq!(
        acked_while_down, 0,
        "the spooling producer had records acknowledged while brokers {down:?} were down: {context}"
    );
    assert_eq!(
        direct_after,
        5 * KEYS,
        "new records after the drain are not all delivered straight away: {context}"
    );
    assert_eq!(report.left_in_spool, 0, "{context}");
    assert!(spooled_while_down > 0, "nothing was spooled: {context}");
    let checked = check(cluster, &topic, &ledger, &context).await;
    let plain_failed = (1..=5)
        .flat_map(|s| (0..KEYS).map(move |k| (k, s)))
        .filter(|id| ledger.failed.contains_key(id))
        .count();
    assert_eq!(
        plain_failed,
        5 * KEYS,
        "every record of the plain producer came back failed: {}",
        checked.summary
    );
    assert_full_isr(cluster, &topic, Duration::from_secs(60), &checked.summary).await;
}

/// One record per key, sent together, with their outcomes in key order.
async fn spooling_round(
    spooling: &SpoolingProducer,
    topic: &str,
    seq: usize,
) -> Vec<Result<Accepted, SendError>> {
    futures::future::join_all((0..KEYS).map(|k| spooling.send(record(topic, k, seq)))).await
}

/// `n` records `name:i` (keys `k0`-`k5`) sent together in the current transaction.
async fn send_in_transaction(
    p: &TransactionalProducer,
    topic: &str,
    name: &str,
    n: usize,
) -> Vec<Result<Delivery, SendError>> {
    futures::future::join_all(
        (0..n)
            .map(|i| p.send(Record::new(topic, format!("{name}:{i}")).key(format!("k{}", i % 6)))),
    )
    .await
}

/// A transaction in flight (its records acknowledged, not yet committed) when the broker that
/// coordinates its transactional id is killed with SIGKILL: the commit either succeeds or
/// reports an error, and a `read_committed` reader sees whole transactions only: the one
/// committed before, all or none of the one in flight (all if its commit succeeded), and one
/// committed by a new producer with the same id after the coordinator moved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "crabka 0.3.0 cannot run transactions on a multi-broker cluster: each broker hands out \
            producer ids from its own counter (from 1000, again after a restart), and a \
            partition leader accepts a transactional batch only if its own coordinator knows the \
            producer id, so the first transaction fails with InvalidProducerEpoch (fatal) before \
            any broker is touched; and a new coordinator does not load the transaction state it \
            takes over (it is read only when a broker starts)"]
async fn a_transaction_in_flight_when_its_coordinator_dies_is_visible_whole_or_not_at_all() {
    let (_exclusive, cluster) = exclusive().await;
    let topic = new_topic(cluster, "txn-coordinator").await;
    let config_for = |tid: &str| {
        let mut c = Config::with_bootstrap(&cluster.bootstrap);
        c.producer.transactional_id = Some(tid.to_owned());
        c
    };
    // `__transaction_state` exists once a transactional producer has looked for its
    // coordinator; then pick an id whose coordinator is not the controller leader (its death
    // takes crabka about 30 s to get over: see the README).
    let base = unique_topic("txn");
    {
        let c = config_for(&format!("{base}-bootstrap"));
        blocking(move || drop(TransactionalProducer::new(&c).unwrap())).await;
    }
    let (tid, coordinator, controller) = blocking(move || {
        let controller = cluster.controller();
        (0..200)
            .map(|i| format!("{base}-{i}"))
            .find_map(|tid| {
                let c = cluster.transaction_coordinator(&tid);
                (c >= 1 && c != controller).then_some((tid, c, controller))
            })
            .expect("a transactional id coordinated by a broker other than the controller")
    })
    .await;

    let producer = {
        let c = config_for(&tid);
        blocking(move || TransactionalProducer::new(&c).unwrap()).await
    };
    // T1, committed before anything happens.
    producer.begin().unwrap();
    for r in send_in_transaction(&producer, &topic, "t1", 30).await {
        r.unwrap();
    }
    let producer = blocking(move || {
        producer.commit().unwrap();
        producer
    })
    .await;
    // T2: its records acknowledged, then its coordinator killed, then the commit.
    producer.begin().unwrap();
    let t2_acked = send_in_transaction(&producer, &topic, "t2", 30)
        .await
        .iter()
        .filter(|r| r.is_ok())
        .count();
    blocking(move || cluster.kill(coordinator)).await;
    let killed = Instant::now();
    let (producer, commit) = blocking(move || {
        let r = producer.commit();
        (producer, r)
    })
    .await;
    let commit_took = killed.elapsed();
    let abort = match &commit {
        Ok(()) => None,
        Err(_) => Some(blocking(move || producer.abort().map(|()| producer)).await),
    };
    let abort_text = abort
        .as_ref()
        .map(|a| a.as_ref().map(|_| ()).map_err(|e| e.to_string()));
    drop(abort);
    let new_coordinator = {
        let tid = tid.clone();
        blocking(move || cluster.transaction_coordinator(&tid)).await
    };

    // T3, by a new producer with the same id (which fences the old one and finishes whatever
    // it left open), after the coordinator moved.
    let t3: Result<(), String> = async {
        let c = config_for(&tid);
        let p = blocking(move || TransactionalProducer::new(&c))
            .await
            .map_err(|e| format!("init: {e}"))?;
        p.begin().map_err(|e| format!("begin: {e}"))?;
        for r in send_in_transaction(&p, &topic, "t3", 30).await {
            r.map_err(|e| format!("send: {}", e.error))?;
        }
        blocking(move || p.commit())
            .await
            .map_err(|e| format!("commit: {e}"))
    }
    .await;
    blocking(move || cluster.start(coordinator)).await;

    let committed = read_at(
        &cluster.bootstrap,
        &topic,
        30 + if commit.is_ok() { 30 } else { 0 } + if t3.is_ok() { 30 } else { 0 },
        IsolationLevel::ReadCommitted,
        20,
    )
    .await;
    let everything = read_at(
        &cluster.bootstrap,
        &topic,
        90,
        IsolationLevel::ReadUncommitted,
        20,
    )
    .await;
    let count = |records: &[ConsumedRecord], name: &str| {
        records
            .iter()
            .filter(|r| text(&r.value).starts_with(&format!("{name}:")))
            .count()
    };
    let seen: BTreeMap<&str, (usize, usize)> = ["t1", "t2", "t3"]
        .into_iter()
        .map(|t| (t, (count(&committed, t), count(&everything, t))))
        .collect();
    let summary = format!(
        "transactional id {tid}: coordinator {coordinator} (controller {controller}) killed \
         with T2's {t2_acked} of 30 records acknowledged; commit after {commit_took:.1?}: \
         {commit:?}; abort: {abort_text:?}; coordinator after: {new_coordinator}; T3 by a new \
         producer: {t3:?}; records (read_committed, read_uncommitted): {seen:?}"
    );
    eprintln!("{summary}");
    assert_full_isr(cluster, &topic, Duration::from_secs(60), &summary).await;
    for (t, (visible, _)) in &seen {
        assert!(
            *visible == 0 || *visible == 30,
            "transaction {t} partly visible to a read_committed reader: {summary}"
        );
    }
    assert_eq!(seen["t1"].0, 30, "T1 committed before: {summary}");
    if commit.is_ok() {
        assert_eq!(seen["t2"].0, 30, "T2's commit succeeded: {summary}");
    }
    assert!(t3.is_ok(), "T3 failed: {summary}");
    assert_eq!(seen["t3"].0, 30, "T3 committed: {summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_names_the_broker_down_and_the_partitions_it_leaves_under_replicated() {
    use streamlake::health::{check, HealthOptions};
    let (_exclusive, cluster) = exclusive().await;
    let topic = new_topic(cluster, "health").await;
    let config = Config::with_bootstrap(&cluster.bootstrap);
    let options = HealthOptions {
        topics: vec![topic.clone()],
        timeout: Duration::from_secs(5),
        ..Default::default()
    };
    let report = check(&config, &options).await;
    assert!(report.healthy, "{report:#?}");
    assert_eq!(report.cluster.brokers_down, Vec::<i32>::new());
    assert!(report.cluster.controller.is_some(), "{report:#?}");
    assert!(report.cluster.partitions >= PARTITIONS as usize);

    // Broker down: not the controller, which crabka is slow to replace.
    let controller = blocking(move || cluster.controller()).await;
    let victim = (1..=3).find(|n| *n != controller).unwrap();
    blocking(move || cluster.kill(victim)).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let report = loop {
        let r = check(&config, &options).await;
        let shrunk = r
            .cluster
            .under_replicated
            .iter()
            .filter(|p| p.topic == topic)
            .count();
        // Until the controller has moved their leadership, the partitions the victim led are
        // offline (their leader is down); then every partition has a live leader again.
        if !r.healthy
            && r.cluster.brokers_down == [victim]
            && shrunk == PARTITIONS as usize
            && r.cluster.offline.is_empty()
        {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "health never named broker {victim}: {r:#?}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    for p in report
        .cluster
        .under_replicated
        .iter()
        .filter(|p| p.topic == topic)
    {
        assert!(
            p.replicas.contains(&victim) && !p.isr.contains(&victim),
            "{p:?}"
        );
        assert_eq!(p.min_insync_replicas, Some(2), "{p:?}");
    }
    // Two replicas of three are still in sync: at min.insync.replicas, not under it.
    assert!(report.cluster.under_min_isr.is_empty(), "{report:#?}");
    assert!(
        report
            .brokers
            .iter()
            .any(|b| b.id == victim && !b.reachable)
            || !report.brokers.iter().any(|b| b.id == victim)
    );

    blocking(move || cluster.start(victim)).await;
    assert_full_isr(
        cluster,
        &topic,
        Duration::from_secs(90),
        "after the restart",
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = check(&config, &options).await;
        if r.healthy {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not healthy after the restart: {r:#?}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// One member of a consumer group: reads until told to stop, acknowledging each record and
/// committing every 500 ms. Each read is noted with whether its offset had already been
/// committed by any member (`committed`, shared): a record read again below that offset was
/// re-delivered after its commit, which must never happen.
fn group_member(
    config: Config,
    topic: String,
    stop: Arc<AtomicBool>,
    committed: Arc<std::sync::Mutex<HashMap<i32, i64>>>,
) -> tokio::task::JoinHandle<Vec<(i32, i64, String, bool)>> {
    tokio::spawn(async move {
        let consumer = Consumer::new(&config, ConsumerOptions::default()).unwrap();
        consumer.subscribe(&[&topic]).unwrap();
        let mut read = Vec::new();
        let mut positions: HashMap<i32, i64> = HashMap::new();
        let mut last_commit = Instant::now();
        while !stop.load(Ordering::SeqCst) {
            if let Ok(Ok(Received::Record(r))) =
                tokio::time::timeout(Duration::from_millis(200), consumer.recv()).await
            {
                let below_commit = committed
                    .lock()
                    .unwrap()
                    .get(&r.partition)
                    .is_some_and(|c| r.offset < *c);
                read.push((r.partition, r.offset, text(&r.value), below_commit));
                positions.insert(r.partition, r.offset + 1);
                consumer.ack(&r).unwrap();
            }
            if last_commit.elapsed() > Duration::from_millis(500) {
                last_commit = Instant::now();
                if consumer.commit().is_ok() {
                    let mut c = committed.lock().unwrap();
                    for (p, o) in positions.drain() {
                        let e = c.entry(p).or_insert(o);
                        *e = (*e).max(o);
                    }
                }
            }
        }
        let _ = consumer.commit();
        blocking(move || consumer.close()).await.unwrap();
        read
    })
}

/// A consumer group of two members reading a keyed stream while the broker leading a busy
/// partition is killed and later started again: every acknowledged record is read by a member
/// (no gap), and no record is read again below an offset a member had already committed for
/// its partition (re-delivery only of what was not committed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "crabka 0.3.0 answers FindCoordinator for a group with whichever broker was asked, so \
            members asking different brokers form separate groups: in a run, with 10,104 records \
            acknowledged, one member read 10,104 and the other 12,624 (each read every \
            partition), 2,527 of them below offsets already committed"]
async fn a_consumer_group_of_two_reads_across_a_killed_broker_with_no_gap() {
    let (_exclusive, cluster) = exclusive().await;
    let topic = new_topic(cluster, "group").await;
    let mut config = Config::with_bootstrap(&cluster.bootstrap);
    config.consumer.group_id = Some(unique_topic("group-members"));
    config.consumer.enable_auto_commit = false;
    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(std::sync::Mutex::new(HashMap::new()));
    let members: Vec<_> = (0..2)
        .map(|_| {
            group_member(
                config.clone(),
                topic.clone(),
                stop.clone(),
                committed.clone(),
            )
        })
        .collect();
    let producer = Producer::new(&Config::with_bootstrap(&cluster.bootstrap)).unwrap();
    let mut ledger = Ledger::default();
    let partition_of = first_round(&producer, &topic, &mut ledger).await;
    let load = Load::start(producer, topic.clone(), ledger);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (victim, busy, _, _) = busy_leader(cluster, &topic, &partition_of).await;
    blocking(move || cluster.kill(victim)).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    blocking(move || cluster.start(victim)).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rounds = load.rounds();
    let ledger = load.finish().await;
    // Let the members read what was written last, then stop them.
    tokio::time::sleep(Duration::from_secs(10)).await;
    stop.store(true, Ordering::SeqCst);
    let mut reads = Vec::new();
    for m in members {
        reads.push(m.await.unwrap());
    }
    let context = format!(
        "broker {victim} (leader of busy partition {busy}) killed for 10 s; {rounds} rounds; \
         {} acknowledged, {} failed {:?}; member reads {:?}",
        ledger.acked.len(),
        ledger.failed.len(),
        ledger.failed_by_kind(),
        reads.iter().map(Vec::len).collect::<Vec<_>>()
    );
    let seen: BTreeSet<(i32, i64)> = reads.iter().flatten().map(|(p, o, ..)| (*p, *o)).collect();
    let missing: Vec<&Id> = ledger
        .acked
        .iter()
        .filter(|(_, d)| !seen.contains(&(d.partition, d.offset)))
        .map(|(id, _)| id)
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged records were read by no member (first {:?}): {context}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    let redelivered: Vec<(i32, i64)> = reads
        .iter()
        .flatten()
        .filter(|(.., below_commit)| *below_commit)
        .map(|(p, o, ..)| (*p, *o))
        .collect();
    assert!(
        redelivered.is_empty(),
        "{} records were read again below a committed offset (first {:?}): {context}",
        redelivered.len(),
        &redelivered[..redelivered.len().min(10)]
    );
    assert_full_isr(cluster, &topic, Duration::from_secs(60), &context).await;
}

/// The gateway under load while the leader of a busy partition is killed: every event answered
/// `accepted` (in a 2xx or a 503) is in the topic once, where its answer said; no event answered
/// `failed` is in the topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_writes_what_it_accepted_and_nothing_it_failed_across_a_killed_leader() {
    use axum::body::Body;
    use axum::http::Request;
    use serde_json::Value;
    use streamlake::gateway::{app, Gateway, GatewayConfig};
    use tower::ServiceExt;

    let (_exclusive, cluster) = exclusive().await;
    let topic = new_topic(cluster, "gw-failover").await;
    let dlq = new_topic(cluster, "gw-failover-dlq").await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.yaml");
    std::fs::write(
        &path,
        format!("datasets:\n  orders:\n    topic: {topic}\n    dlq_topic: {dlq}\n    key: /k\n"),
    )
    .unwrap();
    let gw_config = GatewayConfig::from_file(&path).unwrap();
    let gateway = Arc::new(
        Gateway::new(&gw_config, &Config::with_bootstrap(&cluster.bootstrap))
            .await
            .unwrap(),
    );
    // Where each key lands, from a first request; then the busiest partition not led by the
    // controller.
    async fn post(gateway: Arc<Gateway>, body: String) -> (axum::http::StatusCode, Value) {
        let resp = app(gateway)
            .oneshot(
                Request::post("/v1/datasets/orders/events")
                    .header("content-type", "application/x-ndjson")
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, serde_json::from_slice::<Value>(&bytes).unwrap())
    }
    let batch = |round: usize| -> String {
        (0..KEYS)
            .map(|k| format!("{{\"k\":\"k{k}\",\"seq\":{round}}}\n"))
            .collect()
    };
    let (status, first) = post(Arc::clone(&gateway), batch(0)).await;
    assert!(status.is_success(), "{first}");
    let partition_of: HashMap<usize, i32> = (0..KEYS)
        .map(|k| (k, first["results"][k]["partition"].as_i64().unwrap() as i32))
        .collect();
    let (victim, busy, _, controller) = busy_leader(cluster, &topic, &partition_of).await;

    // Requests of one event per key, one after the other, for 10 s, the kill, and 10 s more
    // once the broker is back.
    let stop = Arc::new(AtomicBool::new(false));
    let answers = {
        let stop = Arc::clone(&stop);
        let gateway = Arc::clone(&gateway);
        tokio::spawn(async move {
            let mut answers = vec![(status, first)];
            let mut round = 1;
            while !stop.load(Ordering::SeqCst) {
                answers.push(post(Arc::clone(&gateway), batch(round)).await);
                round += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            answers
        })
    };
    tokio::time::sleep(Duration::from_secs(10)).await;
    blocking(move || cluster.kill(victim)).await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    blocking(move || cluster.start(victim)).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    stop.store(true, Ordering::SeqCst);
    let answers = answers.await.unwrap();

    let mut accepted: HashMap<(String, u64), (i32, i64)> = HashMap::new();
    let mut failed: BTreeSet<(String, u64)> = BTreeSet::new();
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    for (round, (status, body)) in answers.iter().enumerate() {
        *statuses.entry(status.as_u16()).or_default() += 1;
        for (k, r) in body["results"].as_array().unwrap().iter().enumerate() {
            let id = (format!("k{k}"), round as u64);
            match r["status"].as_str().unwrap() {
                "accepted" => {
                    accepted.insert(
                        id,
                        (
                            r["partition"].as_i64().unwrap() as i32,
                            r["offset"].as_i64().unwrap(),
                        ),
                    );
                }
                "failed" => {
                    failed.insert(id);
                }
                other => panic!("{other}: {r}"),
            }
        }
    }
    let context = format!(
        "broker {victim} (leader of partition {busy}; controller {controller}) killed; answers by status {statuses:?}, {} events accepted, {} failed",
        accepted.len(),
        failed.len()
    );
    assert_full_isr(cluster, &topic, Duration::from_secs(60), &context).await;
    let records = read_all(&cluster.bootstrap, &topic, accepted.len()).await;
    let mut seen: HashMap<(String, u64), Vec<(i32, i64)>> = HashMap::new();
    for r in &records {
        let v: Value = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
        let id = (
            v["k"].as_str().unwrap().to_owned(),
            v["seq"].as_u64().unwrap(),
        );
        seen.entry(id).or_default().push((r.partition, r.offset));
    }
    for (id, at) in &accepted {
        assert_eq!(
            seen.get(id).map(Vec::as_slice),
            Some(&[*at][..]),
            "accepted {id:?}: {context}"
        );
    }
    let written_failed: Vec<_> = failed.iter().filter(|id| seen.contains_key(*id)).collect();
    assert!(
        written_failed.is_empty(),
        "{} event(s) answered failed are in the topic: {written_failed:?}; {context}",
        written_failed.len()
    );
    assert_eq!(records.len(), accepted.len(), "{context}");
    eprintln!("{context}");
}
