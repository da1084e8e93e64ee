//! The HTTP API: routes, request parsing, and the truthful per-event response.

use super::auth::{ApiKeys, Denied};
use super::config::GatewayConfig;
use super::ingest::{Dataset, Invalid, Meta};
use super::metrics::GatewayMetrics;
use crate::config::Config;
use crate::producer::Producer;
use crate::registry::{Registry, Role};
use crate::serdes::json_schema::JsonSchemaCodec;
use crate::serdes::{LocalSchema, Serializer};
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::future::join_all;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tracing::Instrument;

/// How many idempotency keys are remembered (per process).
const IDEMPOTENCY_CAPACITY: usize = 100_000;

/// How long `/readyz` waits for the cluster's metadata before answering 503.
const READY_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Shared state of the gateway.
pub struct Gateway {
    datasets: HashMap<String, Dataset>,
    /// Writes valid events to their topics and invalid ones to their dead-letter topics.
    producer: Producer,
    producer_service: String,
    max_body_bytes: usize,
    keys: ApiKeys,
    metrics: GatewayMetrics,
    openapi: String,
    replays: Mutex<HashMap<(String, String), (StatusCode, Value)>>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("datasets", &self.datasets.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
#[error("gateway: {0}")]
pub struct GatewayError(pub String);

impl Gateway {
    /// Builds the gateway: schemas are loaded and checked (registry formats are registered, or
    /// their latest version fetched, now), API keys resolved, and one producer created with the
    /// production defaults, for both the events and the dead-letter topics.
    pub async fn new(config: &GatewayConfig, kafka: &Config) -> Result<Self, GatewayError> {
        let needs_registry = config
            .datasets
            .values()
            .any(|d| d.format.format().uses_registry());
        let registry = match (&kafka.schema_registry.url, needs_registry) {
            (Some(_), true) => Some(Arc::new(
                Registry::new(&kafka.schema_registry).map_err(|e| GatewayError(e.to_string()))?,
            )),
            (None, true) => {
                return Err(GatewayError(
                    "a dataset uses a registry format: set kafka.schema_registry.url (or STREAMLAKE_SCHEMA_REGISTRY_URL)".into(),
                ))
            }
            _ => None,
        };
        let mut datasets = HashMap::new();
        for (name, d) in &config.datasets {
            let at = |e: &dyn std::fmt::Display| GatewayError(format!("datasets.{name}: {e}"));
            let format = d.format.format();
            let (schema, serializer) = match (format.schema_type(), &d.schema) {
                (None, None) => (None, None),
                (None, Some(path)) => {
                    let text = std::fs::read_to_string(path)
                        .map_err(|e| at(&format_args!("cannot read {}: {e}", path.display())))?;
                    (Some(JsonSchemaCodec::new(&text).map_err(|e| at(&e))?), None)
                }
                (Some(schema_type), path) => {
                    let local = match path {
                        Some(p) => {
                            let l =
                                LocalSchema::from_file(p, Some(schema_type)).map_err(|e| at(&e))?;
                            Some(match &d.message {
                                Some(m) => l.with_message(m).map_err(|e| at(&e))?,
                                None => l,
                            })
                        }
                        None => None,
                    };
                    let mut settings = kafka.schema_registry.clone();
                    settings.use_latest_version |= local.is_none();
                    let serializer =
                        Serializer::new(format, Role::Value, local, registry.clone(), &settings)
                            .map_err(|e| at(&e))?;
                    serializer.prepare(&d.topic).await.map_err(|e| at(&e))?;
                    (None, Some(serializer))
                }
            };
            datasets.insert(
                name.clone(),
                Dataset {
                    name: name.clone(),
                    config: d.clone(),
                    schema,
                    serializer,
                },
            );
        }
        let keys = ApiKeys::new(&config.api_keys).map_err(GatewayError)?;
        let mut metrics = GatewayMetrics::new();
        let producer_metrics = crate::metrics::ProducerMetrics::default();
        producer_metrics.register(&mut metrics.registry);
        let producer = Producer::with_metrics(kafka, producer_metrics)
            .map_err(|e| GatewayError(e.to_string()))?;
        let mut names: Vec<&str> = config.datasets.keys().map(String::as_str).collect();
        names.sort_unstable();
        Ok(Self {
            datasets,
            producer,
            producer_service: config.producer_service.clone(),
            max_body_bytes: config.max_body_bytes,
            openapi: openapi_document(&names, keys.enabled()),
            keys,
            metrics,
            replays: Mutex::new(HashMap::new()),
        })
    }

    /// Flushes the producer within `timeout`, then hands every record still undelivered back
    /// to its sender; every such record is reported in the counts. Also returns how many of
    /// the delivered records were invalid events written to dead-letter topics. Takes `&self`
    /// because the HTTP server's last connection task may still hold the gateway for a moment
    /// after the server has stopped.
    pub fn close(&self, timeout: Duration) -> (crate::producer::CloseReport, u64) {
        let report = self.producer.shutdown(timeout);
        let metrics = self.producer.metrics();
        (report, metrics.outcome_count("dead_lettered", "none"))
    }
}

/// The OpenAPI document, with the configured datasets as the path parameter's values and the
/// bearer scheme when API keys are on.
fn openapi_document(datasets: &[&str], api_keys: bool) -> String {
    let mut doc: Value =
        serde_json::from_str(include_str!("openapi.json")).expect("openapi.json is valid JSON");
    let op = &mut doc["paths"]["/v1/datasets/{dataset}/events"]["post"];
    op["parameters"][0]["schema"]["enum"] = json!(datasets);
    if api_keys {
        op["security"] = json!([{"bearer": []}]);
        doc["components"]["securitySchemes"] =
            json!({"bearer": {"type": "http", "scheme": "bearer"}});
    }
    doc.to_string()
}

/// The router, without a socket (tests call it directly).
pub fn app(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/v1/datasets/{dataset}/events", post(ingest))
        .route(
            "/healthz",
            get(|| async { Json(json!({"status": "alive"})) }),
        )
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .with_state(gateway)
}

async fn metrics(State(gw): State<Arc<Gateway>>) -> Response {
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        gw.metrics.registry.encode(),
    )
        .into_response()
}

async fn openapi(State(gw): State<Arc<Gateway>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        gw.openapi.clone(),
    )
        .into_response()
}

