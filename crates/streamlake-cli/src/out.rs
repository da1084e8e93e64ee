//! What the command tells its user on stderr: plain lines by default, or, with
//! `--log-format json`, one JSON log event per line, so stderr stays machine-readable.
//!
//! Results (records, tables, reports) go to stdout and are never affected.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

/// The target of the command's own messages; always shown at `info`.
pub const TARGET: &str = "streamlake::cli";

static JSON: AtomicBool = AtomicBool::new(false);

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
        tracing::warn!(target: TARGET, outcome, line, ingestion_id, reason = %reason, "record {outcome}");
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
