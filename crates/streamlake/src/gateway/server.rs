//! The HTTP API: routes, the ingestion flow, and the truthful per-event response.
//!
//! # Guarantees
//! - A request runs in a task of its own once it is read: a client that goes away does not
//!   cancel its sends, and its result is still recorded (idempotency store, metrics).
//! - The events of one request are handed to the producer one after the other, in request
//!   order, each waiting for queue room before the next: events of one key land in request
//!   order, at any request size.
//! - While Kafka is known to be away (the circuit breaker, `producer.circuit`, is open), a
//!   request is answered 503 at once, without waiting for the delivery timeout; one request is
//!   let through as a probe every `open_ms`, and a delivered probe closes the circuit.

use super::auth::{ApiKeys, Denied};
use super::body::{self, Refusal};
use super::config::GatewayConfig;
use super::idempotency::{self, Begin, Store};
use super::ingest::{Dataset, Invalid, Meta};
use super::limits::{Admission, LimitsConfig};
use super::metrics::GatewayMetrics;
use super::outcome::{render, EventOutcome, EventResult, Failure, Tally};
use crate::config::Config;
use crate::producer::{Admit, Circuit, Producer};
use crate::registry::{Registry, Role};
use crate::serdes::json_schema::JsonSchemaCodec;
use crate::serdes::{LocalSchema, Serializer};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::future::join_all;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tracing::Instrument;
use uuid::Uuid;

/// How long `/readyz` waits for the cluster's metadata before answering 503.
const READY_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Shared state of the gateway.
pub struct Gateway {
    datasets: HashMap<String, Dataset>,
    /// Writes valid events to their topics and invalid ones to their dead-letter topics.
    producer: Producer,
    producer_service: String,
    max_body_bytes: usize,
    body_timeout: Duration,
    limits: LimitsConfig,
    admission: Admission,
    keys: ApiKeys,
    metrics: GatewayMetrics,
    openapi: String,
    idempotency: Arc<Store>,
    circuit: Circuit,
    log_invalid_values: bool,
    totals: Totals,
}

/// Events by fate over the gateway's life, for the stop summary.
#[derive(Debug, Default)]
struct Totals {
    accepted: AtomicU64,
    invalid: AtomicU64,
    retriable: AtomicU64,
    rejected: AtomicU64,
}

/// What the gateway did over its life, and what its producer's close found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayReport {
    /// The producer's flush at close: records delivered, failed, purged.
    pub producer: crate::producer::CloseReport,
    /// Events answered as written to their topic.
    pub accepted: u64,
    /// Events answered as invalid, written to the dead-letter topic.
    pub dead_lettered: u64,
    /// Events answered as not written for a passing reason (Kafka away, deadline): the caller
    /// was told to retry.
    pub failed: u64,
    /// Events answered as never writable as sent (too large) or not writable by the gateway
    /// (no such topic, not authorized).
    pub rejected: u64,
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
        // Every event has its outcome within the request deadline: the delivery timeout is
        // kept inside it.
        let mut kafka = kafka.clone();
        let p = &mut kafka.producer;
        p.delivery_timeout_ms = p.delivery_timeout_ms.min(config.limits.request_timeout_ms);
        let circuit = Circuit::new(p.circuit.clone());
        let producer = Producer::with_metrics(&kafka, producer_metrics)
            .map_err(|e| GatewayError(e.to_string()))?;
        let mut names: Vec<&str> = config.datasets.keys().map(String::as_str).collect();
        names.sort_unstable();
        Ok(Self {
            datasets,
            producer,
            producer_service: config.producer_service.clone(),
            max_body_bytes: config.max_body_bytes,
            body_timeout: Duration::from_millis(config.http.body_timeout_ms),
            limits: config.limits.clone(),
            admission: Admission::new(&config.limits),
            openapi: openapi_document(&names, keys.enabled()),
            keys,
            metrics,
            idempotency: Store::new(config.idempotency.clone()),
            circuit,
            log_invalid_values: config.log_invalid_values,
            totals: Totals::default(),
        })
    }

    /// Flushes the producer within `timeout`, then hands every record still undelivered back
    /// to its sender; every such record is reported in the counts, beside the gateway's own
    /// count of events by the answer they got. Takes `&self`
    /// because the HTTP server's last connection task may still hold the gateway for a moment
    /// after the server has stopped.
    pub fn close(&self, timeout: Duration) -> GatewayReport {
        let producer = self.producer.shutdown(timeout);
        let t = &self.totals;
        GatewayReport {
            producer,
            accepted: t.accepted.load(Ordering::Relaxed),
            dead_lettered: t.invalid.load(Ordering::Relaxed),
            failed: t.retriable.load(Ordering::Relaxed),
            rejected: t.rejected.load(Ordering::Relaxed),
        }
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

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        Self(r.0, r.1)
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

/// Counts a request in `requests_in_flight` until dropped, however the request ends.
struct InFlight<'a>(&'a GatewayMetrics);

