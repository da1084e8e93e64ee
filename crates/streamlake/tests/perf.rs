//! Performance runs on the embedded cluster (librdkafka's mock cluster, in process): a stall
//! must show in latency measured from intended send time, every record must be accounted for,
//! and what perf produce writes perf consume reads back.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use streamlake::embedded::EmbeddedCluster;
use streamlake::perf::{self, ConsumeOptions, PayloadSpec, PerfOptions, Warmup, HEADER_NAMES};
use streamlake::{Config, Consumer, ConsumerOptions, Received, StartFrom};

/// A paced run at 1000 records/s during which the only broker goes away for a second. The
/// client queue holds just 20 records, so the sender itself is held up while the broker is
/// gone: a tester measuring from the moment records are handed over would see the stall only
/// in those 20. Measured from intended send time, every record due during the stall shows it.
#[test]
fn a_stall_shows_in_the_percentiles_because_latency_counts_from_intended_send_time() {
    let cluster = EmbeddedCluster::start(1).unwrap();
    cluster.create_topic("stall", 1, 1).unwrap();
    let mut config = Config::with_bootstrap(cluster.bootstrap_servers());
    config.producer.queue_max_messages = 20;
    let run = std::thread::spawn(move || {
        let mut options = PerfOptions::new("stall");
        options.throughput = Some(1000.0);
        options.duration = Some(Duration::from_secs(4));
        options.warmup = Warmup::Duration(Duration::from_millis(500));
        let payload = Arc::new(PayloadSpec::synthetic(120, Some(100), true).unwrap());
        let stop = AtomicBool::new(false);
        let mut ticks = 0;
        let report = perf::produce::run(&config, &options, &payload, &stop, |_| ticks += 1);
        (report, ticks)
    });
    std::thread::sleep(Duration::from_millis(1500));
    cluster.mock().broker_down(1).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    cluster.mock().broker_up(1).unwrap();
    let (report, ticks) = run.join().unwrap();
    let r = report.unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&r).unwrap());

    assert_eq!(r.errors, 0, "{r:?}");
    assert_eq!(
        (r.records, r.delivered, r.warmup_records),
        (4000, 4000, 500),
        "paced: exactly rate x duration, after 0.5 s of warm-up"
    );
    assert!(ticks >= 3, "progress about every second: {ticks}");
    assert!(r.max_ms >= 900.0, "the 1 s stall is the maximum: {r:?}");
    assert!(
        r.p99_ms >= 700.0,
        "every record due during the stall waited for it: {r:?}"
    );
    assert!(r.p95_ms >= 300.0, "{r:?}");
    // Without the correction, the stall almost disappears from the percentiles.
    assert!(
        r.uncorrected.p95_ms * 5.0 < r.p95_ms,
        "uncorrected p95 {} vs corrected {}",
        r.uncorrected.p95_ms,
        r.p95_ms
    );
    assert!(r.p50_ms <= r.p95_ms && r.p95_ms <= r.p99_ms && r.p99_ms <= r.p999_ms);
    assert!(r.p999_ms <= r.max_ms);
}

/// Two producers flat out, then perf consume reads everything back: counts, keys, headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_perf_produce_writes_perf_consume_reads_with_keys_and_headers() {
    let cluster = EmbeddedCluster::start(3).unwrap();
    cluster.create_topic("perf-rt", 3, 3).unwrap();
    let config = Config::with_bootstrap(cluster.bootstrap_servers());
    let mut options = PerfOptions::new("perf-rt");
    options.records = Some(5000);
    options.producers = 2;
    options.keys = Some(40);
    options.record_size = 300;
    let payload = Arc::new(PayloadSpec::synthetic(300, options.keys, true).unwrap());
    let stop = AtomicBool::new(false);
    let r = tokio::task::block_in_place(|| {
        perf::produce::run(&config, &options, &payload, &stop, |_| {})
    })
    .unwrap();
    assert_eq!(
        (r.records, r.delivered, r.errors, r.warmup_records),
        (5000, 5000, 0, 500),
        "{r:?}"
    );
    assert_eq!(r.producers, 2);
    assert_eq!(r.avg_value_bytes, 300.0);
    assert!(r.records_per_sec > 0.0 && r.mb_per_sec > 0.0 && r.duration_secs > 0.0);
    assert!(
        r.bytes > 5000 * 300,
        "headers and keys count too: {}",
        r.bytes
    );
    assert!(r.p50_ms <= r.p95_ms && r.p95_ms <= r.p99_ms);
    assert!(r.p99_ms <= r.p999_ms && r.p999_ms <= r.max_ms);

    // Read it all back independently: 5500 records, each with a key of the 40 and the headers.
    let consumer = Consumer::new(
        &config,
        ConsumerOptions {
            report_end: true,
            ..Default::default()
        },
    )
    .unwrap();
    consumer
        .assign("perf-rt", None, StartFrom::Beginning)
        .unwrap();
    let (mut n, mut keys, mut seen_orders) = (0, HashSet::new(), HashSet::new());
    while n < 5500 {
        match tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .unwrap()
            .unwrap()
        {
            Received::Record(rec) => {
                n += 1;
                keys.insert(rec.key.clone().unwrap());
                let names: Vec<&str> = rec.headers.iter().map(|h| &*h.key).collect();
                assert_eq!(names, HEADER_NAMES);
                let value = rec.value.unwrap();
                assert_eq!(value.len(), 300);
                let doc: serde_json::Value = serde_json::from_slice(&value).unwrap();
                assert!(seen_orders.insert(doc["order_id"].as_str().unwrap().to_owned()));
            }
            Received::End => {}
        }
    }
    assert_eq!(keys.len(), 40, "the key space is bounded and used");
    assert_eq!(seen_orders.len(), 5500, "every record once");

    let mut copts = ConsumeOptions::new("perf-rt");
    copts.records = Some(5500);
    let c = perf::consume::run(&config, &copts, &stop, |_| {})
        .await
        .unwrap();
    assert_eq!(
        (c.records, c.latency_from_header, c.partitions),
        (5500, 5500, 3)
    );
    assert!(c.complete && !c.idle_timeout && !c.interrupted, "{c:?}");
    assert!(c.p50_ms > 0.0 && c.p50_ms <= c.p99_ms && c.p999_ms <= c.max_ms);
    assert!(c.bytes >= r.bytes, "warm-up records are read too");
}

/// With the cluster gone for the whole run, every record ends as a timeout: none is lost from
/// the count.
#[test]
fn every_record_is_counted_when_none_can_be_delivered() {
    let cluster = EmbeddedCluster::start(1).unwrap();
    cluster.create_topic("gone", 1, 1).unwrap();
    cluster.mock().broker_down(1).unwrap();
    let mut config = Config::with_bootstrap(cluster.bootstrap_servers());
    config.producer.delivery_timeout_ms = 1500;
    let mut options = PerfOptions::new("gone");
    options.records = Some(300);
    options.warmup = Warmup::Records(30);
    let payload = Arc::new(PayloadSpec::synthetic(64, Some(10), true).unwrap());
    let r =
        perf::produce::run(&config, &options, &payload, &AtomicBool::new(false), |_| {}).unwrap();
    assert_eq!(
        (r.records, r.delivered, r.warmup_records, r.errors),
        (300, 0, 30, 330)
    );
    assert_eq!(
        r.errors_by_kind.into_iter().collect::<Vec<_>>(),
        [("timeout".to_owned(), 330)]
    );
    assert_eq!((r.records_per_sec, r.max_ms), (0.0, 0.0));
}
