//! Transactions, on two brokers:
//! - the embedded cluster (librdkafka's mock cluster, three brokers): the transactional flow,
//!   committed records once and in order, a commit refused after a failed record;
//! - crabka-broker (one node, from the shared test rig), which keeps aborted transactions and
//!   offsets sent in a transaction: aborted records are hidden from `read_committed` readers,
//!   and a consume-transform-produce job resumes after a failed run without writing any output
//!   twice. (The mock cluster reports no aborted transactions to fetchers, and tansu 0.6.0 has
//!   no `EndTxn`.)

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use streamlake::config::{Config, IsolationLevel};
use streamlake::embedded::EmbeddedCluster;
use streamlake::producer::transform::{transform, TransformError, TransformOptions};
use streamlake::producer::TransactionalProducer;
use streamlake::{ConsumedRecord, Consumer, ConsumerOptions, Received, Record, StartFrom};
use streamlake_test_support::{create_topic, transactional_broker, unique_topic};

fn topic(cluster: &EmbeddedCluster, prefix: &str, partitions: i32) -> String {
    let t = unique_topic(prefix);
    cluster.create_topic(&t, partitions, 3).unwrap();
    t
}

/// A new topic on the transactional broker.
fn crabka_topic(prefix: &str, partitions: i32) -> String {
    let t = unique_topic(prefix);
    create_topic(&transactional_broker().bootstrap, &t, partitions);
    t
}

fn transactional(bootstrap: &str, id: &str) -> Config {
    let mut c = Config::with_bootstrap(bootstrap);
    c.producer.transactional_id = Some(format!("{id}-{}", unique_topic("txn")));
    c
}

