//! The tap's Prometheus series, registered with the server's others (`crate::metrics`).

use prometheus_client::{
    metrics::{counter::Counter, gauge::Gauge},
    registry::Registry,
};

/// Cheap to clone: every clone counts into the same series.
#[derive(Debug, Clone, Default)]
pub struct TapMetrics {
    pub(super) open: Gauge,
    pub(super) refused: Counter,
    pub(super) events: Counter,
    pub(super) dropped: Counter,
    pub(super) streams: Gauge,
}

impl TapMetrics {
    /// Adds the series to `registry` (names without `_total`: the encoder appends it).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "xds_tap_open",
            "Live taps open (GET /api/v1/tap)",
            self.open.clone(),
        );
        registry.register(
            "xds_tap_refused",
            "Taps refused because --tap-max-open were open",
            self.refused.clone(),
        );
        registry.register(
            "xds_tap_events",
            "Requests handed to tap clients (one request seen by two taps counts twice)",
            self.events.clone(),
        );
        registry.register(
            "xds_tap_dropped",
            "Requests a tap matched but dropped: over --tap-max-rate, or its client too slow",
            self.dropped.clone(),
        );
        registry.register(
            "xds_tap_access_log_streams",
            "Open access-log streams from proxies (envoy.service.accesslog.v3.AccessLogService)",
            self.streams.clone(),
        );
    }
}