impl<'a> InFlight<'a> {
    fn new(metrics: &'a GatewayMetrics) -> Self {
        metrics.in_flight.inc();
        Self(metrics)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.dec();
    }
}

async fn ingest(
    State(gw): State<Arc<Gateway>>,
    Path(dataset): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    // One span per request, the child of the caller's span when it sent a `traceparent`.
    let span = tracing::info_span!("ingest", dataset = %dataset);
    let caller_trace = traceparent(&headers).map(str::to_owned);
    if let Some(tp) = &caller_trace {
        crate::logging::set_parent(&span, tp);
    }
    // The request runs on its own: if the client goes away, its events still get their
    // outcomes, the idempotency store its result and the metrics their counts.
    let task = tokio::spawn(
        async move {
            let in_flight = InFlight::new(&gw.metrics);
            let resp = handle(&gw, &dataset, &headers, caller_trace.as_deref(), body)
                .await
                .unwrap_or_else(IntoResponse::into_response);
            drop(in_flight);
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
        .instrument(span),
    );
    task.await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "request task failed");
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into()).into_response()
    })
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

/// The body bytes a request will hold, as far as its headers tell.
fn declared_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// One request, from its headers to its answer. `caller_trace` is the request's well-formed
/// `traceparent`, if any.
async fn handle(
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
            tracing::warn!(api_key = %name, "rate limited");
            let mut resp = ApiError::from(Denied::Limited(name, wait)).into_response();
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait));
            return Ok(resp);
        }
        Err(denied) => {
            tracing::warn!(reason = ?denied, "request refused");
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
    let layout = body::layout(headers)?;
    let encoding = body::encoding(headers)?;
    let declared = declared_length(headers);
    if declared.is_some_and(|n| n > gw.max_body_bytes) {
        return Err(ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than {} bytes", gw.max_body_bytes),
        ));
    }
    let holds = match (encoding, declared) {
        (body::Encoding::Identity, Some(n)) => n,
        _ => gw.max_body_bytes,
    };
    let _admitted = gw.admission.admit(holds).map_err(|shed| {
        tracing::warn!(reason = %shed, "request shed");
        ApiError(StatusCode::SERVICE_UNAVAILABLE, shed.to_string())
    })?;
    let bytes = body::read(body, encoding, gw.max_body_bytes, gw.body_timeout).await?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("the body is not UTF-8 (byte {})", e.valid_up_to()),
        )
    })?;
    let events = body::split(layout, text, gw.limits.max_events_per_request)?;
    let deadline = Instant::now() + Duration::from_millis(gw.limits.request_timeout_ms);

    let (claim, previous) = match idempotency_key {
        None => (None, None),
        Some(key) => {
            let layout_tag: &[u8] = match layout {
                body::Layout::Json => b"json",
                body::Layout::Lines => b"lines",
            };
            let print = idempotency::fingerprint(&[layout_tag, &bytes]);
            let key = idempotency::Key {
                scope: key_name.unwrap_or("").to_owned(),
                dataset: dataset.to_owned(),
                key,
            };
            loop {
                match gw.idempotency.begin(key.clone(), print) {
                    Begin::Run(claim, previous) => break (Some(claim), previous),
                    Begin::Replay(results) => {
                        let mut resp = respond(ds, &results);
                        resp.headers_mut()
                            .insert("idempotent-replayed", HeaderValue::from_static("true"));
                        return Ok(resp);
                    }
                    Begin::Conflict => {
                        return Err(ApiError(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            format!("Idempotency-Key `{}` was already used for a different request; send a new key with a new request", key.key),
                        ))
                    }
                    Begin::Wait(mut done) => {
                        if tokio::time::timeout_at(deadline.into(), done.changed())
                            .await
                            .is_err()
                        {
                            let mut resp = ApiError(
                                StatusCode::CONFLICT,
                                format!("a request with Idempotency-Key `{}` is still being processed; retry shortly to get its answer", key.key),
                            )
                            .into_response();
                            resp.headers_mut()
                                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                            return Ok(resp);
                        }
                    }
                }
            }
        }
    };
    gw.metrics
        .bytes(dataset, events.iter().map(|e| e.len() as u64).sum());
    let results: Arc<[EventResult]> = send(
        gw,
        ds,
        &events,
        previous.as_deref(),
        caller_trace,
        deadline,
        key_name,
    )
    .await
    .into();
    if let Some(claim) = claim {
        claim.finish(Arc::clone(&results));
    }
    Ok(respond(ds, &results))
}

/// The response for a request's results.
fn respond(ds: &Dataset, results: &[EventResult]) -> Response {
    let status = Tally::of(results).status();
    let body = render(results, &ds.config.topic, &ds.config.dlq_topic);
    let mut resp = (status, Json(body)).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    resp
}

