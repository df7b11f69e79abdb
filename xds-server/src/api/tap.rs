//! `GET /api/v1/tap`: a live tap as server-sent events. The tap stays open while the client
//! reads; when it goes away the stream is dropped, the tap closes, and the proxies lose the
//! access log on the next push. Events: `open` (once), `request` (one per matching request),
//! `dropped` (at most once a second, after drops), and keep-alive comments.

use std::{convert::Infallible, time::Duration};

use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::sse::{Event, KeepAlive, Sse},
};
use futures::Stream;
use serde_json::json;

use super::{ApiError, AppState};
use crate::tap::{Filter, OpenError, Tap, TapEvent};

/// How often an idle stream carries a comment (so proxies and clients see it alive, and a
/// vanished client is noticed).
const KEEP_ALIVE: Duration = Duration::from_secs(5);
/// How often dropped events are reported (only when there were some).
const DROPPED_EVERY: Duration = Duration::from_secs(1);

/// Opens a tap: `?service=&route=&node_id=&path_prefix=&status=`.
pub async fn tap_get(
    State(state): State<AppState>,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let filter = Filter::parse(query)
        .map_err(|e| ApiError::invalid_query(e.to_string()).with_field(e.field()))?;
    let tap = state.taps.open(filter).map_err(|e| match e {
        OpenError::Full { .. } => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_taps",
            e.to_string(),
        ),
        OpenError::Closed => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            e.to_string(),
        ),
    })?;
    let rate = state.taps.config().tap_max_rate;
    Ok(Sse::new(events(tap, rate)).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

/// Where a tap's stream is.
struct Reading {
    tap: Tap,
    rate: u32,
    opened: bool,
    /// Dropped events already reported.
    reported: u64,
    tick: tokio::time::Interval,
}

fn events(tap: Tap, rate: u32) -> impl Stream<Item = Result<Event, Infallible>> {
    // The first report a period after the open: drops are counted, then told.
    let start = tokio::time::Instant::now() + DROPPED_EVERY;
    let mut tick = tokio::time::interval_at(start, DROPPED_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let reading = Reading {
        tap,
        rate,
        opened: false,
        reported: 0,
        tick,
    };
    futures::stream::unfold(reading, |mut r| async move {
        let event = next(&mut r).await?;
        Some((Ok(event), r))
    })
}

/// The next event to send; `None` ends the stream (the server closed the tap).
async fn next(r: &mut Reading) -> Option<Event> {
    if !r.opened {
        r.opened = true;
        let data = json!({
            "tap": format!("t{}", r.tap.id()),
            "filter": r.tap.filter(),
            "max_events_per_second": r.rate,
        });
        return Some(Event::default().event("open").data(data.to_string()));
    }
    loop {
        tokio::select! {
            // The tick first: it is ready once a second, so it never starves the requests,
            // and a client too slow to empty its queue still hears of what it lost.
            biased;
            _ = r.tick.tick() => {
                let total = r.tap.dropped();
                if total > r.reported {
                    let data = json!({ "dropped": total - r.reported, "total_dropped": total });
                    r.reported = total;
                    return Some(Event::default().event("dropped").data(data.to_string()));
                }
            }
            event = r.tap.next() => return event.map(|e| request(&e)),
        }
    }
}

fn request(event: &TapEvent) -> Event {
    // A `TapEvent` always serialises.
    let data = serde_json::to_string(event).unwrap_or_default();
    Event::default().event("request").data(data)
}