/// Everything `topic` holds for a reader at `isolation`, read until every partition is at its
/// end and nothing more arrives for a second.
async fn read(bootstrap: &str, topic: &str, isolation: IsolationLevel) -> Vec<ConsumedRecord> {
    let mut c = Config::with_bootstrap(bootstrap);
    c.consumer.isolation_level = isolation;
    let consumer = Consumer::new(
        &c,
        ConsumerOptions {
            report_end: true,
            ..Default::default()
        },
    )
    .unwrap();
    consumer.assign(topic, None, StartFrom::Beginning).unwrap();
    let mut out = Vec::new();
    let mut ended = false;
    loop {
        let wait = if ended { 1 } else { 30 };
        match tokio::time::timeout(Duration::from_secs(wait), consumer.recv()).await {
            Ok(Ok(Received::Record(r))) => out.push(r),
            Ok(Ok(Received::End)) => ended = true,
            Ok(Err(e)) => panic!("{e}"),
            Err(_) if ended => break,
            Err(_) => panic!("no end of {topic} after {} records", out.len()),
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_transaction_after_an_aborted_one_appears_once_in_order() {
    let cluster = EmbeddedCluster::start(3).unwrap();
    let t = topic(&cluster, "txn", 2);
    let p =
        TransactionalProducer::new(&transactional(&cluster.bootstrap_servers(), "abort")).unwrap();

    p.begin().unwrap();
    for i in 0..20 {
        p.send(Record::new(&t, format!("aborted-{i}")).key(format!("k{}", i % 4)))
            .await
            .unwrap();
    }
    p.abort().unwrap();

    p.begin().unwrap();
    for i in 0..30 {
        p.send(Record::new(&t, format!("committed-{i}")).key(format!("k{}", i % 4)))
            .await
            .unwrap();
    }
    p.commit().unwrap();

    let records = read(
        &cluster.bootstrap_servers(),
        &t,
        IsolationLevel::ReadCommitted,
    )
    .await;
    let mut per_key = by_key(&records);
    for values in per_key.values_mut() {
        values.retain(|v| v.starts_with("committed-"));
    }
    for k in 0..4 {
        let want: Vec<String> = (0..30)
            .filter(|i| i % 4 == k)
            .map(|i| format!("committed-{i}"))
            .collect();
        assert_eq!(
            per_key[&format!("k{k}")],
            want,
            "key k{k}: once each, in order"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_is_refused_while_a_record_of_the_transaction_failed() {
    let cluster = EmbeddedCluster::start(3).unwrap();
    let mut c = transactional(&cluster.bootstrap_servers(), "refused");
    c.producer.delivery_timeout_ms = 2_000;
    let p = TransactionalProducer::new(&c).unwrap();
    p.begin().unwrap();
    let err = p
        .send(Record::new(
            topic(&cluster, "txn-big", 1),
            vec![0u8; 2_000_000],
        ))
        .await
        .unwrap_err();
    assert!(err.error.is_permanent(), "{err:?}");
    let refused = p.commit().unwrap_err();
    assert!(refused.is_abortable(), "{refused}");
    p.abort().unwrap();
}

/// The records of `topic` on the transactional broker for a reader at `isolation`: read until
/// `n` arrived, then for 3 s more, so that records beyond the `n` expected show up too.
///
/// crabka-broker answers a fetch that finds no new records with a null record set, which
/// librdkafka reports as a protocol error and never as the end of the partition, so the read
/// cannot stop at the end.
async fn read_n(topic: &str, isolation: IsolationLevel, n: usize) -> Vec<ConsumedRecord> {
    let mut c = Config::with_bootstrap(&transactional_broker().bootstrap);
    c.consumer.isolation_level = isolation;
    let consumer = Consumer::new(&c, ConsumerOptions::default()).unwrap();
    consumer.assign(topic, None, StartFrom::Beginning).unwrap();
    let mut out = Vec::new();
    let mut deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if out.len() >= n {
            deadline = deadline.min(tokio::time::Instant::now() + Duration::from_secs(3));
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

fn text(b: &Option<impl AsRef<[u8]>>) -> String {
    String::from_utf8(b.as_ref().unwrap().as_ref().to_vec()).unwrap()
}

/// Values per key, in the order read.
fn by_key(records: &[ConsumedRecord]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in records {
        out.entry(text(&r.key)).or_default().push(text(&r.value));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_records_are_hidden_from_read_committed_readers_and_committed_ones_appear_once() {
    let bootstrap = &transactional_broker().bootstrap;
    let t = crabka_topic("txn-hidden", 2);
    let p = TransactionalProducer::new(&transactional(bootstrap, "hidden")).unwrap();
    let send = |prefix: &'static str, n: usize| {
        let p = &p;
        let t = &t;
        async move {
            let mut offsets = Vec::new();
            for i in 0..n {
                let d = p
                    .send(Record::new(t, format!("{prefix}-{i}")).key(format!("k{}", i % 4)))
                    .await
                    .unwrap();
                offsets.push((d.partition, d.offset));
            }
            offsets
        }
    };

    p.begin().unwrap();
    send("first", 10).await;
    p.commit().unwrap();
    p.begin().unwrap();
    let aborted = send("aborted", 20).await;
    p.abort().unwrap();
    p.begin().unwrap();
    send("committed", 30).await;
    p.commit().unwrap();

    // A read_uncommitted reader sees the aborted records: they were written, then aborted.
    let all = read_n(&t, IsolationLevel::ReadUncommitted, 60).await;
    assert_eq!(all.len(), 60, "{:?}", by_key(&all));
    let aborted_seen: Vec<(i32, i64)> = all
        .iter()
        .filter(|r| text(&r.value).starts_with("aborted-"))
        .map(|r| (r.partition, r.offset))
        .collect();
    let mut want_aborted = aborted.clone();
    want_aborted.sort_unstable();
    let mut got_aborted = aborted_seen.clone();
    got_aborted.sort_unstable();
    assert_eq!(
        got_aborted, want_aborted,
        "the aborted records are in the log"
    );

    // A read_committed reader sees every committed record once, in order per key, and none of
    // the aborted ones.
    let committed = read_n(&t, IsolationLevel::ReadCommitted, 40).await;
    assert_eq!(committed.len(), 40, "{:?}", by_key(&committed));
    for (k, got) in by_key(&committed) {
        let k: usize = k.trim_start_matches('k').parse().unwrap();
        let want: Vec<String> = (0..10)
            .filter(|i| i % 4 == k)
            .map(|i| format!("first-{i}"))
            .chain(
                (0..30)
                    .filter(|i| i % 4 == k)
                    .map(|i| format!("committed-{i}")),
            )
            .collect();
        assert_eq!(got, want, "key k{k}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_transform_produce_writes_each_output_once_across_a_failed_run() {
    let bootstrap = &transactional_broker().bootstrap;
    let input = crabka_topic("ctp-in", 2);
    let output = crabka_topic("ctp-out", 2);
    let group = unique_topic("ctp-group");
    let plain = streamlake::Producer::new(&Config::with_bootstrap(bootstrap)).unwrap();
    let n = 200;
    for i in 0..n {
        plain
            .send(Record::new(&input, i.to_string()).key(format!("k{}", i % 5)))
            .await
            .unwrap();
    }
    assert!(plain.close(Duration::from_secs(10)).all_delivered());
    // The same transactional id for both runs: the second run fences the first.
    let transactional_id = format!("ctp-{}", unique_topic("txn"));
    let config = || {
        let mut c = Config::with_bootstrap(bootstrap);
        c.producer.transactional_id = Some(transactional_id.clone());
        c.consumer.group_id = Some(group.clone());
        c.consumer.enable_auto_commit = false;
        c
    };
    let options = TransformOptions {
        batch_records: 40,
        stop_when_idle: Some(Duration::from_secs(10)),
        ..Default::default()
    };
    let output_of = |r: &ConsumedRecord| {
        vec![Record::new(&output, format!("out-{}", text(&r.value))).key(r.key.clone().unwrap())]
    };

    // First run: stops at the record it cannot transform; that batch is aborted, its outputs
    // are hidden and its offsets not committed.
    let c = config();
    let consumer = Consumer::new(&c, ConsumerOptions::default()).unwrap();
    consumer.subscribe(&[&input]).unwrap();
    let producer = TransactionalProducer::new(&c).unwrap();
    let stop = AtomicBool::new(false);
    let err = transform(&consumer, &producer, &options, &stop, |r| {
        if text(&r.value) == "150" {
            return Err("cannot transform 150".into());
        }
        Ok(output_of(r))
    })
    .await
    .unwrap_err();
    assert!(
        matches!(&err, TransformError::Transform { message, .. } if message.contains("150")),
        "{err}"
    );
    consumer.close().unwrap();
    drop(producer);

    // Second run, same group and transactional id: resumes after the last committed batch.
    let c = config();
    let consumer = Consumer::new(&c, ConsumerOptions::default()).unwrap();
    consumer.subscribe(&[&input]).unwrap();
    let producer = TransactionalProducer::new(&c).unwrap();
    let options = TransformOptions {
        stop_when_idle: Some(Duration::from_secs(20)),
        ..options
    };
    let report = transform(&consumer, &producer, &options, &stop, |r| Ok(output_of(r)))
        .await
        .unwrap();
    consumer.close().unwrap();
    // It read only what the first run did not commit: at least the failed batch (which holds
    // record 150), not the batches committed before it.
    assert!(
        report.records_in > 0 && report.records_in < n as u64,
        "{report:?}"
    );
    assert_eq!(report.records_out, report.records_in, "{report:?}");

    // Every input has exactly one output, in input order per key: the aborted batch's outputs
    // are hidden and nothing was written twice.
    let out = read_n(&output, IsolationLevel::ReadCommitted, n).await;
    assert_eq!(out.len(), n, "{:?}", by_key(&out));
    for (k, got) in by_key(&out) {
        let want: Vec<String> = (0..n)
            .filter(|i| format!("k{}", i % 5) == k)
            .map(|i| format!("out-{i}"))
            .collect();
        assert_eq!(got, want, "key {k}");
    }
}
