//! The metrics endpoint of long-running commands: `/metrics`, `/healthz`, `/readyz`.

use super::{Metrics, CONTENT_TYPE};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;

/// Answers `/readyz`: `Ok(())` when ready, or why not.
pub type Readiness = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

struct Endpoint {
    metrics: Arc<Metrics>,
    ready: Readiness,
}

/// Binds `addr` and serves the metrics until the runtime stops. Returns the bound address
/// (port 0 picks a free one). `/healthz` answers 200 while the process runs; `/readyz` 200
/// or 503 with the reason, per `ready`.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    ready: Readiness,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(metrics_text))
        .route(
            "/healthz",
            get(|| async { Json(json!({"status": "alive"})) }),
        )
        .route("/readyz", get(readyz))
        .with_state(Arc::new(Endpoint { metrics, ready }));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics endpoint stopped");
        }
    });
    Ok(bound)
}

async fn metrics_text(State(e): State<Arc<Endpoint>>) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], e.metrics.encode()).into_response()
}

async fn readyz(State(e): State<Arc<Endpoint>>) -> Response {
    match (e.ready)() {
        Ok(()) => Json(json!({"status": "ready"})).into_response(),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not ready", "reason": why})),
        )
            .into_response(),
    }
}
