//! Envoy's command operators in a `json_format`: parsed once when the listener is built,
//! rendered in the writer thread. A value that is exactly one operator keeps its type (a
//! number for `%RESPONSE_CODE%`, `null` when there is no value), as Envoy renders it; a value
//! mixing text and operators is a string with `-` for a missing value.

use std::{collections::BTreeMap, fmt::Write as _, time::SystemTime};

use serde_json::Value;

use super::{Error, HeaderKey, Record};

/// One compiled `json_format`: field name → template, in the key order Envoy prints (sorted).
#[derive(Debug)]
pub struct Format {
    fields: Vec<(String, Template)>,
}

/// One field's value.
#[derive(Debug)]
enum Template {
    Literal(String),
    /// Exactly one operator: rendered with its own JSON type.
    Single(Operator),
    /// Text and operators: rendered as one string.
    Mixed(Vec<Segment>),
}

#[derive(Debug)]
enum Segment {
    Text(String),
    Op(Operator),
}

/// A command operator, with header operators resolved to indices into the captured headers.
#[derive(Debug, Clone)]
pub(super) enum Operator {
    StartTime,
    /// Index into [`Record::request_headers`], and the `:N` truncation.
    Req(usize, Option<usize>),
    Resp(usize, Option<usize>),
    Protocol,
    ResponseCode,
    ResponseFlags,
    Duration,
    UpstreamHost,
    UpstreamCluster,
    BytesReceived,
    BytesSent,
    DownstreamRemoteAddress,
    DownstreamRemoteAddressWithoutPort,
    DownstreamLocalAddress,
    RouteName,
}

/// The operators without arguments, by name.
const PLAIN: &[(&str, Operator)] = &[
    ("START_TIME", Operator::StartTime),
    ("PROTOCOL", Operator::Protocol),
    ("RESPONSE_CODE", Operator::ResponseCode),
    ("RESPONSE_FLAGS", Operator::ResponseFlags),
    ("DURATION", Operator::Duration),
    ("UPSTREAM_HOST", Operator::UpstreamHost),
    ("UPSTREAM_CLUSTER", Operator::UpstreamCluster),
    ("BYTES_RECEIVED", Operator::BytesReceived),
    ("BYTES_SENT", Operator::BytesSent),
    (
        "DOWNSTREAM_REMOTE_ADDRESS",
        Operator::DownstreamRemoteAddress,
    ),
    (
        "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT",
        Operator::DownstreamRemoteAddressWithoutPort,
    ),
    ("DOWNSTREAM_LOCAL_ADDRESS", Operator::DownstreamLocalAddress),
    ("ROUTE_NAME", Operator::RouteName),
];

/// Parses one operator (without its `%` delimiters); header operators register the headers
/// they read in `req`/`resp`.
pub(super) fn parse_operator(
    op: &str,
    req: &mut Vec<HeaderKey>,
    resp: &mut Vec<HeaderKey>,
) -> Result<Operator, Error> {
    if let Some((_, o)) = PLAIN.iter().find(|(name, _)| *name == op) {
        return Ok(o.clone());
    }
    let unsupported = || Error::UnsupportedOperator(format!("%{op}%"));
    let (is_req, rest) = if let Some(rest) = op.strip_prefix("REQ(") {
        (true, rest)
    } else if let Some(rest) = op.strip_prefix("RESP(") {
        (false, rest)
    } else {
        return Err(unsupported());
    };
    let (inner, tail) = rest.split_once(')').ok_or_else(unsupported)?;
    let max_len = match tail {
        "" => None,
        t => Some(
            t.strip_prefix(':')
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(unsupported)?,
        ),
    };
    let (primary, alternative) = match inner.split_once('?') {
        Some((p, a)) => (p, Some(a)),
        None => (inner, None),
    };
    let key = HeaderKey::new(primary, alternative).ok_or_else(unsupported)?;
    let keys = if is_req { req } else { resp };
    let index = match keys.iter().position(|k| *k == key) {
        Some(i) => i,
        None => {
            keys.push(key);
            keys.len() - 1
        }
    };
    Ok(if is_req {
        Operator::Req(index, max_len)
    } else {
        Operator::Resp(index, max_len)
    })
}

/// Splits a template into text and `%OPERATOR%` segments; `%%` is no operator in Envoy's
/// JSON formats, so a lone `%` that opens nothing is refused.
fn parse_template(
    value: &str,
    req: &mut Vec<HeaderKey>,
    resp: &mut Vec<HeaderKey>,
) -> Result<Template, Error> {
    let mut segments = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find('%') {
        if start > 0 {
            segments.push(Segment::Text(rest[..start].to_string()));
        }
        let after = &rest[start + 1..];
        let end = after
            .find('%')
            .ok_or_else(|| Error::UnsupportedOperator(format!("unterminated '%' in {value:?}")))?;
        segments.push(Segment::Op(parse_operator(&after[..end], req, resp)?));
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        segments.push(Segment::Text(rest.to_string()));
    }
    Ok(match segments.as_slice() {
        [] => Template::Literal(String::new()),
        [Segment::Text(t)] => Template::Literal(t.clone()),
        [Segment::Op(op)] => Template::Single(op.clone()),
        _ => Template::Mixed(segments),
    })
}

