//! The ingestion gateway against a real broker (tansu), through its router.

#![allow(clippy::unwrap_used)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use streamlake::gateway::{app, Gateway, GatewayConfig};
use streamlake::{Config, ConsumedRecord, Consumer, ConsumerOptions, Received, StartFrom};
use streamlake_test_support::{broker, create_topic, unique_topic, unreachable_bootstrap};
use tower::ServiceExt;

const SCHEMA: &str = r#"{"type":"object","required":["order_id","amount"],
  "properties":{"order_id":{"type":"string"},"amount":{"type":"number","minimum":0}}}"#;

struct Rig {
    gateway: Arc<Gateway>,
    raw: String,
    dlq: String,
    _dir: tempfile::TempDir,
}

fn rig(kafka: Config, max_body: usize) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("order.schema.json"), SCHEMA).unwrap();
    let (raw, dlq) = (unique_topic("orders-raw"), unique_topic("orders-dlq"));
    if kafka.bootstrap_servers == broker().bootstrap {
        create_topic(&broker().bootstrap, &raw, 2);
        create_topic(&broker().bootstrap, &dlq, 1);
    }
    let yaml = format!(
        "listen: 127.0.0.1:0\nproducer_service: ingestion-api\nmax_body_bytes: {max_body}\ndatasets:\n  orders:\n    topic: {raw}\n    dlq_topic: {dlq}\n    key: /order_id\n    schema: order.schema.json\n    schema_version: v1\n"
    );
    let path = dir.path().join("gateway.yaml");
    std::fs::write(&path, yaml).unwrap();
    let cfg = GatewayConfig::from_file(&path).unwrap();
    Rig {
        gateway: Arc::new(Gateway::new(&cfg, &kafka).unwrap()),
        raw,
        dlq,
        _dir: dir,
    }
}

