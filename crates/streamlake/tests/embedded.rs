//! Broker-free tests on the embedded cluster (librdkafka's mock cluster): three brokers,
//! replication factor 3, faults injected in process.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::time::Duration;
use streamlake::embedded::EmbeddedCluster;
use streamlake::{Config, Consumer, ConsumerOptions, Producer, Received, Record, StartFrom};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_survive_a_leader_going_down_and_keep_per_key_order() {
    let cluster = EmbeddedCluster::start(3).unwrap();
    cluster.create_topic("orders", 3, 3).unwrap();
    let config = Config::with_bootstrap(cluster.bootstrap_servers());
    let producer = Producer::new(&config).unwrap();

    let mut sent = Vec::new();
    for i in 0..300u32 {
        if i == 100 {
            cluster.mock().broker_down(1).unwrap();
        }
        if i == 200 {
            cluster.mock().broker_up(1).unwrap();
        }
        let key = format!("k{}", i % 10);
        producer
            .send_with_callback(Record::new("orders", i.to_string()).key(key.clone()), |o| {
                assert!(o.is_ok(), "{o:?}")
            })
            .unwrap();
        sent.push((key, i));
    }
    let report = producer.close(Duration::from_secs(30));
    assert_eq!(
        (report.accepted, report.delivered, report.failed),
        (300, 300, 0)
    );
    assert_exactly_once_in_order(&config, "orders", &sent).await;
}

