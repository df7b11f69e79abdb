//! `vhost.<vhost>.route.<stat_prefix>.*`: the statistics Envoy prints for a route with a
//! `stat_prefix`.

use super::Scope;
use crate::stats::RouteStats;

/// `vhost.<vhost>.route.<prefix>.*`, the statistics Envoy prints for a route.
pub(super) fn render<'a>(s: &mut Scope<'_, 'a>, r: &'a RouteStats) {
    s.upstream_codes(&r.upstream_rq_code, &r.upstream_rq_xx);
    for (stat, v) in [
        ("upstream_rq_completed", &r.upstream_rq_completed),
        ("upstream_rq_retry", &r.upstream_rq_retry),
        (
            "upstream_rq_retry_limit_exceeded",
            &r.upstream_rq_retry_limit_exceeded,
        ),
        ("upstream_rq_retry_overflow", &r.upstream_rq_retry_overflow),
        ("upstream_rq_retry_success", &r.upstream_rq_retry_success),
        ("upstream_rq_timeout", &r.upstream_rq_timeout),
        ("upstream_rq_total", &r.upstream_rq_total),
    ] {
        s.counter(stat, v.get());
    }
    s.histogram("upstream_rq_time", &r.upstream_rq_time);
}