async fn post(
    rig: &Rig,
    dataset: &str,
    content_type: &str,
    body: &str,
    extra: &[(&str, &str)],
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let mut req = Request::post(format!("/v1/datasets/{dataset}/events"))
        .header("content-type", content_type);
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let resp = app(Arc::clone(&rig.gateway))
        .oneshot(req.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn read(topic: &str, n: usize) -> Vec<ConsumedRecord> {
    let consumer = Consumer::new(
        &Config::with_bootstrap(&broker().bootstrap),
        ConsumerOptions {
            report_end: true,
            ..Default::default()
        },
    )
    .unwrap();
    consumer.assign(topic, None, StartFrom::Beginning).unwrap();
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .unwrap()
            .unwrap()
        {
            Received::Record(r) => out.push(r),
            Received::End if out.len() >= n => break,
            Received::End => {}
        }
    }
    out
}

fn header<'a>(r: &'a ConsumedRecord, k: &str) -> &'a str {
    std::str::from_utf8(r.header(k).unwrap_or_else(|| panic!("header {k} missing"))).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_event_lands_with_its_key_and_every_header() {
    let rig = rig(Config::with_bootstrap(&broker().bootstrap), 1 << 20);
    let event = r#"{"order_id":"ORD-1","amount":19.99}"#;
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let (status, _, body) = post(
        &rig,
        "orders",
        "application/json",
        event,
        &[("traceparent", tp)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let result = &body["results"][0];
    assert_eq!(result["status"], "accepted");
    assert_eq!(result["topic"], rig.raw.as_str());
    let records = read(&rig.raw, 1).await;
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(
        (r.partition as i64, r.offset),
        (
            result["partition"].as_i64().unwrap(),
            result["offset"].as_i64().unwrap()
        )
    );
    assert_eq!(r.key.as_deref(), Some(&b"ORD-1"[..]));
    assert_eq!(r.value.as_deref(), Some(event.as_bytes()), "original bytes");
    assert_eq!(header(r, "dataset"), "orders");
    assert_eq!(header(r, "schema_version"), "v1");
    assert_eq!(header(r, "producer_service"), "ingestion-api");
    assert_eq!(
        header(r, "ingestion_id"),
        result["ingestion_id"].as_str().unwrap()
    );
    assert_eq!(
        uuid::Uuid::parse_str(header(r, "ingestion_id"))
            .unwrap()
            .get_version_num(),
        7
    );
    assert!(
        humantime::parse_rfc3339(header(r, "ingested_at")).is_ok(),
        "{}",
        header(r, "ingested_at")
    );
    assert_eq!(header(r, "traceparent"), tp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_events_go_to_the_dlq_and_a_mixed_batch_is_207() {
    let rig = rig(Config::with_bootstrap(&broker().bootstrap), 1 << 20);
    let bad = r#"{"order_id":"ORD-2","amount":-5}"#;
    let (status, _, body) = post(&rig, "orders", "application/json", bad, &[]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["results"][0]["status"], "invalid");
    assert_eq!(body["results"][0]["dlq"]["topic"], rig.dlq.as_str());
    assert!(
        body["results"][0]["errors"][0]
            .as_str()
            .unwrap()
            .contains("/amount"),
        "{body}"
    );

    let batch = "{\"order_id\":\"ORD-3\",\"amount\":1}\n{\"amount\":2}\n{\"order_id\":\"ORD-5\",\"amount\":3}\n";
    let (status, _, body) = post(&rig, "orders", "application/x-ndjson", batch, &[]).await;
    assert_eq!(status, StatusCode::MULTI_STATUS, "{body}");
    let statuses: Vec<&str> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["accepted", "invalid", "accepted"]);
    assert_eq!(body["results"][1]["step"], "key");
    assert_eq!(
        (body["accepted"].as_i64(), body["invalid"].as_i64()),
        (Some(2), Some(1))
    );

    let raw: Vec<String> = read(&rig.raw, 2)
        .await
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap())
        .collect();
    assert_eq!(raw.len(), 2);
    let dlq = read(&rig.dlq, 2).await;
    assert_eq!(dlq.len(), 2);
    assert_eq!(
        dlq[0].value.as_deref(),
        Some(bad.as_bytes()),
        "original payload bytes"
    );
    assert_eq!(header(&dlq[0], "dlq_step"), "schema");
    assert!(
        header(&dlq[0], "dlq_reason").contains("minimum"),
        "{}",
        header(&dlq[0], "dlq_reason")
    );
    assert!(humantime::parse_rfc3339(header(&dlq[0], "dlq_at")).is_ok());
    assert_eq!(header(&dlq[0], "dataset"), "orders");
    assert_eq!(header(&dlq[1], "dlq_step"), "key");
    assert_eq!(
        header(&dlq[1], "dlq_reason"),
        "/order_id: key field is missing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_is_the_ingestion_id_and_a_reuse_writes_nothing() {
    let rig = rig(Config::with_bootstrap(&broker().bootstrap), 1 << 20);
    let event = r#"{"order_id":"ORD-9","amount":1}"#;
    let (s1, _, b1) = post(
        &rig,
        "orders",
        "application/json",
        event,
        &[("idempotency-key", "req-123")],
    )
    .await;
    let (s2, h2, b2) = post(
        &rig,
        "orders",
        "application/json",
        event,
        &[("idempotency-key", "req-123")],
    )
    .await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK));
    assert_eq!(b1, b2);
    assert_eq!(b1["results"][0]["ingestion_id"], "req-123");
    assert_eq!(h2.get("idempotent-replayed").unwrap(), "true");
    let records = read(&rig.raw, 1).await;
    assert_eq!(records.len(), 1, "written once");
    assert_eq!(header(&records[0], "ingestion_id"), "req-123");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_statuses() {
    let rig = rig(Config::with_bootstrap(&broker().bootstrap), 64);
    let (s, _, b) = post(&rig, "nope", "application/json", "{}", &[]).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    let (s, _, _) = post(&rig, "orders", "text/plain", "{}", &[]).await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (s, _, b) = post(&rig, "orders", "application/json", "{\"order_id\": }", &[]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(b["error"].as_str().unwrap().contains("at byte 13"), "{b}");
    let (s, _, _) = post(
        &rig,
        "orders",
        "application/json",
        &format!("{{\"order_id\":\"{}\"}}", "x".repeat(100)),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let health = app(Arc::clone(&rig.gateway))
        .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let ready = app(Arc::clone(&rig.gateway))
        .oneshot(Request::get("/readyz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_down_is_503_with_retry_after_never_2xx() {
    let mut kafka = Config::with_bootstrap(unreachable_bootstrap());
    kafka.producer.delivery_timeout_ms = 1_000;
    kafka.producer.request_timeout_ms = 500;
    let rig = rig(kafka, 1 << 20);
    let batch = r#"[{"order_id":"A","amount":1},{"order_id":"B","amount":-1}]"#;
    let (status, headers, body) = post(&rig, "orders", "application/json", batch, &[]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(headers.get("retry-after").unwrap(), "5");
    assert_eq!(
        body["failed"], 2,
        "the invalid one is not dead-lettered either: {body}"
    );
    assert!(body["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["status"] == "failed"));
    let ready = app(Arc::clone(&rig.gateway))
        .oneshot(Request::get("/readyz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
}
