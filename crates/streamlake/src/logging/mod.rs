//! Logs and traces.
//!
//! - [`init`] installs the process-wide `tracing` subscriber: human-readable lines on stderr by
//!   default, or one JSON object per line ([`LogFormat::Json`]) for log collectors. Each JSON
//!   line carries `timestamp`, `level`, `target`, `message`, the event's fields at the top level
//!   and the enclosing span's fields under `span`.
//! - Every event about one record carries the record's correlation id in the field
//!   `ingestion_id` (the record's `ingestion_id` header, see [`crate::Record::ingestion_id`]),
//!   so one event can be followed from the HTTP request to its offset or dead-letter entry.
//! - With an OTLP endpoint configured, spans are also exported over OTLP/HTTP (protobuf) to
//!   `<endpoint>/v1/traces`, in batches from a background thread; [`LogGuard`] flushes what is
//!   left when dropped. W3C `traceparent` is the propagation format: [`traceparent`] gives the
//!   current span's, and [`set_parent`] makes a span the child of an incoming one.
//! - librdkafka's own logs arrive under the target `librdkafka`.
//! - Text lines escape the control characters of every field value ([`EscapedFields`]): a
//!   value (a request path, a librdkafka message, a line of input) cannot forge a log line or
//!   send escape sequences to the terminal.

mod escape;
mod librdkafka;
mod otlp;

pub use escape::{escape_control, EscapedFields};

pub(crate) use librdkafka::{librdkafka_error, librdkafka_log};
pub use otlp::{set_parent, traceparent};

use std::fmt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// How log events are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// What [`init`] sets up.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// Line format on stderr.
    pub format: LogFormat,
    /// An `EnvFilter` directive list such as `warn` or `info,librdkafka=debug`.
    pub filter: String,
    /// Extra directives always added (e.g. a target that must stay at `info`).
    pub always: Vec<String>,
    /// Base address of an OTLP/HTTP collector (`http://host:4318`); `None` exports nothing.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported spans.
    pub service_name: String,
}

impl Default for LogOptions {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            filter: "warn".to_owned(),
            always: Vec::new(),
            otlp_endpoint: None,
            service_name: "streamlake".to_owned(),
        }
    }
}

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The filter does not parse.
    #[error("invalid log filter {filter:?}: {reason}")]
    Filter {
        /// The filter as given.
        filter: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The OTLP exporter cannot be built from the endpoint.
    #[error("cannot export traces to {endpoint}: {reason}")]
    Otlp {
        /// The endpoint as given.
        endpoint: String,
        /// What went wrong.
        reason: String,
    },
    /// A subscriber was already installed in this process.
    #[error("logging is already set up in this process")]
    AlreadySet,
}

/// Keeps the trace exporter alive; dropping it sends the spans not yet exported.
pub struct LogGuard {
    otlp: Option<otlp::Exporter>,
}

impl fmt::Debug for LogGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogGuard")
            .field("otlp", &self.otlp.is_some())
            .finish()
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        if let Some(exporter) = self.otlp.take() {
            exporter.shutdown();
        }
    }
}

/// Installs the process-wide subscriber. Call once, early in `main`, and keep the guard until
/// the end.
pub fn init(options: &LogOptions) -> Result<LogGuard, LogError> {
    let mut filter = EnvFilter::try_new(&options.filter).map_err(|e| LogError::Filter {
        filter: options.filter.clone(),
        reason: e.to_string(),
    })?;
    for d in &options.always {
        let directive =
            d.parse().map_err(
                |e: tracing_subscriber::filter::ParseError| LogError::Filter {
                    filter: d.clone(),
                    reason: e.to_string(),
                },
            )?;
        filter = filter.add_directive(directive);
    }
    let fmt = match options.format {
        // Colours only on a terminal: a log written to a file or a pipe stays plain text.
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .fmt_fields(EscapedFields)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let exporter = match &options.otlp_endpoint {
        Some(endpoint) => Some(otlp::Exporter::new(endpoint, &options.service_name)?),
        None => None,
    };
    let traces = exporter.as_ref().map(otlp::Exporter::layer);
    tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(traces)
        .try_init()
        .map_err(|_| LogError::AlreadySet)?;
    Ok(LogGuard { otlp: exporter })
}
