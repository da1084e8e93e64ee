//! Real-broker tests: the library against a tansu broker started by the shared test rig.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use streamlake::config::{Compression, Config};
use streamlake::producer::ProduceError;
use streamlake::{
    ConsumedRecord, Consumer, ConsumerOptions, Producer, Received, Record, StartFrom,
};
use streamlake_test_support::{broker, create_topic, unique_topic, unreachable_bootstrap};

fn config() -> Config {
    Config::with_bootstrap(&broker().bootstrap)
}

fn topic(prefix: &str, partitions: i32) -> String {
    let t = unique_topic(prefix);
    create_topic(&broker().bootstrap, &t, partitions);
    t
}

/// Reads every record of `topic` from the beginning until each partition is at its end.
async fn read_all(config: &Config, topic: &str, expect: usize) -> Vec<ConsumedRecord> {
    let consumer = Consumer::new(
        config,
        ConsumerOptions {
            report_end: true,
            ..Default::default()
        },
    )
    .unwrap();
    consumer.assign(topic, None, StartFrom::Beginning).unwrap();
    let mut out = Vec::with_capacity(expect);
    let deadline = Instant::now() + Duration::from_secs(120);
    while out.len() < expect {
        assert!(Instant::now() < deadline, "read {} of {expect}", out.len());
        match tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .expect("recv timed out")
            .unwrap()
        {
            Received::Record(r) => out.push(r),
            Received::End if out.len() >= expect => break,
            Received::End => {}
        }
    }
    consumer.close().unwrap();
    out
}

/// A consumer that reports when every partition has been read to its end.
fn to_end_consumer(config: &Config) -> Consumer {
    Consumer::new(
        config,
        ConsumerOptions {
            report_end: true,
            ..Default::default()
        },
    )
    .unwrap()
}

