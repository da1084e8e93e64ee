//! The gateway's Prometheus metrics.

use crate::metrics::{latency_buckets, Counter, Family, Gauge, Histogram, Metrics, Unit};
use prometheus_client::encoding::EncodeLabelSet;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    pub dataset: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct EventLabels {
    pub dataset: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct DatasetLabels {
    pub dataset: String,
}

/// Every metric the gateway exposes on `/metrics`.
#[derive(Debug)]
pub(crate) struct GatewayMetrics {
    pub registry: Metrics,
    requests: Family<RequestLabels, Counter>,
    events: Family<EventLabels, Counter>,
    event_bytes: Family<DatasetLabels, Counter>,
    duration: Family<DatasetLabels, Histogram>,
    pub in_flight: Gauge,
}

impl GatewayMetrics {
    pub(crate) fn new() -> Self {
        let mut registry = Metrics::new();
        let requests = Family::default();
        let events = Family::default();
        let event_bytes = Family::default();
        let duration = Family::<DatasetLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(latency_buckets())
        });
        let in_flight = Gauge::default();
        registry.register(
            "gateway_requests",
            "HTTP ingestion requests by dataset and response status (dataset `unknown` for 404s)",
            requests.clone(),
        );
        registry.register(
            "gateway_events",
            "Events by dataset and outcome: accepted, invalid (dead-lettered) or failed (not in Kafka)",
            events.clone(),
        );
        registry.register_with_unit(
            "gateway_event",
            "Bytes of events received, by dataset",
            Unit::Bytes,
            event_bytes.clone(),
        );
        registry.register_with_unit(
            "gateway_request_duration",
            "Time from request to response, including Kafka acknowledgements",
            Unit::Seconds,
            duration.clone(),
        );
        registry.register(
            "gateway_requests_in_flight",
            "Ingestion requests being handled",
            in_flight.clone(),
        );
        Self {
            registry,
            requests,
            events,
            event_bytes,
            duration,
            in_flight,
        }
    }

    pub(crate) fn request(&self, dataset: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                dataset: dataset.to_owned(),
                status,
            })
            .inc();
        self.duration
            .get_or_create(&DatasetLabels {
                dataset: dataset.to_owned(),
            })
            .observe(seconds);
    }

    pub(crate) fn events(&self, dataset: &str, outcome: &str, n: u64) {
        if n > 0 {
            self.events
                .get_or_create(&EventLabels {
                    dataset: dataset.to_owned(),
                    outcome: outcome.to_owned(),
                })
                .inc_by(n);
        }
    }

    pub(crate) fn bytes(&self, dataset: &str, n: u64) {
        self.event_bytes
            .get_or_create(&DatasetLabels {
                dataset: dataset.to_owned(),
            })
            .inc_by(n);
    }
}
