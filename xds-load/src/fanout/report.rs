//! What `xds-load fanout` measured: the JSON document (`--json`) and the text summary.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::{admin::Change, session::Variant, stats::Summary};

/// Everything one run measured (`--json` prints it as is).
#[derive(Debug, Serialize)]
pub struct Report {
    pub variant: Variant,
    pub streams: u32,
    pub connections: u32,
    pub rounds: u32,
    pub change: Change,
    /// From spawning streams 2..N until every one held CDS, EDS, LDS and RDS.
    pub connect_ms: f64,
    /// Every stream's receipt latency in every round, from just before the PUT was sent.
    pub latency: Summary,
    /// Per round: the time until the last stream got the change.
    pub last_stream: Summary,
    /// Per round: the PUT's round trip (the server answers after the store commit).
    pub put: Summary,
    /// `{responses: stream-rounds}`: responses each stream got for one change.
    pub responses_per_change: BTreeMap<u32, usize>,
    pub responses_per_change_mean: f64,
    /// Stream-rounds that never got the change within the round timeout.
    pub missed: usize,
    pub server: ServerFigures,
    pub generator: GeneratorFigures,
    pub per_round: Vec<Round>,
}

#[derive(Debug, Default, Serialize)]
pub struct ServerFigures {
    pub rss_kb_before_streams: Option<u64>,
    /// After the first stream synced: the difference is what the server spends once.
    pub rss_kb_first_stream: Option<u64>,
    pub one_time_kb: Option<u64>,
    pub rss_kb_connected: Option<u64>,
    pub rss_kb_after_rounds: Option<u64>,
    pub kb_per_stream: Option<f64>,
    pub cpu_connect_s: Option<f64>,
    pub cpu_rounds_s: Option<f64>,
    /// Server CPU during the rounds per stream per change, in µs: the figure to optimise
    /// (unlike latency it hardly depends on what else shares the cores).
    pub cpu_us_per_stream_change: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct GeneratorFigures {
    pub threads: usize,
    pub cpu_connect_s: f64,
    pub cpu_rounds_s: f64,
    /// Wall time of the rounds, gaps and quiet periods included.
    pub wall_rounds_s: f64,
    pub cpu_total_s: f64,
    /// Generator CPU during the rounds per response received (and ACKed), in µs.
    pub cpu_us_per_response: f64,
}

#[derive(Debug, Serialize)]
pub struct Round {
    /// The change's number (1..=rounds).
    pub n: u32,
    pub put_ms: f64,
    pub last_ms: f64,
    pub latency: Summary,
    pub responses_mean: f64,
    pub missed: usize,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let variant = match self.variant {
            Variant::Sotw => "sotw",
            Variant::Delta => "delta",
        };
        writeln!(
            f,
            "xds-load fanout: {} {variant} ADS streams over {} connections, {} rounds of one PUT ({:?})",
            self.streams, self.connections, self.rounds, self.change
        )?;
        writeln!(f, "  all streams synced after {:.0} ms", self.connect_ms)?;
        writeln!(f, "  per-stream receipt latency: {}", self.latency)?;
        writeln!(
            f,
            "  time until the last stream, per round: {}",
            self.last_stream
        )?;
        writeln!(f, "  PUT round trip: {}", self.put)?;
        writeln!(
            f,
            "  responses per stream per change: mean {:.2}, {:?} ({{responses: stream-rounds}}); missed {}",
            self.responses_per_change_mean, self.responses_per_change, self.missed
        )?;
        let mb = |kb: Option<u64>| {
            kb.map_or("?".to_string(), |k| format!("{:.1} MB", k as f64 / 1024.0))
        };
        let s = &self.server;
        writeln!(
            f,
            "  server RSS: {} before streams, {} with one ({} one-time), {} with all, {} after rounds; {} per further stream",
            mb(s.rss_kb_before_streams),
            mb(s.rss_kb_first_stream),
            mb(s.one_time_kb),
            mb(s.rss_kb_connected),
            mb(s.rss_kb_after_rounds),
            s.kb_per_stream.map_or("?".into(), |k| format!("{k:.1} KB")),
        )?;
        let cpu = |c: Option<f64>| c.map_or("?".to_string(), |c| format!("{c:.2} s"));
        writeln!(
            f,
            "  server CPU: {} while streams connected, {} during the rounds ({} µs per stream per change)",
            cpu(s.cpu_connect_s),
            cpu(s.cpu_rounds_s),
            s.cpu_us_per_stream_change
                .map_or("?".to_string(), |c| format!("{c:.1}"))
        )?;
        let g = &self.generator;
        write!(
            f,
            "  generator CPU ({} threads): {:.2} s connecting, {:.2} s during {:.2} s of rounds ({:.1} µs per response), {:.2} s in all",
            g.threads,
            g.cpu_connect_s,
            g.cpu_rounds_s,
            g.wall_rounds_s,
            g.cpu_us_per_response,
            g.cpu_total_s
        )
    }
}
