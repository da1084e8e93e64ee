//! Failover on a real three-broker replicated cluster: the cluster of `scripts/cluster.sh`
//! (three crabka-broker 0.3.0 processes, a three-voter controller quorum, data on disk), started
//! once for this test binary by the shared test rig.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};
use streamlake::producer::SendError;
use streamlake::{Config, ConsumedRecord, Consumer, ConsumerOptions, Delivery, Received, Record};
use streamlake::{Producer, StartFrom};
use streamlake_test_support::{cluster, unique_topic};

const PARTITIONS: i32 = 6;
const KEYS: usize = 24;
/// One record per key every `ROUND`.
const ROUND: Duration = Duration::from_millis(50);

fn text(b: &Option<impl AsRef<[u8]>>) -> String {
    String::from_utf8(b.as_ref().unwrap().as_ref().to_vec()).unwrap()
}

/// `(key, seq)` from a value `key:seq`.
fn parse(value: &str) -> (usize, usize) {
    let (k, s) = value.split_once(':').unwrap();
    (k.parse().unwrap(), s.parse().unwrap())
}

/// Every record of `topic`: read until `n` have arrived, then for 5 s more, so that records
/// beyond the `n` expected (duplicates, records reported failed but written) show up too.
/// crabka-broker answers a fetch that finds nothing new with a null record set, which
/// librdkafka never reports as the end of a partition, so the read cannot stop at the end.
async fn read_all(bootstrap: &str, topic: &str, n: usize) -> Vec<ConsumedRecord> {
    let consumer = Consumer::new(
        &Config::with_bootstrap(bootstrap),
        ConsumerOptions::default(),
    )
    .unwrap();
    consumer.assign(topic, None, StartFrom::Beginning).unwrap();
    let mut out = Vec::new();
    let mut deadline = tokio::time::Instant::now() + Duration::from_secs(120);
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

/// A keyed stream (StreamLake's defaults: idempotent, acks=all) into a topic with six
/// partitions and three replicas, while the leader of a busy partition is killed with SIGKILL
/// and, later, started again on its data: every acknowledged record is in the topic once, at
/// the offset it was acknowledged with, each key's records are in order, every other record
/// came back with its error, and the partition's replicas are all in sync again at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyed_stream_keeps_every_acknowledged_record_across_a_killed_leader() {
    let cluster = tokio::task::spawn_blocking(cluster).await.unwrap();
    let topic = unique_topic("failover");
    {
        let topic = topic.clone();
        tokio::task::spawn_blocking(move || cluster.create_topic(&topic, PARTITIONS))
            .await
            .unwrap();
    }
    let producer = Producer::new(&Config::with_bootstrap(&cluster.bootstrap)).unwrap();
    let record =
        |k: usize, seq: usize| Record::new(&topic, format!("{k}:{seq}")).key(format!("k{k}"));

    // A first round, to learn where each key goes.
    let mut partition_of = HashMap::new();
    let mut acked: HashMap<(usize, usize), Delivery> = HashMap::new();
    for k in 0..KEYS {
        let d = producer.send(record(k, 0)).await.unwrap();
        partition_of.insert(k, d.partition);
        acked.insert((k, 0), d);
    }
    // The victim: the leader of the partition with the most keys among those not led by the
    // controller (a controller leader's death is another story: see the README).
    let (controller, parts) = tokio::task::spawn_blocking({
        let topic = topic.clone();
        move || (cluster.controller(), cluster.partitions(&topic).unwrap())
    })
    .await
    .unwrap();
    let keys_on = |p: i32| partition_of.values().filter(|&&q| q == p).count();
    let busy = (0..PARTITIONS)
        .filter(|&p| parts[p as usize].leader != controller)
        .max_by_key(|&p| keys_on(p))
        .unwrap();
    let victim = parts[busy as usize].leader;
    let keys_on_busy = keys_on(busy);
    assert!(
        keys_on_busy > 0,
        "no key on a partition the controller does not lead"
    );

    // The stream: one record per key every 50 ms. The victim is killed after 10 s, started
    // again once the partition has a new leader, and the stream goes on 10 s more.
    let kill_at = 200;
    let mut restarted_at = None;
    let started = Instant::now();
    let mut pending = Vec::new();
    let mut refused: Vec<((usize, usize), SendError)> = Vec::new();
    let mut watcher = None;
    let mut failover = None;
    let mut seq = 0;
    while restarted_at.is_none_or(|r| seq < r + 200) {
        seq += 1;
        if seq == kill_at {
            tokio::task::spawn_blocking(move || cluster.kill(victim))
                .await
                .unwrap();
            let t = Instant::now();
            // Watch for the partition's new leader in the background.
            let topic = topic.clone();
            watcher = Some(tokio::task::spawn_blocking(move || {
                let deadline = Instant::now() + Duration::from_secs(60);
                while Instant::now() < deadline {
                    if let Ok(parts) = cluster.partitions(&topic) {
                        let l = parts[busy as usize].leader;
                        if l >= 1 && l != victim {
                            return Some((l, t.elapsed()));
                        }
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                None
            }));
        }
        if restarted_at.is_none() && watcher.as_ref().is_some_and(|w| w.is_finished()) {
            failover = watcher.take().unwrap().await.unwrap();
            tokio::task::spawn_blocking(move || cluster.start(victim))
                .await
                .unwrap();
            restarted_at = Some(seq);
        }
        for k in 0..KEYS {
            match producer.enqueue(record(k, seq), None).await {
                Ok(f) => pending.push(((k, seq), f)),
                Err(e) => refused.push(((k, seq), e)),
            }
        }
        tokio::time::sleep_until((started + ROUND * seq as u32).into()).await;
    }
    let rounds = seq;
    let (keys, futures): (Vec<_>, Vec<_>) = pending.into_iter().unzip();
    let outcomes: Vec<((usize, usize), Result<Delivery, SendError>)> = keys
        .into_iter()
        .zip(futures::future::join_all(futures).await)
        .collect();
    let report = producer.close(Duration::from_secs(30));

    // Every record ended once: acknowledged with its offset, or handed back with its error.
    let sent = KEYS * rounds + KEYS;
    assert_eq!(outcomes.len() + refused.len(), KEYS * rounds);
    let mut failed: BTreeMap<(usize, usize), String> = BTreeMap::new();
    for (id, o) in outcomes {
        match o {
            Ok(d) => {
                acked.insert(id, d);
            }
            Err(e) => {
                failed.insert(id, e.error.kind().to_owned());
            }
        }
    }
    for (id, e) in &refused {
        failed.insert(*id, format!("refused: {}", e.error.kind()));
    }
    assert_eq!(acked.len() + failed.len(), sent, "one outcome per record");
    assert_eq!(
        report.accepted,
        report.delivered + report.failed,
        "{report:?}"
    );
    let mut failed_by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for kind in failed.values() {
        *failed_by_kind.entry(kind).or_default() += 1;
    }

    // The partitions' replicas are all in sync again.
    let isr = {
        let topic = topic.clone();
        tokio::task::spawn_blocking(move || {
            cluster.wait_for_full_isr(&topic, Duration::from_secs(60))
        })
        .await
        .unwrap()
    };

    // Everything in the topic, once each, in order per key.
    let records = read_all(&cluster.bootstrap, &topic, acked.len()).await;
    let mut seen: HashMap<(usize, usize), (i32, i64)> = HashMap::new();
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
    let missing: Vec<_> = acked
        .keys()
        .filter(|id| !seen.contains_key(id))
        .copied()
        .collect();
    let misplaced: Vec<_> = acked
        .iter()
        .filter(|(id, d)| {
            seen.get(id)
                .is_some_and(|&(p, o)| (p, o) != (d.partition, d.offset))
        })
        .map(|(id, _)| *id)
        .collect();
    let unknown: Vec<_> = seen
        .keys()
        .filter(|id| !acked.contains_key(id) && !failed.contains_key(id))
        .copied()
        .collect();
    let failed_but_written = failed.keys().filter(|id| seen.contains_key(id)).count();
    let mut out_of_order = Vec::new();
    for (k, mut v) in by_key {
        v.sort_unstable();
        if v.windows(2).any(|w| w[0].1 >= w[1].1) {
            out_of_order.push(k);
        }
    }

    let summary = format!(
        "broker {victim} (leader of partition {busy}, {keys_on_busy} of {KEYS} keys; controller \
         {controller}) killed at \
         round {kill_at}, started at round {restarted_at:?}; new leader: {failover:?}; \
         sent {sent}: {} acknowledged, {} failed {failed_by_kind:?} ({failed_but_written} of \
         them written anyway); read {}; missing {}, duplicated {}, at another offset {}, \
         never sent {}, keys out of order {out_of_order:?}; close {report:?}",
        acked.len(),
        failed.len(),
        records.len(),
        missing.len(),
        duplicates.len(),
        misplaced.len(),
        unknown.len(),
    );
    eprintln!("{summary}");
    let logs = || cluster.log_tails(40);
    assert!(
        failover.is_some(),
        "partition {busy} got no new leader within 60 s of its leader's death: {summary}\n{}",
        logs()
    );
    assert!(
        missing.is_empty(),
        "acknowledged records missing (first {:?}): {summary}\n{}",
        &missing[..missing.len().min(10)],
        logs()
    );
    assert!(
        duplicates.is_empty(),
        "records written twice (first {:?}): {summary}",
        &duplicates[..duplicates.len().min(10)]
    );
    assert!(
        misplaced.is_empty(),
        "records at another offset than acknowledged: {summary}"
    );
    assert!(unknown.is_empty(), "records nobody sent: {summary}");
    assert!(out_of_order.is_empty(), "keys out of order: {summary}");
    assert!(
        isr.is_ok(),
        "replicas not all in sync 60 s after the restart: {isr:?}\n{summary}\n{}",
        logs()
    );
}