/// An error response: a status and a safe message (internals are logged, not sent).
#[derive(Debug)]
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.0, Json(json!({"error": self.1}))).into_response();
        if self.0 == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        if self.0 == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

impl From<Denied> for ApiError {
    fn from(d: Denied) -> Self {
        match d {
            Denied::Missing => Self(
                StatusCode::UNAUTHORIZED,
                "an API key is required: send `Authorization: Bearer <key>`".into(),
            ),
            Denied::Unknown => Self(StatusCode::UNAUTHORIZED, "the API key is not valid".into()),
            Denied::Forbidden(name) => Self(
                StatusCode::FORBIDDEN,
                format!("API key `{name}` may not write to this dataset"),
            ),
            Denied::Limited(name, _) => Self(
                StatusCode::TOO_MANY_REQUESTS,
                format!("API key `{name}` is over its rate limit; retry later"),
            ),
        }
    }
}

async fn ready(State(gw): State<Arc<Gateway>>) -> Response {
    // Asked over the producer's own connections: ready means the client that writes events
    // can reach the cluster.
    let probe = Arc::clone(&gw);
    let ok = tokio::task::spawn_blocking(move || {
        probe.producer.describe(None, READY_PROBE_TIMEOUT).is_ok()
    })
    .await
    .unwrap_or(false);
    if ok {
        Json(json!({"status": "ready"})).into_response()
    } else {
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "Kafka is not reachable".into(),
        )
        .into_response()
    }
}

/// `line`/`column` of a JSON error as a byte offset into `text`.
fn byte_offset(text: &str, line: usize, column: usize) -> usize {
    text.split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum::<usize>()
        + column.saturating_sub(1)
}

/// The events of a body, each as its original JSON text.
fn split_events<'a>(content_type: &str, body: &'a str) -> Result<Vec<&'a str>, ApiError> {
    let malformed = |e: serde_json::Error, base: usize, text: &str| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!(
                "malformed JSON at byte {}: {e}",
                base + byte_offset(text, e.line(), e.column())
            ),
        )
    };
    let events: Vec<&str> = if content_type.starts_with("application/json") {
        let raw: &RawValue = serde_json::from_str(body).map_err(|e| malformed(e, 0, body))?;
        if raw.get().trim_start().starts_with('[') {
            let items: Vec<&RawValue> =
                serde_json::from_str(raw.get()).map_err(|e| malformed(e, 0, body))?;
            items.into_iter().map(RawValue::get).collect()
        } else {
            vec![raw.get()]
        }
    } else if content_type.starts_with("application/x-ndjson")
        || content_type.starts_with("application/jsonl")
    {
        let mut out = Vec::new();
        let mut base = 0;
        for line in body.split_inclusive('\n') {
            if !line.trim().is_empty() {
                let _: &RawValue =
                    serde_json::from_str(line).map_err(|e| malformed(e, base, line))?;
                out.push(line.trim_end());
            }
            base += line.len();
        }
        out
    } else {
        return Err(ApiError(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("content type `{content_type}` is not accepted: send application/json (an event or an array) or application/x-ndjson"),
        ));
    };
    if events.is_empty() {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "no events in the request".into(),
        ));
    }
    Ok(events)
}

