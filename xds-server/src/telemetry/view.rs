//! The golden metrics as the REST API serves them (`/api/v1/services/{name}/stats`,
//! `/api/v1/stats`): plain serialisable values computed from summed samples.

use std::str::FromStr;

use serde::Serialize;

use super::ring::Sample;

/// The windows figures are computed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Window {
    TenSeconds,
    #[default]
    Minute,
}

impl Window {
    pub fn seconds(self) -> u64 {
        match self {
            Window::TenSeconds => 10,
            Window::Minute => 60,
        }
    }

    /// As in `?window=` and the answer's `window`.
    pub fn as_str(self) -> &'static str {
        match self {
            Window::TenSeconds => "10s",
            Window::Minute => "1m",
        }
    }
}

/// A `?window=` value that is not `10s` or `1m`.
#[derive(Debug, thiserror::Error)]
#[error("window must be 10s or 1m, got '{0}'")]
pub struct BadWindow(pub String);

impl FromStr for Window {
    type Err = BadWindow;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "10s" => Ok(Window::TenSeconds),
            "1m" => Ok(Window::Minute),
            other => Err(BadWindow(other.to_string())),
        }
    }
}

/// The golden figures of one thing over one window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    pub requests: u64,
    pub requests_per_second: f64,
    /// Non-5xx over all requests; `None` without requests.
    pub success_rate: Option<f64>,
    pub latency_ms: Latency,
}

/// Latency percentiles in milliseconds; `None` without samples.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latency {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

impl Figures {
    /// From `sample` summed over `seconds` (at least 1).
    pub fn of(sample: &Sample, seconds: u64) -> Figures {
        let requests = sample.requests;
        let success_rate = (requests > 0)
            .then(|| round(requests.saturating_sub(sample.errors) as f64 / requests as f64));
        let q = |q| sample.latency.quantile(q).map(round);
        Figures {
            requests,
            requests_per_second: round(requests as f64 / seconds.max(1) as f64),
            success_rate,
            latency_ms: Latency {
                p50: q(0.5),
                p95: q(0.95),
                p99: q(0.99),
            },
        }
    }
}

/// Four decimals are plenty for a rate or milliseconds, and keep the JSON short.
fn round(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

/// One route's figures (the whole route, whichever service each request went to).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteFigures {
    pub route: String,
    #[serde(flatten)]
    pub figures: Figures,
}

/// One calling proxy's figures towards a service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProxyFigures {
    pub node_id: String,
    #[serde(flatten)]
    pub figures: Figures,
}

/// `GET /api/v1/services/{name}/stats`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceStats {
    pub service: String,
    pub window: &'static str,
    pub window_seconds: u64,
    #[serde(flatten)]
    pub figures: Figures,
    /// Every route sending to the service, in name order.
    pub routes: Vec<RouteFigures>,
    /// Every proxy that sent it requests in the window, in node id order.
    pub proxies: Vec<ProxyFigures>,
}

/// `GET /api/v1/stats`: every service, in name order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AllStats {
    pub window: &'static str,
    pub window_seconds: u64,
    pub items: Vec<ServiceStats>,
}
