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

/// Descriptors kept free for the Kafka client, the listener and log files.
const DESCRIPTOR_RESERVE: usize = 64;

/// `wanted`, or fewer if the process may not open that many descriptors (the soft
/// `RLIMIT_NOFILE`, read from `/proc/self/limits`), so that connections can never take the
/// descriptors the Kafka client needs.
fn within_descriptor_limit(wanted: usize) -> usize {
    let limit = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| descriptor_limit(&text));
    match limit {
        Some(limit) if wanted + DESCRIPTOR_RESERVE > limit => {
            let capped = limit.saturating_sub(DESCRIPTOR_RESERVE).max(1);
            tracing::warn!(
                max_connections = wanted,
                descriptor_limit = limit,
                capped,
                "http.max_connections is above what the open-files limit allows; raise the limit (ulimit -n, LimitNOFILE=) to serve more connections"
            );
            capped
        }
        _ => wanted,
    }
}

/// The soft limit in a `/proc/<pid>/limits` text.
fn descriptor_limit(limits: &str) -> Option<usize> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Serves `router` on `listener` until `shutdown` completes, then stops within the shutdown
/// deadline.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: &HttpConfig,
    shutdown: impl Future<Output = ()>,
) -> ServeReport {
    let max_connections = within_descriptor_limit(config.max_connections.max(1));
    let slots = Arc::new(Semaphore::new(max_connections));
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
    let open = max_connections - slots.available_permits();
    tokio::select! {
        () = graceful.shutdown() => ServeReport { dropped_connections: 0 },
        () = tokio::time::sleep(deadline) => {
            let dropped = max_connections - slots.available_permits();
            tracing::warn!(open, dropped, "shutdown deadline passed: closing the connections still open");
            ServeReport { dropped_connections: dropped }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_stay_within_the_open_files_limit() {
        let text = "Limit                     Soft Limit           Hard Limit           Units\nMax processes             95000                95000                processes\nMax open files            1024                 524288               files\n";
        assert_eq!(descriptor_limit(text), Some(1024));
        assert_eq!(
            descriptor_limit("Max open files  unlimited  unlimited  files"),
            None
        );
        assert_eq!(descriptor_limit(""), None);
        // This process's own limit is read, and a small wish is kept.
        assert_eq!(within_descriptor_limit(10), 10);
        assert!(within_descriptor_limit(usize::MAX / 2) < usize::MAX / 2);
    }
}
