//! The gateway as a hostile or careless client uses it: retries, parallel duplicates, big
//! batches, odd encodings, slow or half-sent requests. Each test asserts what lands in Kafka.

use super::*;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;

/// An ndjson batch of `n` events of key `key`, each carrying its sequence number.
fn batch(key: &str, n: usize) -> String {
    (0..n)
        .map(|i| format!("{{\"order_id\":\"{key}\",\"seq\":{i},\"amount\":1}}\n"))
        .collect()
}

fn seqs(records: &[ConsumedRecord]) -> Vec<u64> {
    records
        .iter()
        .map(|r| {
            let v: Value = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
            v["seq"].as_u64().unwrap()
        })
        .collect()
}

/// Every record of `topic` now, waiting 2 s after `n` have arrived for any more.
async fn all_of(topic: &str, n: usize) -> Vec<ConsumedRecord> {
    let first = read(topic, n).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let again = read(topic, first.len()).await;
    assert_eq!(again.len(), first.len(), "records kept arriving in {topic}");
    again
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicates_of_one_idempotency_key_write_once_and_share_one_answer() {
    let rig = Arc::new(rig(Config::with_bootstrap(&broker().bootstrap), 1 << 20).await);
    let body = batch("DUP", 5);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (rig, body) = (Arc::clone(&rig), body.clone());
            tokio::spawn(async move {
                post(
                    &rig,
                    "orders",
                    "application/x-ndjson",
                    &body,
                    &[("idempotency-key", "same")],
                )
                .await
            })
        })
        .collect();
    let answers: Vec<_> = join_all(tasks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    for (s, _, b) in &answers {
        assert_eq!(*s, StatusCode::OK, "{b}");
        assert_eq!(b["results"], answers[0].2["results"], "one answer for all");
    }
    let replayed = answers
        .iter()
        .filter(|(_, h, _)| h.get("idempotent-replayed").is_some())
        .count();
    assert_eq!(replayed, 19, "one request wrote, the others waited for it");
    let records = all_of(&rig.raw, 5).await;
    assert_eq!(seqs(&records), [0, 1, 2, 3, 4], "written once, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_client_went_away_is_finished_and_its_retry_gets_the_answer() {
    let rig = rig_with(
        Config::with_bootstrap(&broker().bootstrap),
        Some(&broker().bootstrap),
        4 << 20,
        "",
        "limits:\n  max_events_per_request: 30000\n",
    )
    .await;
    let body = batch("GONE", 30_000);
    let request = || {
        Request::post("/v1/datasets/orders/events")
            .header("content-type", "application/x-ndjson")
            .header("idempotency-key", "gone-1")
            .body(Body::from(body.clone()))
            .unwrap()
    };
    // The client disconnects 0.3 s in: the response future is dropped.
    let router = app(Arc::clone(&rig.gateway));
    let first = tokio::time::timeout(Duration::from_millis(300), router.oneshot(request())).await;
    assert!(first.is_err(), "the first request should still be running");
    let (s, h, b) = call(&rig, request()).await;
    let b: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(h.get("idempotent-replayed").unwrap(), "true");
    assert_eq!(b["accepted"], 30_000);
    let records = all_of(&rig.raw, 30_000).await;
    assert_eq!(records.len(), 30_000, "written once");
    // In flight back to zero, and the events of the abandoned request counted.
    let (_, _, metrics) = get(&rig, "/metrics").await;
    assert!(
        metrics.contains("streamlake_gateway_requests_in_flight 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "streamlake_gateway_events_total{dataset=\"orders\",outcome=\"accepted\"} 30000"
        ),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_key_with_another_body_is_refused_and_keys_are_scoped_per_api_key() {
    std::env::set_var("HOSTILE_KEY_A", "secret-a-0123456789");
    std::env::set_var("HOSTILE_KEY_B", "secret-b-0123456789");
    let rig = rig_with(
        Config::with_bootstrap(&broker().bootstrap),
        Some(&broker().bootstrap),
        1 << 20,
        "",
        "api_keys:\n  - name: tenant-a\n    key_env: HOSTILE_KEY_A\n  - name: tenant-b\n    key_env: HOSTILE_KEY_B\n",
    )
    .await;
    let a = [
        ("idempotency-key", "k-1"),
        ("authorization", "Bearer secret-a-0123456789"),
    ];
    let b = [
        ("idempotency-key", "k-1"),
        ("authorization", "Bearer secret-b-0123456789"),
    ];
    let first = r#"{"order_id":"A-1","card":"4111111111111111"}"#;
    let (s, _, _) = post(&rig, "orders", "application/json", first, &a).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, body) = post(
        &rig,
        "orders",
        "application/json",
        r#"{"order_id":"A-2"}"#,
        &a,
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"].as_str().unwrap().contains("k-1"), "{body}");
    // Tenant B's own k-1 is a new request, and B never sees A's answer.
    let (s, h, body) = post(&rig, "orders", "application/json", first, &b).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(h.get("idempotent-replayed").is_none());
    let records = all_of(&rig.raw, 2).await;
    let ids: Vec<&str> = records.iter().map(|r| header(r, "ingestion_id")).collect();
    assert_eq!(records.len(), 2, "A's first and B's: {ids:?}");
    assert_ne!(ids[0], ids[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_one_key_land_in_request_order_past_the_producer_queue() {
    let rig = rig_with(
        Config::with_bootstrap(&broker().bootstrap),
        Some(&broker().bootstrap),
        8 << 20,
        "",
        "limits:\n  max_events_per_request: 60000\n",
    )
    .await;
    let (s, _, b) = post(
        &rig,
        "orders",
        "application/x-ndjson",
        &batch("ONE", 52_000),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{}", b["failed"]);
    let records = all_of(&rig.raw, 52_000).await;
    let got = seqs(&records);
    assert_eq!(got.len(), 52_000);
    let inversions = got.windows(2).filter(|w| w[0] > w[1]).count();
    assert_eq!(inversions, 0, "events of one key out of request order");
    assert_eq!(got, (0..52_000).collect::<Vec<u64>>());
    let offsets: Vec<i64> = b["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["offset"].as_i64().unwrap())
        .collect();
    assert!(
        offsets.windows(2).all(|w| w[0] < w[1]),
        "offsets follow request order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingestion_ids_are_unique_and_numeric_keys_keep_their_text() {
    let rig = rig_with(
        Config::with_bootstrap(&broker().bootstrap),
        Some(&broker().bootstrap),
        1 << 20,
        "",
        "",
    )
    .await;
    let two = r#"[{"order_id":"a"},{"order_id":"b"}]"#;
    let (_, _, b1) = post(
        &rig,
        "orders",
        "application/json",
        two,
        &[("idempotency-key", "col")],
    )
    .await;
    let one = r#"{"order_id":"c"}"#;
    let (_, _, b2) = post(
        &rig,
        "orders",
        "application/json",
        one,
        &[("idempotency-key", "col-1")],
    )
    .await;
    let mut ids: Vec<String> = [&b1, &b2]
        .iter()
        .flat_map(|b| b["results"].as_array().unwrap().clone())
        .map(|r| r["ingestion_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 3);
    for id in &ids {
        assert_eq!(
            uuid::Uuid::parse_str(id).unwrap().get_version_num(),
            7,
            "{id}"
        );
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "ingestion ids must be unique: {b1} {b2}");

    let numbers = "{\"order_id\":1.50}\n{\"order_id\":123456789012345678901234567890}\n{\"order_id\":123456789012345678901234567891}\n{\"order_id\":-0.0}\n";
    let (s, _, b) = post(&rig, "orders", "application/x-ndjson", numbers, &[]).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let records = all_of(&rig.raw, 7).await;
    let mut keys: Vec<String> = records
        .iter()
        .map(|r| String::from_utf8(r.key.clone().unwrap().to_vec()).unwrap())
        .filter(|k| !["a", "b", "c"].contains(&k.as_str()))
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "-0.0",
            "1.50",
            "123456789012345678901234567890",
            "123456789012345678901234567891"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_over_the_message_size_limit_is_a_permanent_failure_not_503() {
    let mut kafka = Config::with_bootstrap(&broker().bootstrap);
    kafka
        .producer
        .properties
        .insert("message.max.bytes".into(), "3000".into());
    let rig = rig_with(kafka, Some(&broker().bootstrap), 1 << 20, "", "").await;
    let big = format!(r#"{{"order_id":"BIG","pad":"{}"}}"#, "x".repeat(10_000));
    let (s, h, b) = post(&rig, "orders", "application/json", &big, &[]).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(h.get("retry-after").is_none());
    assert_eq!(b["results"][0]["retriable"], false, "{b}");
    assert_eq!(b["results"][0]["reason"], "too_large", "{b}");
    let mixed = format!("{{\"order_id\":\"SMALL\"}}\n{big}\n");
    let (s, _, b) = post(&rig, "orders", "application/x-ndjson", &mixed, &[]).await;
    assert_eq!(s, StatusCode::MULTI_STATUS, "{b}");
    assert_eq!(
        (b["accepted"].as_u64(), b["failed"].as_u64()),
        (Some(1), Some(1))
    );
    let records = all_of(&rig.raw, 1).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].key.as_deref(), Some(&b"SMALL"[..]));
    let (_, _, metrics) = get(&rig, "/metrics").await;
    assert!(
        metrics
            .contains("streamlake_gateway_events_total{dataset=\"orders\",outcome=\"rejected\"} 2"),
        "{metrics}"
    );
    let report = rig.gateway.close(Duration::from_secs(5));
    assert_eq!((report.accepted, report.rejected), (1, 2));
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_types_encodings_duplicate_keys_and_formats_are_checked() {
    let rig = rig_with(
        Config::with_bootstrap(&broker().bootstrap),
        Some(&broker().bootstrap),
        1 << 20,
        "    schema: strict.schema.json\n",
        "",
    )
    .await;
    let ok = r#"{"order_id":"E-1","amount":5,"at":"2026-12-01T10:00:00Z"}"#;
    for ct in [
        "application/jsonfoo",
        "text/json",
        "application/json; charset=iso-8859-1",
    ] {
        let (s, _, b) = post(&rig, "orders", ct, ok, &[]).await;
        assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct}: {b}");
    }
    let send = |enc: &'static str, body: Vec<u8>| {
        Request::post("/v1/datasets/orders/events")
            .header("content-type", "application/json")
            .header("content-encoding", enc)
            .body(Body::from(body))
            .unwrap()
    };
    let (s, _, b) = call(&rig, send("gzip", gzip(ok.as_bytes()))).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    let (s, _, _) = call(
        &rig,
        send("zstd", zstd::encode_all(ok.as_bytes(), 3).unwrap()),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = call(&rig, send("br", ok.as_bytes().to_vec())).await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (s, _, _) = call(&rig, send("gzip", gzip(&vec![b' '; 50 << 20]))).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "a gzip bomb");
    let (s, _, _) = call(&rig, send("gzip", b"plain text".to_vec())).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // Duplicate keys: the value validated and the bytes forwarded can never differ.
    let dup = r#"{"order_id":"E-2","amount":-5,"amount":5}"#;
    let (s, _, b) = post(&rig, "orders", "application/json", dup, &[]).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["results"][0]["step"], "parse");
    assert!(
        b["results"][0]["errors"][0]
            .as_str()
            .unwrap()
            .contains("/amount"),
        "{b}"
    );
    for bad in [
        r#"{"order_id":"E-3","at":"yesterday"}"#,
        r#"{"order_id":"E-4","email":"not an address"}"#,
    ] {
        let (s, _, b) = post(&rig, "orders", "application/json", bad, &[]).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {b}");
        assert_eq!(b["results"][0]["step"], "schema", "{b}");
    }
    // Two written (gzip, zstd), three dead-lettered with their original bytes.
    let raw = all_of(&rig.raw, 2).await;
    assert!(raw
        .iter()
        .all(|r| r.value.as_deref() == Some(ok.as_bytes())));
    assert_eq!(raw.len(), 2);
    let dlq = all_of(&rig.dlq, 3).await;
    assert_eq!(dlq.len(), 3);
    assert_eq!(dlq[0].value.as_deref(), Some(dup.as_bytes()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_events_requests_or_bytes_at_once_are_shed() {
    let rig = rig_with(
        Config::with_bootstrap(&broker().bootstrap),
        Some(&broker().bootstrap),
        1 << 20,
        "",
        "limits:\n  max_events_per_request: 100\n  max_concurrent_requests: 1\n",
    )
    .await;
    let (s, _, b) = post(
        &rig,
        "orders",
        "application/x-ndjson",
        &batch("MANY", 101),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{b}");
    // One request holds the only slot while its body trickles in; the next is shed at once.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    let slow = Request::post("/v1/datasets/orders/events")
        .header("content-type", "application/json")
        .body(Body::from_stream(tokio_stream(rx)))
        .unwrap();
    let router = app(Arc::clone(&rig.gateway));
    let held = tokio::spawn(async move { router.oneshot(slow).await.unwrap().status() });
    tx.send(Ok(b"{\"order_id\":".to_vec())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    let (s, h, b) = post(
        &rig,
        "orders",
        "application/json",
        r#"{"order_id":"X"}"#,
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{b}");
    assert!(h.get("retry-after").is_some());
    assert!(started.elapsed() < Duration::from_secs(1));
    tx.send(Ok(b"\"HELD\"}".to_vec())).await.unwrap();
    drop(tx);
    assert_eq!(held.await.unwrap(), StatusCode::OK);
    let records = all_of(&rig.raw, 1).await;
    assert_eq!(records.len(), 1, "only the held request wrote");
}

/// A stream of body chunks from a channel.
fn tokio_stream(
    mut rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

type Served = (
    Rig,
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<streamlake::gateway::ServeReport>,
);

/// A gateway served on a real socket with these HTTP settings.
async fn served(cfg: streamlake::gateway::HttpConfig) -> Served {
    let http = format!(
        "http:\n  body_timeout_ms: {}\n  header_timeout_ms: {}\n",
        cfg.body_timeout_ms, cfg.header_timeout_ms
    );
    let rig = rig_with(
        Config::with_bootstrap(&broker().bootstrap),
        Some(&broker().bootstrap),
        1 << 20,
        "",
        &http,
    )
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let router = app(Arc::clone(&rig.gateway));
    let server = tokio::spawn(async move {
        streamlake::gateway::serve(listener, router, &cfg, async {
            let _ = stopped.await;
        })
        .await
    });
    (rig, addr, stop, server)
}

/// Reads what the server sends until it closes the connection or `within` passes.
fn read_until_closed(mut s: TcpStream, within: Duration) -> (String, bool) {
    s.set_read_timeout(Some(within)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&out).into_owned(), true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&out).into_owned(), false),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_half_sent_and_idle_connections_are_closed_and_bounded() {
    let (rig, addr, stop, server) = served(streamlake::gateway::HttpConfig {
        header_timeout_ms: 500,
        body_timeout_ms: 500,
        max_connections: 4,
        shutdown_timeout_ms: 1000,
    })
    .await;
    let result = tokio::task::spawn_blocking(move || {
        // Half-sent headers: closed after the header timeout.
        let mut half = TcpStream::connect(addr).unwrap();
        half.write_all(b"POST /v1/datasets/orders/events HTTP/1.1\r\nHost: x\r\n").unwrap();
        let t = std::time::Instant::now();
        let (_, closed) = read_until_closed(half, Duration::from_secs(5));
        assert!(closed && t.elapsed() < Duration::from_secs(3), "half-sent headers kept open");
        // An idle connection: closed too.
        let idle = TcpStream::connect(addr).unwrap();
        let (_, closed) = read_until_closed(idle, Duration::from_secs(5));
        assert!(closed, "idle connection kept open");
        // A half-sent body: 408.
        let mut body = TcpStream::connect(addr).unwrap();
        body.write_all(b"POST /v1/datasets/orders/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"order_id\"").unwrap();
        let (resp, _) = read_until_closed(body, Duration::from_secs(5));
        assert!(resp.starts_with("HTTP/1.1 408"), "{resp}");
        // A body shorter than its Content-Length: 400, not 413.
        let mut short = TcpStream::connect(addr).unwrap();
        short.write_all(b"POST /v1/datasets/orders/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"order_id\":\"S\"}").unwrap();
        short.shutdown(std::net::Shutdown::Write).unwrap();
        let (resp, _) = read_until_closed(short, Duration::from_secs(5));
        assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
        // A malformed chunked body: 400.
        let mut chunked = TcpStream::connect(addr).unwrap();
        chunked.write_all(b"POST /v1/datasets/orders/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n").unwrap();
        let (resp, _) = read_until_closed(chunked, Duration::from_secs(5));
        assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
        // Many connections at once: at most 4 are served; /healthz answers once idle ones close.
        let hogs: Vec<TcpStream> = (0..20).map(|_| TcpStream::connect(addr).unwrap()).collect();
        let mut health = TcpStream::connect(addr).unwrap();
        health.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let (resp, _) = read_until_closed(health, Duration::from_secs(10));
        assert!(resp.starts_with("HTTP/1.1 200"), "healthz behind idle connections: {resp}");
        drop(hogs);
        // A half-sent request does not hold up the shutdown beyond its deadline.
        let mut last = TcpStream::connect(addr).unwrap();
        last.write_all(b"POST /v1/datasets/orders/events HTTP/1.1\r\n").unwrap();
        last
    })
    .await
    .unwrap();
    let t = std::time::Instant::now();
    stop.send(()).unwrap();
    let report = tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "shutdown took {:?}",
        t.elapsed()
    );
    let _ = report;
    drop(result);
    assert!(
        all_of(&rig.raw, 0).await.is_empty(),
        "nothing of the broken requests was written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_kafka_away_requests_meet_their_deadline_and_then_fail_fast() {
    let mut kafka = Config::with_bootstrap(unreachable_bootstrap());
    kafka.producer.circuit.failure_threshold = 3;
    let rig = rig_with(
        kafka,
        None,
        1 << 20,
        "",
        "limits:\n  request_timeout_ms: 1500\n",
    )
    .await;
    let event = r#"{"order_id":"AWAY"}"#;
    let mut took = Vec::new();
    let mut reasons = Vec::new();
    for _ in 0..6 {
        let t = std::time::Instant::now();
        let (s, h, b) = post(&rig, "orders", "application/json", event, &[]).await;
        took.push(t.elapsed());
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{b}");
        assert!(h.get("retry-after").is_some());
        assert_eq!(b["results"][0]["retriable"], true);
        reasons.push(b["results"][0]["reason"].as_str().unwrap().to_owned());
    }
    assert!(
        took.iter().all(|t| *t < Duration::from_secs(3)),
        "deadline not kept: {took:?}"
    );
    assert_eq!(&reasons[3..], ["circuit_open"; 3], "{reasons:?}");
    assert!(
        took[3..].iter().all(|t| *t < Duration::from_millis(200)),
        "not fast: {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_503_with_the_same_key_writes_each_event_once_with_its_first_ingestion_id() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let tansu = start_persistent_broker(port, dir.path());
    let mut kafka = Config::with_bootstrap(&tansu.addr);
    kafka.producer.request_timeout_ms = 500;
    // tansu 0.6.0's SQLite storage fails a producer id issued before its restart (see
    // broker_down_is_503_and_requests_succeed_after_restart).
    kafka.producer.enable_idempotence = false;
    kafka.producer.circuit.open_ms = 300;
    let rig = rig_with(
        kafka,
        Some(&tansu.addr),
        1 << 20,
        "",
        "limits:\n  request_timeout_ms: 1500\n",
    )
    .await;
    tansu.kill();
    let body = batch("RETRY", 3);
    let key = [("idempotency-key", "retry-1")];
    let (s, _, first) = post(&rig, "orders", "application/x-ndjson", &body, &key).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{first}");
    let ids: Vec<&str> = first["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ingestion_id"].as_str().unwrap())
        .collect();
    let tansu = start_persistent_broker(port, dir.path());
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let last = loop {
        let (s, _, b) = post(&rig, "orders", "application/x-ndjson", &body, &key).await;
        if s == StatusCode::OK {
            break b;
        }
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{b}");
        assert!(
            std::time::Instant::now() < deadline,
            "still 503 a minute after the restart: {b}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let again: Vec<&str> = last["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ingestion_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, again, "a retry keeps each event's ingestion id");
    // Once more: now a replay, nothing written.
    let (s, h, b) = post(&rig, "orders", "application/x-ndjson", &body, &key).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h.get("idempotent-replayed").unwrap(), "true");
    assert_eq!(b["results"], last["results"]);
    let records = common::read_on(&tansu.addr, &rig.raw, 3).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let records_after = common::read_on(&tansu.addr, &rig.raw, records.len()).await;
    assert_eq!(records_after.len(), 3, "each event once");
    let written: Vec<&str> = records_after
        .iter()
        .map(|r| header(r, "ingestion_id"))
        .collect();
    assert_eq!(written, ids);
    assert_eq!(seqs(&records_after), [0, 1, 2]);
}
