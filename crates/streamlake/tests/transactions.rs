//! Transactions on a real broker (tansu): what `read_committed` readers see.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use streamlake::config::{Config, IsolationLevel};
use streamlake::producer::transform::{transform, TransformError, TransformOptions};
use streamlake::producer::TransactionalProducer;
use streamlake::{ConsumedRecord, Consumer, ConsumerOptions, Received, Record, StartFrom};
use streamlake_test_support::{broker, create_topic, unique_topic};

fn topic(prefix: &str, partitions: i32) -> String {
    let t = unique_topic(prefix);
    create_topic(&broker().bootstrap, &t, partitions);
    t
}

fn transactional(id: &str) -> Config {
    let mut c = Config::with_bootstrap(&broker().bootstrap);
    c.producer.transactional_id = Some(format!("{id}-{}", unique_topic("txn")));
    c
}

/// Everything `topic` holds for a reader at `isolation`, read until every partition is at its
/// end and nothing more arrives for a second.
async fn read(topic: &str, isolation: IsolationLevel) -> Vec<ConsumedRecord> {
    let mut c = Config::with_bootstrap(&broker().bootstrap);
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

fn values(records: &[ConsumedRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_records_are_invisible_to_read_committed_and_committed_ones_appear_once() {
    let t = topic("txn", 2);
    let p = TransactionalProducer::new(&transactional("abort")).unwrap();

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

    let committed = values(&read(&t, IsolationLevel::ReadCommitted).await);
    let mut sorted = committed.clone();
    sorted.sort();
    let mut expected: Vec<String> = (0..30).map(|i| format!("committed-{i}")).collect();
    expected.sort();
    assert_eq!(
        sorted, expected,
        "read_committed: the committed records, once each"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_transaction_stays_invisible_until_it_commits() {
    let t = topic("txn-open", 1);
    let p = TransactionalProducer::new(&transactional("open")).unwrap();
    p.begin().unwrap();
    for i in 0..10 {
        p.send(Record::new(&t, format!("v{i}"))).await.unwrap();
    }
    assert!(
        read(&t, IsolationLevel::ReadCommitted).await.is_empty(),
        "nothing visible before the commit"
    );
    assert_eq!(read(&t, IsolationLevel::ReadUncommitted).await.len(), 10);
    p.commit().unwrap();
    assert_eq!(
        values(&read(&t, IsolationLevel::ReadCommitted).await),
        (0..10).map(|i| format!("v{i}")).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_transform_produce_writes_each_output_once_across_a_failed_run() {
    let input = topic("ctp-in", 2);
    let output = topic("ctp-out", 2);
    let group = unique_topic("ctp-group");
    let plain = streamlake::Producer::new(&Config::with_bootstrap(&broker().bootstrap)).unwrap();
    let n = 200;
    for i in 0..n {
        plain
            .send(Record::new(&input, i.to_string()).key(format!("k{}", i % 5)))
            .await
            .unwrap();
    }
    let consumer_config = || {
        let mut c = transactional("ctp");
        c.consumer.group_id = Some(group.clone());
        c.consumer.enable_auto_commit = false;
        c
    };
    let options = TransformOptions {
        batch_records: 40,
        stop_when_idle: Some(Duration::from_secs(3)),
        ..Default::default()
    };
    let upper = |r: &ConsumedRecord| -> Result<Vec<Record>, String> {
        let v = String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap();
        if v == "150" {
            return Err("cannot transform 150".into());
        }
        Ok(vec![
            Record::new(&output, format!("out-{v}")).key(r.key.clone().unwrap())
        ])
    };

    // First run: stops at the record it cannot transform; that batch is aborted.
    let c = consumer_config();
    let consumer = Consumer::new(&c, ConsumerOptions::default()).unwrap();
    consumer.subscribe(&[&input]).unwrap();
    let producer = TransactionalProducer::new(&c).unwrap();
    let stop = AtomicBool::new(false);
    let err = transform(&consumer, &producer, &options, &stop, upper)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TransformError::Transform { message, .. } if message.contains("150")),
        "{err}"
    );
    consumer.close().unwrap();
    drop(producer);

    // Second run, same group and transactional id: resumes after the last committed batch.
    let c = consumer_config();
    let consumer = Consumer::new(&c, ConsumerOptions::default()).unwrap();
    consumer.subscribe(&[&input]).unwrap();
    let producer = TransactionalProducer::new(&c).unwrap();
    let report = transform(&consumer, &producer, &options, &stop, |r| {
        let v = String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap();
        Ok(vec![
            Record::new(&output, format!("out-{v}")).key(r.key.clone().unwrap())
        ])
    })
    .await
    .unwrap();
    assert!(report.committed > 0, "{report:?}");
    consumer.close().unwrap();

    let out = read(&output, IsolationLevel::ReadCommitted).await;
    let mut per_key: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for r in &out {
        let v = String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap();
        per_key
            .entry(String::from_utf8(r.key.clone().unwrap().to_vec()).unwrap())
            .or_default()
            .push(v.trim_start_matches("out-").parse().unwrap());
    }
    assert_eq!(out.len(), n as usize, "every input once in the output");
    for (k, got) in per_key {
        let want: Vec<u32> = (0..n).filter(|i| format!("k{}", i % 5) == k).collect();
        assert_eq!(got, want, "key {k}: once each, in input order");
    }
}
