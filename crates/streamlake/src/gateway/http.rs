//! The HTTP/1.1 server around the router: connection limit, timeouts and a bounded shutdown.
//!
//! # Guarantees
//! - At most `max_connections` connections are open at once; past it, new connections wait in
//!   the listen backlog until one closes, so the process never runs out of file descriptors.
//! - A connection must send a complete request head within `header_timeout_ms`, whether it is
//!   new or idle between keep-alive requests; otherwise it is closed. A body must arrive
//!   within `body_timeout_ms` (408). Half-sent requests and idle connections cannot pile up.
//! - On shutdown the listener closes at once, idle connections are closed, requests in flight
//!   finish; after `shutdown_timeout_ms` the remaining connections are dropped. The events of a
//!   request whose connection was dropped still end with an outcome (their sends run on their
//!   own; see `server`).

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// `http:` in the gateway config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// A connection's time to send a whole request head (new, or idle between requests), in
    /// milliseconds. Default 10000.
    pub header_timeout_ms: u64,
    /// A request's time to send its whole body, in milliseconds; past it, 408. Default 30000.
    pub body_timeout_ms: u64,
    /// Connections open at once. Default 1024.
    pub max_connections: usize,
    /// How long a shutdown waits for requests in flight before closing their connections, in
    /// milliseconds. Default 30000.
    pub shutdown_timeout_ms: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            header_timeout_ms: 10_000,
            body_timeout_ms: 30_000,
            max_connections: 1024,
            shutdown_timeout_ms: 30_000,
        }
    }
}

/// How a server run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeReport {
    /// Connections still open at the shutdown deadline, dropped.
    pub dropped_connections: usize,
}

/// Serves `router` on `listener` until `shutdown` completes, then stops within the shutdown
/// deadline.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: &HttpConfig,
    shutdown: impl Future<Output = ()>,
) -> ServeReport {
    let slots = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(config.header_timeout_ms));
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: wait a moment
                    // instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let conn = http.serve_connection(
            TokioIo::new(stream),
            TowerToHyperService::new(router.clone()),
        );
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
            drop(slot);
        });
    }
    drop(listener);
    let deadline = Duration::from_millis(config.shutdown_timeout_ms);
    let open = config.max_connections.max(1) - slots.available_permits();
    tokio::select! {
        () = graceful.shutdown() => ServeReport { dropped_connections: 0 },
        () = tokio::time::sleep(deadline) => {
            let dropped = config.max_connections.max(1) - slots.available_permits();
            tracing::warn!(open, dropped, "shutdown deadline passed: closing the connections still open");
            ServeReport { dropped_connections: dropped }
        }
    }
}