async fn ingest(
    State(gw): State<Arc<Gateway>>,
    Path(dataset): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    gw.metrics.in_flight.inc();
    // One span per request, the child of the caller's span when it sent a `traceparent`.
    let span = tracing::info_span!("ingest", dataset = %dataset);
    let caller_trace = traceparent(&headers);
    if let Some(tp) = caller_trace {
        crate::logging::set_parent(&span, tp);
    }
    let resp = match ingest_inner(&gw, &dataset, &headers, caller_trace, body)
        .instrument(span)
        .await
    {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    gw.metrics.in_flight.dec();
    let label = if gw.datasets.contains_key(&dataset) {
        dataset.as_str()
    } else {
        "unknown"
    };
    gw.metrics.request(
        label,
        resp.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    resp
}

/// The caller's `Idempotency-Key`: 1 to 200 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let bytes = v.as_bytes();
    if bytes.is_empty() || bytes.len() > 200 || !bytes.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "Idempotency-Key must be 1 to 200 visible ASCII characters".into(),
        ));
    }
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

/// A well-formed W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`), or nothing.
fn traceparent(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get("traceparent")?.to_str().ok()?;
    let parts: Vec<&str> = v.split('-').collect();
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    (parts.len() == 4
        && hex(parts[0], 2)
        && parts[0] != "ff"
        && hex(parts[1], 32)
        && parts[1] != "0".repeat(32)
        && hex(parts[2], 16)
        && parts[2] != "0".repeat(16)
        && hex(parts[3], 2))
    .then_some(v)
}

