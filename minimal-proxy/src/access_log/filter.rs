//! Access log filters compiled for one listener: header conditions are decided when the
//! request arrives (its headers are gone by the time it is logged) into a bit set kept on the
//! record; the rest (status code, duration, response flags, and/or) when it is logged.

use crate::{
    config::{CompareOp, Comparison, LogFilter},
    http::route_table::{HeaderPredicate, RequestView},
};

use super::{Record, ResponseFlags};

/// Header conditions per listener: one bit each in [`Record::header_matches`].
pub const MAX_HEADER_FILTERS: usize = 64;

/// A filter tree whose header conditions refer to bits.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Status(Comparison),
    Duration(Comparison),
    /// The bit of a header condition.
    Header(usize),
    /// Any of these flags (any flag at all when `None`); flags the proxy never sets are
    /// left out (they never match).
    Flags(Option<Vec<ResponseFlags>>),
    And(Vec<Filter>),
    Or(Vec<Filter>),
}

/// Compiles `f`, adding its header conditions to `headers`; `None` when there are more than
/// [`MAX_HEADER_FILTERS`].
pub fn compile(f: &LogFilter, headers: &mut Vec<HeaderPredicate>) -> Option<Filter> {
    Some(match f {
        LogFilter::Status(c) => Filter::Status(*c),
        LogFilter::Duration(c) => Filter::Duration(*c),
        LogFilter::Header(m) => {
            if headers.len() >= MAX_HEADER_FILTERS {
                return None;
            }
            headers.push(HeaderPredicate::new(m));
            Filter::Header(headers.len() - 1)
        }
        LogFilter::ResponseFlags(names) if names.is_empty() => Filter::Flags(None),
        LogFilter::ResponseFlags(names) => Filter::Flags(Some(
            names
                .iter()
                .filter_map(|n| ResponseFlags::from_name(n))
                .collect(),
        )),
        LogFilter::And(fs) => Filter::And(
            fs.iter()
                .map(|f| compile(f, headers))
                .collect::<Option<_>>()?,
        ),
        LogFilter::Or(fs) => Filter::Or(
            fs.iter()
                .map(|f| compile(f, headers))
                .collect::<Option<_>>()?,
        ),
    })
}

/// The header conditions' results for a request, one bit each.
pub fn header_bits(headers: &[HeaderPredicate], request: &RequestView<'_>) -> u64 {
    headers
        .iter()
        .enumerate()
        .filter(|(_, h)| h.matches(request))
        .fold(0, |bits, (i, _)| bits | (1 << i))
}

impl Filter {
    /// Whether the record is logged.
    pub fn admits(&self, record: &Record) -> bool {
        match self {
            // Envoy compares 0 when no response code was set.
            Filter::Status(c) => compare(*c, u64::from(record.response_code.unwrap_or(0))),
            Filter::Duration(c) => compare(*c, record.duration.as_millis() as u64),
            Filter::Header(bit) => record.header_matches & (1 << bit) != 0,
            Filter::Flags(None) => !record.flags.is_empty(),
            Filter::Flags(Some(any)) => any.iter().any(|f| record.flags.contains(*f)),
            Filter::And(fs) => fs.iter().all(|f| f.admits(record)),
            Filter::Or(fs) => fs.iter().any(|f| f.admits(record)),
        }
    }
}

fn compare(c: Comparison, actual: u64) -> bool {
    let value = u64::from(c.value);
    match c.op {
        CompareOp::Eq => actual == value,
        CompareOp::Ge => actual >= value,
        CompareOp::Le => actual <= value,
        CompareOp::Ne => actual != value,
    }
}

#[cfg(test)]
mod tests;