fn record(topic: &str, i: usize) -> Record {
    Record::new(
        topic,
        format!(r#"{{"seq":{i},"body":"{}"}}"#, "x".repeat(i % 50)),
    )
    .key(format!("key-{}", i % 97))
    .header("dataset", "orders")
    .header("schema_version", "v1")
    .header("ingestion_id", i.to_string())
    .header("producer_service", "tests")
    .header("ingested_at", "2026-11-22T00:00:00Z")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_thousand_records_round_trip_identical_and_complete() {
    const N: usize = 100_000;
    let t = topic("roundtrip", 3);
    let producer = Producer::new(&config()).unwrap();
    let deliveries = Arc::new(Mutex::new(Vec::with_capacity(N)));
    for i in 0..N {
        let d = Arc::clone(&deliveries);
        producer
            .send_with_callback(record(&t, i), move |o| {
                d.lock().unwrap().push((i, o.map_err(|e| e.error)))
            })
            .unwrap();
    }
    let report = producer.close(Duration::from_secs(60));
    assert_eq!(
        (report.accepted, report.delivered, report.failed),
        (N as u64, N as u64, 0)
    );
    let deliveries = std::mem::take(&mut *deliveries.lock().unwrap());
    assert_eq!(deliveries.len(), N);
    let mut where_is: HashMap<usize, (i32, i64)> = HashMap::new();
    for (i, d) in deliveries {
        let d = d.unwrap();
        assert_eq!(d.topic, t);
        where_is.insert(i, (d.partition, d.offset));
    }

    let records = read_all(&config(), &t, N).await;
    assert_eq!(records.len(), N, "every record read back once");
    let mut per_partition: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    let mut seen = vec![false; N];
    for r in &records {
        let i: usize = std::str::from_utf8(r.header("ingestion_id").unwrap())
            .unwrap()
            .parse()
            .unwrap();
        assert!(!seen[i], "record {i} read twice");
        seen[i] = true;
        let want = record(&t, i);
        assert_eq!(r.key, want.key, "key of {i}");
        assert_eq!(r.value, want.value, "value of {i}");
        assert_eq!(r.headers, want.headers, "headers of {i}");
        assert_eq!(
            where_is[&i],
            (r.partition, r.offset),
            "delivery report of {i} matches where it was read"
        );
        per_partition.entry(r.partition).or_default().push(r.offset);
    }
    for (p, offsets) in per_partition {
        let expected: Vec<i64> = (0..offsets.len() as i64).collect();
        assert_eq!(
            offsets, expected,
            "partition {p} offsets are contiguous from 0, in order"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_key_same_partition_across_producers() {
    let t = topic("keys", 6);
    let mut first: HashMap<String, i32> = HashMap::new();
    for round in 0..2 {
        let producer = Producer::new(&config()).unwrap();
        for i in 0..60 {
            let key = format!("customer-{}", i % 12);
            let d = producer
                .send(Record::new(&t, format!("{round}-{i}")).key(key.clone()))
                .await
                .unwrap();
            let p = *first.entry(key.clone()).or_insert(d.partition);
            assert_eq!(
                p, d.partition,
                "key {key} moved partitions in round {round}"
            );
        }
        producer.close(Duration::from_secs(10));
    }
    let used: std::collections::HashSet<_> = first.values().collect();
    assert!(
        used.len() > 1,
        "12 keys over 6 partitions should use more than one: {first:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_compression_codec_round_trips() {
    for codec in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let t = topic(&format!("codec-{}", codec.as_librdkafka()), 1);
        let mut c = config();
        c.producer.compression = codec;
        let producer = Producer::new(&c).unwrap();
        for i in 0..500 {
            producer
                .send_with_callback(record(&t, i), |o| assert!(o.is_ok(), "{o:?}"))
                .unwrap();
        }
        let report = producer.close(Duration::from_secs(30));
        assert_eq!(report.delivered, 500, "{codec:?}");
        let records = read_all(&c, &t, 500).await;
        assert_eq!(records.len(), 500, "{codec:?}");
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r.value, record(&t, i).value, "{codec:?} record {i}");
            assert_eq!(r.offset, i as i64);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_producer_is_on_and_delivers_in_order() {
    let c = config();
    let cc = c
        .client_config(streamlake::config::ClientKind::Producer)
        .unwrap();
    assert_eq!(cc.get("enable.idempotence"), Some("true"));
    assert_eq!(cc.get("acks"), Some("all"));
    let t = topic("idempotent", 1);
    let producer = Producer::new(&c).unwrap();
    let mut offsets = Vec::new();
    for i in 0..200 {
        offsets.push(producer.send(record(&t, i)).await.unwrap().offset);
    }
    assert_eq!(offsets, (0..200).collect::<Vec<i64>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_resumes_right_after_the_last_committed_record() {
    let t = topic("group", 1);
    // Two separate batches, so the commit point is a batch boundary.
    let values: Vec<String> = (0..40).map(|i| i.to_string()).collect();
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    write_batches(&t, &[&values[..20], &values[20..]]).await;
    let mut c = config();
    c.consumer.group_id = Some(unique_topic("group-id"));
    let first = Consumer::new(&c, ConsumerOptions::default()).unwrap();
    first.subscribe(&[&t]).unwrap();
    for expected in 0..20 {
        let Received::Record(r) = first.recv().await.unwrap() else {
            panic!("record expected")
        };
        assert_eq!(r.value.as_deref(), Some(expected.to_string().as_bytes()));
        assert_eq!(r.offset, expected);
    }
    first.close().unwrap();

    let second = to_end_consumer(&c);
    second.subscribe(&[&t]).unwrap();
    let mut got = Vec::new();
    while let Received::Record(r) = tokio::time::timeout(Duration::from_secs(30), second.recv())
        .await
        .expect("recv")
        .unwrap()
    {
        got.push((
            r.offset,
            String::from_utf8(r.value.unwrap().to_vec()).unwrap(),
        ));
    }
    second.close().unwrap();
    let expected: Vec<(i64, String)> = (20..40).map(|i| (i, i.to_string())).collect();
    assert_eq!(
        got, expected,
        "resumed exactly after offset 19, nothing skipped or repeated"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_broker_fails_within_the_delivery_timeout_and_returns_the_record() {
    let mut c = Config::with_bootstrap(unreachable_bootstrap());
    c.producer.delivery_timeout_ms = 1_500;
    c.producer.request_timeout_ms = 1_000;
    let producer = Producer::new(&c).unwrap();
    let started = Instant::now();
    let rec = Record::new("nowhere", "payload").key("k");
    let err = tokio::time::timeout(Duration::from_secs(10), producer.send(rec.clone()))
        .await
        .expect("no hang")
        .unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err.error, ProduceError::Timeout { .. }), "{err:?}");
    assert!(err.error.is_retriable());
    assert_eq!(err.record, rec, "the record comes back unchanged");
    assert!(
        took >= Duration::from_millis(1_400) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert!(err.to_string().contains("bootstrap_servers"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_hands_back_every_undelivered_record() {
    let c = Config::with_bootstrap(unreachable_bootstrap());
    let producer = Producer::new(&c).unwrap();
    let back = Arc::new(Mutex::new(Vec::new()));
    for i in 0..10 {
        let back = Arc::clone(&back);
        producer
            .send_with_callback(Record::new("t", i.to_string()), move |o| {
                back.lock().unwrap().push(o.unwrap_err())
            })
            .unwrap();
    }
    let report = producer.close(Duration::from_millis(200));
    assert_eq!(
        (
            report.accepted,
            report.delivered,
            report.failed,
            report.purged
        ),
        (10, 0, 10, 10)
    );
    let back = back.lock().unwrap();
    assert_eq!(back.len(), 10);
    let mut values: Vec<String> = back
        .iter()
        .map(|e| String::from_utf8(e.record.value.clone().unwrap().to_vec()).unwrap())
        .collect();
    values.sort_by_key(|v| v.parse::<u32>().unwrap());
    assert_eq!(values, (0..10).map(|i| i.to_string()).collect::<Vec<_>>());
    assert!(back.iter().all(|e| matches!(e.error, ProduceError::Purged)));
}

/// Writes `values` to a one-partition topic as one batch per slice, so commit points can sit on
/// batch boundaries (tansu serves reads from batch starts).
async fn write_batches(topic: &str, batches: &[&[&str]]) {
    let producer = Producer::new(&config()).unwrap();
    for batch in batches {
        for v in *batch {
            producer
                .send_with_callback(Record::new(topic, v.to_string()), |o| {
                    assert!(o.is_ok(), "{o:?}")
                })
                .unwrap();
        }
        producer.flush(Duration::from_secs(10)).unwrap();
    }
}

async fn values_until_end(consumer: &Consumer) -> Vec<String> {
    use futures::StreamExt;
    let mut out = Vec::new();
    let mut stream = std::pin::pin!(consumer.stream());
    loop {
        match tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .expect("no hang")
            .unwrap()
            .unwrap()
        {
            Received::Record(r) => out.push(String::from_utf8(r.value.unwrap().to_vec()).unwrap()),
            Received::End => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_commit_commits_only_what_was_acked() {
    let t = topic("manual", 1);
    write_batches(&t, &[&["a", "b", "c"], &["d", "e"]]).await;
    let mut c = config();
    c.consumer.group_id = Some(unique_topic("manual-group"));
    c.consumer.enable_auto_commit = false;

    let first = to_end_consumer(&c);
    first.subscribe(&[&t]).unwrap();
    let mut read = Vec::new();
    while read.len() < 5 {
        if let Received::Record(r) = first.recv().await.unwrap() {
            if read.len() < 3 {
                first.ack(&r).unwrap();
            }
            read.push(r);
        }
    }
    assert_eq!(
        read.iter().map(|r| r.offset).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4]
    );
    first.commit().unwrap();
    first.close().unwrap();

    let second = to_end_consumer(&c);
    second.subscribe(&[&t]).unwrap();
    assert_eq!(
        values_until_end(&second).await,
        ["d", "e"],
        "records read but not acked are read again"
    );
    second.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebalance_hook_sees_assignment_and_revocation() {
    use streamlake::consumer::RebalanceEvent;
    let t = topic("rebalance", 3);
    write_batches(&t, &[&["x"]]).await;
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let mut c = config();
    c.consumer.group_id = Some(unique_topic("rebalance-group"));
    let consumer = Consumer::new(
        &c,
        ConsumerOptions {
            report_end: true,
            on_rebalance: Some(Arc::new(move |e: &RebalanceEvent| {
                sink.lock().unwrap().push(e.clone())
            })),
            ..Default::default()
        },
    )
    .unwrap();
    consumer.subscribe(&[&t]).unwrap();
    assert_eq!(values_until_end(&consumer).await, ["x"]);
    consumer.close().unwrap();
    let events = events.lock().unwrap();
    let mut assigned = match events.first() {
        Some(RebalanceEvent::Assigned(p)) => p.clone(),
        other => panic!("first event should be an assignment: {other:?}"),
    };
    assigned.sort();
    assert_eq!(assigned, [(t.clone(), 0), (t.clone(), 1), (t.clone(), 2)]);
    assert!(
        matches!(events.last(), Some(RebalanceEvent::Revoked(p)) if p.len() == 3),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_scram_authentication_is_named_in_the_error() {
    use streamlake::config::{SaslMechanism, Secret, SecurityProtocol};
    let mut c = Config::with_bootstrap(
        &streamlake_test_support::broker_requiring_authentication().bootstrap,
    );
    c.security.protocol = SecurityProtocol::SaslPlaintext;
    c.security.sasl_mechanism = Some(SaslMechanism::ScramSha512);
    c.security.sasl_username = Some("nobody".into());
    c.security.sasl_password = Some(Secret::new("wrong"));
    c.producer.delivery_timeout_ms = 3_000;
    let producer = Producer::new(&c).unwrap();
    let err = tokio::time::timeout(
        Duration::from_secs(15),
        producer.send(Record::new("t", "v")),
    )
    .await
    .expect("no hang")
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("last client error: ") && text.contains("SASL SCRAM"),
        "{text}"
    );
    assert!(
        !text.contains("wrong"),
        "the password never appears: {text}"
    );
}
