//! Span export over OTLP/HTTP and W3C `traceparent` propagation.
//!
//! Only StreamLake's own spans (targets `streamlake*`) at `info` and above are exported, so the
//! exporter's HTTP client never traces itself. Without an exporter installed, [`traceparent`]
//! returns `None` and [`set_parent`] does nothing.

use super::LogError;
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider,
};
use opentelemetry::Context;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{SpanExporter, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use std::time::Duration;
use tracing::Level;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// How long one export request may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The installed exporter.
pub(super) struct Exporter {
    provider: SdkTracerProvider,
}

impl Exporter {
    /// An exporter sending batches to `<endpoint>/v1/traces`.
    pub(super) fn new(endpoint: &str, service: &str) -> Result<Self, LogError> {
        let base = endpoint.trim_end_matches('/');
        let url = if base.ends_with("/v1/traces") {
            base.to_owned()
        } else {
            format!("{base}/v1/traces")
        };
        let failed = |reason: String| LogError::Otlp {
            endpoint: endpoint.to_owned(),
            reason,
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(failed(
                "the endpoint must start with http:// or https://".into(),
            ));
        }
        let client = reqwest::blocking::Client::builder()
            .timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|e| failed(e.to_string()))?;
        let exporter = SpanExporter::builder()
            .with_http()
            .with_endpoint(url)
            .with_timeout(EXPORT_TIMEOUT)
            .with_http_client(Blocking(client))
            .build()
            .map_err(|e| failed(e.to_string()))?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                Resource::builder()
                    .with_service_name(service.to_owned())
                    .build(),
            )
            .build();
        Ok(Self { provider })
    }

    /// The `tracing` layer that turns StreamLake's spans into exported spans.
    pub(super) fn layer<S>(&self) -> impl Layer<S>
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    {
        let own = Targets::new()
            .with_target("streamlake", Level::INFO)
            .with_target("streamlake_cli", Level::INFO);
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer("streamlake"))
            .with_filter(own)
    }

    /// Sends what is left and stops the background thread.
    pub(super) fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "spans not exported at shutdown");
        }
    }
}

/// reqwest's blocking client, run on the exporter's own thread.
#[derive(Debug)]
struct Blocking(reqwest::blocking::Client);

#[async_trait::async_trait]
impl HttpClient for Blocking {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let (parts, body) = request.into_parts();
        let mut call = self.0.request(parts.method, parts.uri.to_string());
        for (name, value) in &parts.headers {
            call = call.header(name, value);
        }
        let reply = call.body(body.to_vec()).send()?;
        let status = reply.status();
        let body = reply.bytes()?;
        Ok(Response::builder().status(status).body(body)?)
    }
}

/// The current span's W3C `traceparent`, when spans are exported and a span is active.
pub fn traceparent() -> Option<String> {
    let cx = tracing::Span::current().context();
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        )
    })
}

/// Makes `span` the child of the caller's span named by a W3C `traceparent` header value.
/// A malformed value is ignored (the span starts a new trace).
pub fn set_parent(span: &tracing::Span, traceparent: &str) {
    if let Some(sc) = parse(traceparent) {
        // Fails only when no exporter is installed, and then there is nothing to link.
        let _ = span.set_parent(Context::new().with_remote_span_context(sc));
    }
}

/// `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`.
fn parse(traceparent: &str) -> Option<SpanContext> {
    let mut parts = traceparent.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if version != "00" || parts.next().is_some() || trace.len() != 32 || span.len() != 16 {
        return None;
    }
    let trace = TraceId::from_hex(trace).ok()?;
    let span = SpanId::from_hex(span).ok()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    let sc = SpanContext::new(trace, span, TraceFlags::new(flags), true, TraceState::NONE);
    sc.is_valid().then_some(sc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_parses_into_its_parts() {
        let sc = parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(
            sc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(sc.span_id().to_string(), "00f067aa0ba902b7");
        assert!(sc.is_sampled());
        assert!(sc.is_remote());
    }

    #[test]
    fn malformed_traceparents_are_ignored() {
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn without_an_exporter_there_is_no_traceparent() {
        let span = tracing::info_span!("t");
        let _entered = span.enter();
        assert_eq!(traceparent(), None);
    }
}