impl Format {
    pub(super) fn new(
        fields: &BTreeMap<String, String>,
        req: &mut Vec<HeaderKey>,
        resp: &mut Vec<HeaderKey>,
    ) -> Result<Format, Error> {
        let fields = fields
            .iter()
            .map(|(k, v)| Ok((k.clone(), parse_template(v, req, resp)?)))
            .collect::<Result<_, Error>>()?;
        Ok(Format { fields })
    }

    /// The proxy's record when a log has no format: Envoy's default fields, as JSON.
    pub(super) fn default_format(req: &mut Vec<HeaderKey>, resp: &mut Vec<HeaderKey>) -> Format {
        let fields: BTreeMap<String, String> = [
            ("start_time", "%START_TIME%"),
            ("method", "%REQ(:METHOD)%"),
            ("path", "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"),
            ("protocol", "%PROTOCOL%"),
            ("response_code", "%RESPONSE_CODE%"),
            ("response_flags", "%RESPONSE_FLAGS%"),
            ("bytes_received", "%BYTES_RECEIVED%"),
            ("bytes_sent", "%BYTES_SENT%"),
            ("duration", "%DURATION%"),
            (
                "upstream_service_time",
                "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
            ),
            ("x_forwarded_for", "%REQ(X-FORWARDED-FOR)%"),
            ("user_agent", "%REQ(USER-AGENT)%"),
            ("request_id", "%REQ(X-REQUEST-ID)%"),
            ("authority", "%REQ(:AUTHORITY)%"),
            ("upstream_host", "%UPSTREAM_HOST%"),
            ("upstream_cluster", "%UPSTREAM_CLUSTER%"),
            ("downstream_remote_address", "%DOWNSTREAM_REMOTE_ADDRESS%"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Format::new(&fields, req, resp).expect("the default format uses supported operators")
    }

    /// One JSON line (without the newline) for `record`.
    pub(super) fn render(&self, record: &Record, out: &mut Vec<u8>) {
        let mut map = serde_json::Map::with_capacity(self.fields.len());
        for (key, template) in &self.fields {
            let value = match template {
                Template::Literal(text) => Value::String(text.clone()),
                Template::Single(op) => typed(op, record),
                Template::Mixed(segments) => {
                    let mut s = String::new();
                    for segment in segments {
                        match segment {
                            Segment::Text(t) => s.push_str(t),
                            Segment::Op(op) => match typed(op, record) {
                                Value::Null => s.push('-'),
                                Value::String(v) => s.push_str(&v),
                                other => {
                                    let _ = write!(s, "{other}");
                                }
                            },
                        }
                    }
                    Value::String(s)
                }
            };
            map.insert(key.clone(), value);
        }
        // Writing a map of plain values into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &Value::Object(map));
    }
}

/// One operator's value with its JSON type; `null` when the record has none.
fn typed(op: &Operator, r: &Record) -> Value {
    let string = |s: Option<String>| s.map_or(Value::Null, Value::String);
    match op {
        Operator::StartTime => Value::String(rfc3339_millis(r.start)),
        Operator::Req(i, max) => header(r.request_headers.get(*i), *max),
        Operator::Resp(i, max) => header(r.response_headers.get(*i), *max),
        Operator::Protocol => string(r.protocol.map(str::to_string)),
        Operator::ResponseCode => Value::from(r.response_code.unwrap_or(0)),
        Operator::ResponseFlags => Value::String(r.flags.to_string()),
        Operator::Duration => Value::from(r.duration.as_millis() as u64),
        Operator::UpstreamHost => string(r.upstream_host.map(|a| a.to_string())),
        Operator::UpstreamCluster => string(r.upstream_cluster.clone()),
        Operator::BytesReceived => Value::from(r.bytes_received),
        Operator::BytesSent => Value::from(r.bytes_sent),
        Operator::DownstreamRemoteAddress => Value::String(r.downstream_remote.to_string()),
        Operator::DownstreamRemoteAddressWithoutPort => {
            Value::String(r.downstream_remote.ip().to_string())
        }
        Operator::DownstreamLocalAddress => string(r.downstream_local.map(|a| a.to_string())),
        Operator::RouteName => string(r.route_name.as_deref().map(str::to_string)),
    }
}

fn header(value: Option<&Option<http::HeaderValue>>, max: Option<usize>) -> Value {
    let Some(Some(value)) = value else {
        return Value::Null;
    };
    let text = String::from_utf8_lossy(value.as_bytes());
    let text = match max {
        Some(max) => text.chars().take(max).collect(),
        None => text.into_owned(),
    };
    Value::String(text)
}

/// `2026-12-01T15:01:17.907Z`, Envoy's default `%START_TIME%`.
pub(super) fn rfc3339_millis(time: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