/// `caller_trace` is the request's well-formed `traceparent`, if any.
async fn ingest_inner(
    gw: &Gateway,
    dataset: &str,
    headers: &HeaderMap,
    caller_trace: Option<&str>,
    body: Body,
) -> Result<Response, ApiError> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let key_name = match gw.keys.check(authorization, dataset) {
        Ok(name) => name,
        Err(Denied::Limited(name, wait)) => {
            tracing::warn!(dataset, api_key = %name, "rate limited");
            let mut resp = ApiError::from(Denied::Limited(name, wait)).into_response();
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait));
            return Ok(resp);
        }
        Err(denied) => {
            tracing::warn!(dataset, reason = ?denied, "request refused");
            return Err(denied.into());
        }
    };
    let ds = gw.datasets.get(dataset).ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            format!("unknown dataset `{dataset}`"),
        )
    })?;
    let idempotency_key = idempotency_key(headers)?;
    if let Some(k) = &idempotency_key {
        if let Some((status, body)) = gw
            .replays
            .lock()
            .expect("lock")
            .get(&(dataset.to_owned(), k.clone()))
            .cloned()
        {
            let mut resp = (status, Json(body)).into_response();
            resp.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            return Ok(resp);
        }
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let bytes: Bytes = axum::body::to_bytes(body, gw.max_body_bytes)
        .await
        .map_err(|_| {
            ApiError(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is larger than {} bytes", gw.max_body_bytes),
            )
        })?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("the body is not UTF-8 (byte {})", e.valid_up_to()),
        )
    })?;
    let events = split_events(&content_type, text)?;

    let now = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
    // With spans exported, records name this request's span as their parent; otherwise the
    // caller's `traceparent` is passed on as it came.
    let own_trace = crate::logging::traceparent();
    let meta = Meta {
        producer_service: &gw.producer_service,
        ingested_at: now.clone(),
        traceparent: own_trace.as_deref().or(caller_trace),
    };
    gw.metrics
        .bytes(dataset, events.iter().map(|e| e.len() as u64).sum());
    let single = events.len() == 1;
    let mut sends = Vec::with_capacity(events.len());
    for (i, raw) in events.iter().enumerate() {
        let ingestion_id = match (&idempotency_key, single) {
            (Some(k), true) => k.clone(),
            (Some(k), false) => format!("{k}-{i}"),
            (None, _) => uuid::Uuid::now_v7().to_string(),
        };
        let hdrs = ds.headers(&meta, &ingestion_id);
        let parsed: Value = serde_json::from_str(raw)
            .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("malformed JSON: {e}")))?;
        let checked = ds
            .validate(&parsed, raw.as_bytes())
            .and_then(|key| Ok((key, ds.encode(&parsed, raw.as_bytes())?)));
        let (record, invalid) = match checked {
            Ok((key, value)) => (ds.raw_record(value, key, &hdrs), None),
            Err(invalid) => (
                ds.dlq_record(raw.as_bytes(), &invalid, &hdrs, &now),
                Some(invalid),
            ),
        };
        let dead_letter = invalid.is_some();
        sends.push((
            ingestion_id,
            invalid,
            gw.producer.send_event(record, dead_letter),
        ));
    }
    let (ids, invalids, futures): (Vec<_>, Vec<_>, Vec<_>) =
        sends
            .into_iter()
            .fold((vec![], vec![], vec![]), |mut acc, (a, b, c)| {
                acc.0.push(a);
                acc.1.push(b);
                acc.2.push(c);
                acc
            });
    let outcomes = join_all(futures).await;
    let mut results = Vec::with_capacity(outcomes.len());
    let (mut accepted, mut dead_lettered, mut failed) = (0u64, 0u64, 0u64);
    for ((id, invalid), outcome) in ids.into_iter().zip(invalids).zip(outcomes) {
        results.push(match (invalid, outcome) {
            (None, Ok(d)) => {
                accepted += 1;
                tracing::info!(dataset, api_key = key_name, topic = %d.topic, partition = d.partition, offset = d.offset, ingestion_id = %id, "accepted");
                json!({"ingestion_id": id, "status": "accepted", "topic": d.topic, "partition": d.partition, "offset": d.offset})
            }
            (Some(Invalid { step, errors }), Ok(d)) => {
                dead_lettered += 1;
                tracing::warn!(dataset, step, errors = ?errors, dlq_topic = %d.topic, offset = d.offset, ingestion_id = %id, "invalid event dead-lettered");
                json!({"ingestion_id": id, "status": "invalid", "step": step, "errors": errors,
                       "dlq": {"topic": d.topic, "partition": d.partition, "offset": d.offset}})
            }
            (_, Err(e)) => {
                failed += 1;
                tracing::error!(dataset, ingestion_id = %id, error = %e.error, "event not written to Kafka");
                json!({"ingestion_id": id, "status": "failed", "error": "not written to Kafka; retry later", "retriable": e.error.is_retriable()})
            }
        });
    }
    gw.metrics.events(dataset, "accepted", accepted);
    gw.metrics.events(dataset, "invalid", dead_lettered);
    gw.metrics.events(dataset, "failed", failed);
    let status = if failed > 0 {
        StatusCode::SERVICE_UNAVAILABLE
    } else if dead_lettered == 0 {
        StatusCode::OK
    } else if accepted == 0 {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::MULTI_STATUS
    };
    let body = json!({"accepted": accepted, "invalid": dead_lettered, "failed": failed, "results": results});
    if let (Some(k), true) = (
        idempotency_key,
        status.is_success() || status == StatusCode::UNPROCESSABLE_ENTITY,
    ) {
        let mut replays = gw.replays.lock().expect("lock");
        if replays.len() >= IDEMPOTENCY_CAPACITY {
            replays.clear();
        }
        replays.insert((dataset.to_owned(), k), (status, body.clone()));
    }
    let mut resp = (status, Json(body)).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_bodies_and_names_byte_positions() {
        assert_eq!(
            split_events("application/json", r#"{"a":1}"#).unwrap(),
            [r#"{"a":1}"#]
        );
        assert_eq!(
            split_events("application/json; charset=utf-8", r#"[{"a":1}, {"b":2}]"#).unwrap(),
            [r#"{"a":1}"#, r#"{"b":2}"#]
        );
        assert_eq!(
            split_events("application/x-ndjson", "{\"a\":1}\n\n{\"b\":2}\n").unwrap(),
            ["{\"a\":1}", "{\"b\":2}"]
        );
        let e = split_events("application/x-ndjson", "{\"a\":1}\n{\"b\":}\n").unwrap_err();
        assert_eq!(e.0, StatusCode::BAD_REQUEST);
        assert!(e.1.contains("at byte 13"), "{}", e.1);
        let e = split_events("application/json", "{\"a\": tru}").unwrap_err();
        assert!(e.1.contains("at byte 9"), "{}", e.1);
        assert_eq!(
            split_events("text/plain", "x").unwrap_err().0,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        assert_eq!(
            split_events("application/json", "[]").unwrap_err().0,
            StatusCode::BAD_REQUEST
        );
    }
}
