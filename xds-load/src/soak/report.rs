//! What `xds-load soak` measured: the curve (CSV), the verdict, and the JSON document.

use std::collections::BTreeMap;

use serde::Serialize;

use super::FLAT;

/// One sample of the server.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Row {
    /// Seconds since the churn started (the baseline is at 0, before any stream).
    pub t: u64,
    pub rss_kb: Option<u64>,
    pub streams: i64,
    pub tasks: Option<i64>,
    pub proxies: usize,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub rows: Vec<Row>,
    pub baseline: Row,
    pub drained: Row,
    /// Seconds the server took to return to the baseline (`None`: it did not).
    pub drain_s: Option<f64>,
    /// Max over min of RSS in the samples after warm-up (`None`: no such sample).
    pub rss_spread: Option<f64>,
    /// Mean RSS of the last quarter of the samples after warm-up over that of the first
    /// quarter: growth shows here, sample-to-sample noise does not.
    pub rss_trend: Option<f64>,
    pub rss_flat: Option<bool>,
    pub streams_back: bool,
    pub tasks_back: Option<bool>,
    pub proxies_back: bool,
    pub pass: bool,
    pub opened: u64,
    pub synced: u64,
    pub ended_by_server: u64,
    pub connect_errors: u64,
    pub writes_ok: u64,
    pub writes_failed: u64,
    pub end_reasons: BTreeMap<String, u64>,
}

pub(super) fn csv_line(r: &Row) -> String {
    let opt = |v: Option<String>| v.unwrap_or_default();
    format!(
        "{},{},{},{},{}",
        r.t,
        opt(r.rss_kb.map(|v| v.to_string())),
        r.streams,
        opt(r.tasks.map(|v| v.to_string())),
        r.proxies
    )
}

impl Report {
    /// The curve: a header, the baseline (t=0), one row per sample, the drained row last.
    pub fn csv(&self) -> String {
        let mut out = String::from("t,rss_kb,streams,tasks,proxies\n");
        for r in &self.rows {
            out.push_str(&csv_line(r));
            out.push('\n');
        }
        out
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.csv())?;
        let yes = |b: bool| if b { "yes" } else { "NO" };
        let opt = |b: Option<bool>| b.map_or("n/a", yes);
        writeln!(
            f,
            "streams opened {}, synced {}, ended by the server {}, connect errors {}; writes ok {}, failed {}",
            self.opened,
            self.synced,
            self.ended_by_server,
            self.connect_errors,
            self.writes_ok,
            self.writes_failed
        )?;
        for (why, n) in &self.end_reasons {
            writeln!(f, "  ended by the server {n}x: {why}")?;
        }
        writeln!(
            f,
            "RSS after warm-up flat within {:.0} %: {} (max/min {}; last-quarter mean over first-quarter mean {})",
            FLAT * 100.0,
            opt(self.rss_flat),
            self.rss_spread
                .map_or("n/a".to_string(), |s| format!("{s:.3}")),
            self.rss_trend
                .map_or("n/a".to_string(), |s| format!("{s:.3}"))
        )?;
        writeln!(
            f,
            "back to baseline after the churn{}: streams {} ({} vs {}), tasks {} ({:?} vs {:?}), proxies {} ({} vs {})",
            self.drain_s
                .map_or(" (NOT within the drain timeout)".to_string(), |s| format!(
                    " in {s:.1} s"
                )),
            yes(self.streams_back),
            self.drained.streams,
            self.baseline.streams,
            opt(self.tasks_back),
            self.drained.tasks,
            self.baseline.tasks,
            yes(self.proxies_back),
            self.drained.proxies,
            self.baseline.proxies
        )?;
        write!(f, "verdict: {}", if self.pass { "PASS" } else { "FAIL" })
    }
}