/// Sends a request's events in order and waits for their outcomes. Events whose result in
/// `previous` (an earlier try under the same `Idempotency-Key`) is final are not sent again;
/// the others keep their ingestion ids.
async fn send(
    gw: &Gateway,
    ds: &Dataset,
    events: &[&str],
    previous: Option<&[EventResult]>,
    caller_trace: Option<&str>,
    deadline: Instant,
    key_name: Option<&str>,
) -> Vec<EventResult> {
    let now = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
    // With spans exported, records name this request's span as their parent; otherwise the
    // caller's `traceparent` is passed on as it came.
    let own_trace = crate::logging::traceparent();
    let meta = Meta {
        producer_service: &gw.producer_service,
        ingested_at: now.clone(),
        traceparent: own_trace.as_deref().or(caller_trace),
    };
    let admit = gw.circuit.admit();
    let mut results = Vec::with_capacity(events.len());
    let mut waiting = Vec::new();
    let mut tally = Tally::default();
    for (i, raw) in events.iter().enumerate() {
        let earlier = previous.and_then(|p| p.get(i));
        if let Some(done) = earlier.filter(|r| r.is_final()) {
            results.push(done.clone());
            continue;
        }
        let id = earlier.map_or_else(Uuid::now_v7, |r| r.id);
        if admit == Admit::Refuse {
            results.push(EventResult {
                id,
                outcome: EventOutcome::Failed(Failure::Retriable("circuit_open")),
            });
            tally.retriable += 1;
            continue;
        }
        let hdrs = ds.headers(&meta, &id.to_string());
        let checked = body::parse_event(raw)
            .map_err(Invalid::parse)
            .and_then(|event| {
                let key = ds.validate(&event, raw)?;
                Ok((key, ds.encode(&event, raw.as_bytes())?))
            });
        let (record, invalid) = match checked {
            Ok((key, value)) => (ds.raw_record(value, key, &hdrs), None),
            Err(invalid) => (
                ds.dlq_record(raw.as_bytes(), &invalid, &hdrs, &now),
                Some(invalid),
            ),
        };
        results.push(EventResult {
            id,
            outcome: EventOutcome::Failed(Failure::Retriable("timeout")),
        });
        match gw
            .producer
            .enqueue_marked(record, invalid.is_some(), Some(deadline))
            .await
        {
            Ok(delivering) => waiting.push((i, invalid, delivering)),
            Err(e) => results[i].outcome = not_written(gw, &mut tally, id, &e.error),
        }
    }
    let (slots, deliveries): (Vec<_>, Vec<_>) = waiting
        .into_iter()
        .map(|(i, invalid, d)| ((i, invalid), d))
        .unzip();
    let outcomes = join_all(deliveries).await;
    for ((i, invalid), outcome) in slots.into_iter().zip(outcomes) {
        let id = results[i].id;
        results[i].outcome = match (invalid, outcome) {
            (None, Ok(d)) => {
                gw.circuit.success();
                tally.accepted += 1;
                tracing::info!(api_key = key_name, topic = %d.topic, partition = d.partition, offset = d.offset, ingestion_id = %id, "accepted");
                EventOutcome::Accepted {
                    partition: d.partition,
                    offset: d.offset,
                }
            }
            (Some(invalid), Ok(d)) => {
                gw.circuit.success();
                tally.invalid += 1;
                let shown = if gw.log_invalid_values {
                    &invalid.errors
                } else {
                    &invalid.rules
                };
                tracing::warn!(step = invalid.step, errors = ?shown, dlq_topic = %d.topic, offset = d.offset, ingestion_id = %id, "invalid event dead-lettered");
                EventOutcome::Invalid {
                    step: invalid.step,
                    errors: invalid.errors.into(),
                    partition: d.partition,
                    offset: d.offset,
                }
            }
            (_, Err(e)) => not_written(gw, &mut tally, id, &e.error),
        };
    }
    let dataset = ds.name.as_str();
    gw.metrics.events(dataset, "accepted", tally.accepted);
    gw.metrics.events(dataset, "invalid", tally.invalid);
    gw.metrics
        .events(dataset, "failed", tally.retriable + tally.server);
    gw.metrics.events(dataset, "rejected", tally.rejected);
    let t = &gw.totals;
    t.accepted.fetch_add(tally.accepted, Ordering::Relaxed);
    t.invalid.fetch_add(tally.invalid, Ordering::Relaxed);
    t.retriable.fetch_add(tally.retriable, Ordering::Relaxed);
    t.rejected
        .fetch_add(tally.rejected + tally.server, Ordering::Relaxed);
    results
}

/// An event Kafka did not take (refused by the client or failed on delivery): logged, counted,
/// and told to the circuit breaker when the reason may pass.
fn not_written(
    gw: &Gateway,
    tally: &mut Tally,
    id: Uuid,
    error: &crate::producer::ProduceError,
) -> EventOutcome {
    let failure = Failure::of(error);
    if failure.is_retriable() {
        gw.circuit.failure();
    }
    tracing::error!(ingestion_id = %id, error = %error, "event not written to Kafka");
    let outcome = EventOutcome::Failed(failure);
    tally.add(&outcome);
    outcome
}
