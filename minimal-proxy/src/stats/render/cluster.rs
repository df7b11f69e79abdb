//! `cluster.<name>.*`: the statistics Envoy prints for a cluster that the proxy keeps.

use super::Scope;
use crate::stats::ClusterStats;

pub(super) fn render<'a>(s: &mut Scope<'_, 'a>, c: &'a ClusterStats) {
    for (stat, v) in [
        ("upstream_rq_total", &c.upstream_rq_total),
        ("upstream_rq_completed", &c.upstream_rq_completed),
        ("upstream_rq_pending_total", &c.upstream_rq_pending_total),
        (
            "upstream_rq_pending_overflow",
            &c.upstream_rq_pending_overflow,
        ),
        ("upstream_rq_timeout", &c.upstream_rq_timeout),
        (
            "upstream_rq_per_try_timeout",
            &c.upstream_rq_per_try_timeout,
        ),
        ("upstream_rq_retry", &c.upstream_rq_retry),
        ("upstream_rq_retry_success", &c.upstream_rq_retry_success),
        ("upstream_rq_retry_overflow", &c.upstream_rq_retry_overflow),
        (
            "upstream_rq_retry_limit_exceeded",
            &c.upstream_rq_retry_limit_exceeded,
        ),
        ("upstream_rq_rx_reset", &c.upstream_rq_rx_reset),
        ("upstream_cx_total", &c.upstream_cx_total),
        ("upstream_cx_http1_total", &c.upstream_cx_http1_total),
        ("upstream_cx_http2_total", &c.upstream_cx_http2_total),
        ("upstream_cx_destroy", &c.upstream_cx_destroy),
        ("upstream_cx_connect_fail", &c.upstream_cx_connect_fail),
        (
            "upstream_cx_connect_timeout",
            &c.upstream_cx_connect_timeout,
        ),
        ("upstream_cx_overflow", &c.upstream_cx_overflow),
        ("upstream_cx_none_healthy", &c.upstream_cx_none_healthy),
        ("lb_healthy_panic", &c.lb_healthy_panic),
        ("lb_subsets_created", &c.lb_subsets_created),
        ("lb_subsets_removed", &c.lb_subsets_removed),
        ("lb_subsets_selected", &c.lb_subsets_selected),
        ("lb_subsets_fallback", &c.lb_subsets_fallback),
        ("membership_change", &c.membership_change),
        (
            "outlier_detection.ejections_enforced_total",
            &c.outlier_detection_ejections_enforced_total,
        ),
        (
            "outlier_detection.ejections_enforced_consecutive_5xx",
            &c.outlier_detection_ejections_enforced_consecutive_5xx,
        ),
        (
            "outlier_detection.ejections_detected_consecutive_5xx",
            &c.outlier_detection_ejections_detected_consecutive_5xx,
        ),
        (
            "outlier_detection.ejections_total",
            &c.outlier_detection_ejections_total,
        ),
        (
            "outlier_detection.ejections_consecutive_5xx",
            &c.outlier_detection_ejections_consecutive_5xx,
        ),
        (
            "outlier_detection.ejections_overflow",
            &c.outlier_detection_ejections_overflow,
        ),
        ("health_check.attempt", &c.health_check_attempt),
        ("health_check.success", &c.health_check_success),
        ("health_check.failure", &c.health_check_failure),
        (
            "health_check.network_failure",
            &c.health_check_network_failure,
        ),
        ("update_attempt", &c.update_attempt),
        ("update_success", &c.update_success),
        ("update_rejected", &c.update_rejected),
        ("update_failure", &c.update_failure),
        ("update_empty", &c.update_empty),
    ]
    .into_iter()
    .chain(c.ssl.counters().into_iter().filter(|_| c.ssl.used()))
    {
        s.counter(stat, v.get());
    }
    s.upstream_codes(&c.upstream_rq_code, &c.upstream_rq_xx);
    for (stat, v) in [
        ("upstream_rq_active", &c.upstream_rq_active),
        ("upstream_rq_pending_active", &c.upstream_rq_pending_active),
        ("upstream_cx_active", &c.upstream_cx_active),
        (
            "circuit_breakers.default.cx_open",
            &c.circuit_breakers_cx_open,
        ),
        (
            "circuit_breakers.default.rq_open",
            &c.circuit_breakers_rq_open,
        ),
        (
            "circuit_breakers.default.rq_pending_open",
            &c.circuit_breakers_rq_pending_open,
        ),
        (
            "circuit_breakers.default.rq_retry_open",
            &c.circuit_breakers_rq_retry_open,
        ),
        ("lb_subsets_active", &c.lb_subsets_active),
        ("membership_total", &c.membership_total),
        ("membership_healthy", &c.membership_healthy),
        ("membership_degraded", &c.membership_degraded),
        ("membership_excluded", &c.membership_excluded),
        (
            "outlier_detection.ejections_active",
            &c.outlier_detection_ejections_active,
        ),
        ("health_check.healthy", &c.health_check_healthy),
    ] {
        s.gauge(stat, v);
    }
    s.histogram("upstream_rq_time", &c.upstream_rq_time);
}
