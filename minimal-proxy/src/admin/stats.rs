//! `GET /stats` (Envoy's `name: value` lines, or `?format=json` as `{"stats":[{"name","value"}]}`)
//! and `GET /stats/prometheus`, rendered by [`crate::stats::Registry`].

use std::collections::BTreeMap;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;

use super::{State, text};

// TEMPORARY until `stats::Registry::render_json` / `render_prometheus` land (helper B): the
// pages say so instead of inventing a second renderer here.
pub fn render(_state: &State, query: &BTreeMap<String, String>) -> Response<Full<Bytes>> {
    let _ = query;
    text(
        StatusCode::SERVICE_UNAVAILABLE,
        "stats rendering is not built yet\n",
    )
}

pub fn prometheus(_state: &State) -> Response<Full<Bytes>> {
    text(
        StatusCode::SERVICE_UNAVAILABLE,
        "stats rendering is not built yet\n",
    )
}
