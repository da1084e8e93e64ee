//! What the command tells its user on stderr: plain lines by default, or, with
//! `--log-format json`, one JSON log event per line, so stderr stays machine-readable.
//!
//! Results (records, tables, reports) go to stdout and are never affected.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

/// The target of the command's own messages; always shown at `info`.
pub const TARGET: &str = "streamlake::cli";

static JSON: AtomicBool = AtomicBool::new(false);

/// The command running, for the `span` of the events written here directly.
static COMMAND: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

/// Names the command running (`produce`, …).
pub fn set_command(name: &'static str) {
    let _ = COMMAND.set(name);
}

/// Switches stderr messages to JSON log events.
pub fn set_json(json: bool) {
    JSON.store(json, Ordering::Relaxed);
}

/// Whether stderr carries JSON log events.
pub fn json() -> bool {
    JSON.load(Ordering::Relaxed)
}

/// A message for the user (progress, summaries, notes).
pub fn say_args(message: fmt::Arguments<'_>) {
    if json() {
        tracing::info!(target: TARGET, "{message}");
    } else {
        eprintln!("{message}");
    }
}

/// An error the command is stopping for.
pub fn error(message: fmt::Arguments<'_>) {
    if json() {
        tracing::error!(target: TARGET, "{message}");
    } else {
        eprintln!("error: {message}");
    }
}

/// A record that did not make it to Kafka: `outcome` (`failed`, `skipped`), the input line it
/// came from, its correlation id, and why.
pub fn record(outcome: &str, line: usize, ingestion_id: Option<&str>, reason: &dyn fmt::Display) {
    if json() {
        // Written here, not through the tracing subscriber: like the plain line, the report of
        // a record must reach stderr whatever the log filter, and it must never be lost (once,
        // the first of two such events sent through tracing did not reach stderr). The event
        // has the shape of the subscriber's JSON events.
        let mut event = serde_json::json!({
            "timestamp": humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string(),
            "level": "WARN",
            "message": format!("record {outcome}"),
            "outcome": outcome,
            "line": line,
            "reason": reason.to_string(),
            "target": TARGET,
            "span": {"command": COMMAND.get().copied().unwrap_or(""), "name": "streamlake"},
        });
        if let Some(id) = ingestion_id {
            event["ingestion_id"] = id.into();
        }
        eprintln!("{event}");
    } else {
        // The reason may quote the input: its control characters are shown, not sent.
        let reason = reason.to_string();
        let reason = streamlake::logging::escape_control(&reason);
        match ingestion_id {
            Some(id) => eprintln!("{outcome}: line {line} (ingestion_id {id}): {reason}"),
            None => eprintln!("{outcome}: line {line}: {reason}"),
        }
    }
}

/// `say!("…", args)`: a message for the user on stderr.
macro_rules! say {
    () => {
        $crate::out::say_args(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::out::say_args(format_args!($($arg)*))
    };
}
pub(crate) use say;