/// Reads the whole topic and checks that every sent (key, n) is there once, in send order per
/// key.
async fn assert_exactly_once_in_order(config: &Config, topic: &str, sent: &[(String, u32)]) {
    let consumer = Consumer::new(
        config,
        ConsumerOptions {
            report_end: true,
            ..Default::default()
        },
    )
    .unwrap();
    consumer.assign(topic, None, StartFrom::Beginning).unwrap();
    let mut by_key: HashMap<String, Vec<u32>> = HashMap::new();
    let mut total = 0;
    // Once every record is in, keep reading until the topic stays quiet for 2 s, so a
    // duplicate past the expected count would be seen too.
    loop {
        let wait = if total >= sent.len() { 2 } else { 30 };
        match tokio::time::timeout(Duration::from_secs(wait), consumer.recv()).await {
            Ok(Ok(Received::Record(r))) => {
                let key = String::from_utf8(r.key.unwrap().to_vec()).unwrap();
                by_key.entry(key).or_default().push(
                    std::str::from_utf8(&r.value.unwrap())
                        .unwrap()
                        .parse()
                        .unwrap(),
                );
                total += 1;
            }
            Ok(Ok(Received::End)) => {}
            Ok(Err(e)) => panic!("{e}"),
            Err(_) if total >= sent.len() => break,
            Err(_) => panic!("read {total} of {} records", sent.len()),
        }
    }
    assert_eq!(total, sent.len(), "no record lost or duplicated");
    for (key, values) in by_key {
        let expected: Vec<u32> = sent
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| *v)
            .collect();
        assert_eq!(values, expected, "key {key}: every record once, in order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_leaders_and_injected_retriable_errors_lose_and_duplicate_nothing() {
    use rdkafka::types::RDKafkaApiKey;
    use rdkafka::types::RDKafkaRespErr as E;
    let cluster = EmbeddedCluster::start(3).unwrap();
    cluster.create_topic("moves", 3, 3).unwrap();
    let config = Config::with_bootstrap(cluster.bootstrap_servers());
    let producer = Producer::new(&config).unwrap();
    let mock = cluster.mock();
    let mut sent = Vec::new();
    for i in 0..600u32 {
        match i {
            100 => mock.request_errors(
                RDKafkaApiKey::Produce,
                &[
                    E::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
                    E::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND,
                    E::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
                    E::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
                    E::RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
                ],
            ),
            200 => {
                mock.partition_leader("moves", 0, Some(2)).unwrap();
                mock.partition_leader("moves", 1, Some(3)).unwrap();
            }
            300 => {
                mock.partition_leader("moves", 0, Some(3)).unwrap();
                mock.partition_leader("moves", 2, Some(1)).unwrap();
            }
            400 => mock.broker_down(2).unwrap(),
            500 => mock.broker_up(2).unwrap(),
            _ => {}
        }
        let key = format!("k{}", i % 7);
        producer
            .send_with_callback(Record::new("moves", i.to_string()).key(key.clone()), |o| {
                assert!(o.is_ok(), "{o:?}")
            })
            .unwrap();
        sent.push((key, i));
        if i % 50 == 0 {
            // Let the faults land while records are in flight.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let report = producer.close(Duration::from_secs(60));
    assert_eq!(
        (report.accepted, report.delivered, report.failed),
        (600, 600, 0)
    );
    assert_exactly_once_in_order(&config, "moves", &sent).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_error_comes_back_with_the_record() {
    let cluster = EmbeddedCluster::start(1).unwrap();
    let mut config = Config::with_bootstrap(cluster.bootstrap_servers());
    config.producer.delivery_timeout_ms = 2_000;
    config
        .producer
        .properties
        .insert("allow.auto.create.topics".into(), "false".into());
    config
        .producer
        .properties
        .insert("topic.metadata.propagation.max.ms".into(), "300".into());
    cluster.create_topic("exists", 1, 1).unwrap();
    let producer = Producer::new(&config).unwrap();
    let err = producer
        .send(Record::new("does-not-exist", "v").key("k"))
        .await
        .unwrap_err();
    assert!(err.error.is_permanent(), "{:?}", err.error);
    assert_eq!(err.record.topic, "does-not-exist");
    assert_eq!(err.record.value.as_deref(), Some(&b"v"[..]));
    let ok = producer.send(Record::new("exists", "v")).await.unwrap();
    assert_eq!((ok.partition, ok.offset), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fatal_idempotence_error_recreates_the_producer_and_keeps_every_record_in_order() {
    use rdkafka::types::RDKafkaApiKey;
    use rdkafka::types::RDKafkaRespErr as E;
    let cluster = EmbeddedCluster::start(3).unwrap();
    cluster.create_topic("fatal", 3, 3).unwrap();
    let config = Config::with_bootstrap(cluster.bootstrap_servers());
    let producer = Producer::new(&config).unwrap();
    let mock = cluster.mock();
    let mut sent = Vec::new();
    for i in 0..900u32 {
        match i {
            // The broker reports an out-of-order sequence for the first request in flight:
            // librdkafka can no longer vouch for the idempotent state and raises a fatal error.
            300 | 600 => mock.request_errors(
                RDKafkaApiKey::Produce,
                &[E::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER],
            ),
            450 => mock.partition_leader("fatal", 1, Some(3)).unwrap(),
            _ => {}
        }
        let key = format!("k{}", i % 7);
        producer
            .send_with_callback(Record::new("fatal", i.to_string()).key(key.clone()), |o| {
                assert!(o.is_ok(), "{o:?}")
            })
            .unwrap();
        sent.push((key, i));
        if i % 50 == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let report = producer.shutdown(Duration::from_secs(60));
    assert_eq!(
        (report.accepted, report.delivered, report.failed),
        (900, 900, 0)
    );
    let counters = producer.counters();
    // An injected error that hits a request behind another one in flight makes librdkafka
    // bump the epoch instead of failing: at least one of the two is fatal.
    assert!(
        (1..=2).contains(&counters.recreated()),
        "one new client per fatal error: {}",
        counters.recreated()
    );
    assert!(counters.resent() > 0, "records in flight were sent again");
    assert_exactly_once_in_order(&config, "fatal", &sent).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_and_consumer_metrics_count_records_and_read_librdkafka_statistics() {
    use streamlake::metrics::{ConsumerMetrics, Metrics};
    let cluster = EmbeddedCluster::start(3).unwrap();
    cluster.create_topic("metered", 3, 3).unwrap();
    let mut config = Config::with_bootstrap(cluster.bootstrap_servers());
    config.statistics_interval_ms = 100;
    let producer = Producer::new(&config).unwrap();
    let mut registry = Metrics::new();
    producer.metrics().register(&mut registry);
    for i in 0..200u32 {
        let r = Record::new(
            "metered",
            format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(100)),
        )
        .key(format!("k{}", i % 10));
        producer.send(r).await.unwrap();
    }
    let too_big = Record::new("metered", vec![0u8; 2_000_000]);
    let err = producer.send(too_big).await.unwrap_err();
    assert_eq!(err.error.kind(), "too_large");
    // Wait for a statistics report after the sends.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while producer.metrics().brokers.up_count().unwrap_or(0) == 0
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = registry.encode();
    for line in [
        "streamlake_producer_records_total{topic=\"metered\"} 200",
        "streamlake_producer_outcomes_total{outcome=\"delivered\",reason=\"none\"} 200",
        "streamlake_producer_outcomes_total{outcome=\"failed\",reason=\"too_large\"} 1",
        "streamlake_producer_delivery_latency_seconds_count 200",
        "streamlake_producer_in_flight 0",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
    // The brokers the producer tried to reach (those that lead its partitions) are listed;
    // a broker it never needed has no series rather than a 0.
    let brokers: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("streamlake_broker_up{"))
        .collect();
    assert!((1..=3).contains(&brokers.len()), "{text}");
    let up = brokers.iter().filter(|l| l.ends_with(" 1")).count();
    assert!(up >= 1, "{text}");
    assert_eq!(producer.metrics().brokers.up_count(), Some(up));
    assert!(
        text.contains("streamlake_broker_rtt_avg_seconds{broker="),
        "{text}"
    );
    assert!(
        text.contains("streamlake_producer_batch_records{topic=\"metered\"}"),
        "{text}"
    );
    let ratio: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("streamlake_producer_compression_ratio "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(ratio > 0.0, "{text}");

    let consumer_metrics = ConsumerMetrics::default();
    let mut c = config.clone();
    c.consumer.group_id = Some("metered-group".into());
    let consumer = Consumer::new(
        &c,
        ConsumerOptions {
            metrics: Some(consumer_metrics.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    consumer.subscribe(&["metered"]).unwrap();
    for _ in 0..200 {
        match tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await {
            Ok(Ok(Received::Record(_))) => {}
            other => panic!("{other:?}"),
        }
    }
    consumer.commit().unwrap();
    // Statistics are served while the consumer polls.
    for _ in 0..30 {
        let _ = tokio::time::timeout(Duration::from_millis(100), consumer.recv()).await;
    }
    let mut registry = Metrics::new();
    consumer_metrics.register(&mut registry);
    let text = registry.encode();
    assert!(
        text.contains("streamlake_consumer_records_total{topic=\"metered\"} 200"),
        "{text}"
    );
    assert!(
        text.contains("streamlake_consumer_commits_total{result=\"ok\"} 1"),
        "{text}"
    );
    // Lag is reported for each of the three partitions: nothing left unread.
    let lags: Vec<i64> = text
        .lines()
        .filter_map(|l| l.strip_prefix("streamlake_consumer_lag_records{"))
        .filter_map(|l| l.rsplit(' ').next())
        .map(|v| v.parse::<i64>().unwrap())
        .collect();
    assert_eq!(lags, vec![0, 0, 0], "{text}");
}

/// Outages a little longer than the delivery timeout, under steady keyed load with a spool:
/// records that outlive the timeout go to the spool together with every younger record still
/// in the client, so no younger record of a key is written ahead of an older one that waits
/// in the spool. (librdkafka times records out one by one and, when the broker returns, sends
/// the younger ones at once; a purge reports the youngest records first. Neither may reorder a
/// key.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outages_past_the_delivery_timeout_spool_records_without_reordering_a_key() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use streamlake::producer::{Accepted, CircuitConfig, SpoolingProducer};
    use streamlake::spool::SpoolConfig;

    let cluster = EmbeddedCluster::start(1).unwrap();
    cluster.create_topic("steady", 3, 1).unwrap();
    let mut config = Config::with_bootstrap(cluster.bootstrap_servers());
    config.producer.delivery_timeout_ms = 1_000;
    config.producer.request_timeout_ms = 500;
    let dir = tempfile::tempdir().unwrap();
    let spool = SpoolConfig::with_dir(dir.path().join("spool"));
    let circuit = CircuitConfig {
        failure_threshold: 3,
        open_ms: 300,
    };
    let (p, _) = SpoolingProducer::new(&config, &spool, circuit).unwrap();
    let p = Arc::new(p);

    let (keys, total) = (20usize, 7_000usize);
    let delivered = Arc::new(AtomicU64::new(0));
    let spooled = Arc::new(AtomicU64::new(0));
    let sender = {
        let (p, delivered, spooled) =
            (Arc::clone(&p), Arc::clone(&delivered), Arc::clone(&spooled));
        std::thread::spawn(move || {
            for n in 0..total {
                let (delivered, spooled) = (Arc::clone(&delivered), Arc::clone(&spooled));
                let record = Record::new("steady", format!("{}:{}", n % keys, n / keys))
                    .key(format!("k{}", n % keys));
                p.send_with_callback(record, move |outcome| match outcome {
                    Ok(Accepted::Delivered(_)) => {
                        delivered.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(Accepted::Spooled) => {
                        spooled.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => panic!("record {n} came back: {}", e.error),
                })
                .unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    // Down for a little longer than the timeout, three times.
    let started = std::time::Instant::now();
    for (at_ms, down_ms) in [(1_000, 1_300), (3_500, 1_700), (6_000, 1_150)] {
        tokio::time::sleep(Duration::from_millis(at_ms).saturating_sub(started.elapsed())).await;
        cluster.mock().broker_down(1).unwrap();
        tokio::time::sleep(Duration::from_millis(down_ms)).await;
        cluster.mock().broker_up(1).unwrap();
    }
    sender.join().unwrap();

    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while p.draining() || p.spooled_pending() > 0 {
        assert!(std::time::Instant::now() < deadline, "spool never drained");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let p = Arc::into_inner(p).unwrap();
    let report = p.close(Duration::from_secs(10)).await;
    let (delivered, spooled) = (
        delivered.load(Ordering::SeqCst),
        spooled.load(Ordering::SeqCst),
    );
    assert_eq!(
        delivered + spooled,
        total as u64,
        "every record has an outcome"
    );
    assert!(spooled > 0, "the outages spooled records");
    assert_eq!(report.spooled, spooled);
    assert_eq!(report.left_in_spool, 0);

    // Every record is in the topic; per key, the first copies are in the order sent.
    let records = common::read_on(&cluster.bootstrap_servers(), "steady", total).await;
    let mut seen = std::collections::HashSet::new();
    let mut by_key: HashMap<usize, Vec<usize>> = HashMap::new();
    let copies = records.len();
    for r in records {
        let v = String::from_utf8(r.value.unwrap().to_vec()).unwrap();
        if seen.insert(v.clone()) {
            let (k, s) = v.split_once(':').unwrap();
            by_key
                .entry(k.parse().unwrap())
                .or_default()
                .push(s.parse().unwrap());
        }
    }
    assert!(copies >= total);
    assert_eq!(by_key.len(), keys);
    for (k, seqs) in by_key {
        let out_of_order = seqs.windows(2).filter(|w| w[1] < w[0]).count();
        assert_eq!(out_of_order, 0, "key {k}: first copies out of order");
        assert_eq!(seqs.len(), total / keys, "key {k}: every record");
    }
}

/// The demo with a bounded lead: the producer never gets more than `max_lead` events ahead of
/// the consumer, and every event comes back once, in order per key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_keeps_its_producer_within_the_lead_and_reads_every_event_back() {
    use streamlake::demo::{run, DemoOptions};
    let cluster = EmbeddedCluster::start(1).unwrap();
    cluster.create_topic("demo-lead", 2, 1).unwrap();
    let config = Config::with_bootstrap(cluster.bootstrap_servers());
    let lead = 300;
    let options = DemoOptions {
        topic: "demo-lead".into(),
        duration: Duration::from_secs(2),
        rate: None,
        keys: 50,
        max_lead: Some(lead),
    };
    let mut ticks = Vec::new();
    let report = run(&config, &options, |t| ticks.push(*t)).await.unwrap();
    assert!(report.verified(), "{report:?}");
    assert!(report.sent > lead, "the run went past the lead: {report:?}");
    assert!(!ticks.is_empty());
    for t in &ticks {
        // `sent` is read before `consumed`, and a send waits while the lead is reached.
        assert!(t.sent <= t.consumed + lead + 1, "{t:?}");
    }
}
