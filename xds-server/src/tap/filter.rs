//! A tap's filter: parsed from the query string, checked on every event, and turned into
//! which proxies and listeners log and what their access logs filter out.

use serde::Serialize;

use super::TapEvent;
use crate::{
    model::{ListenerProtocol, Mesh},
    translate::{LogMatch, NodeInfo, StatusMatch},
};

/// The longest service, route or node name accepted (a DNS name's limit).
const MAX_NAME_BYTES: usize = 253;
/// The longest path prefix accepted.
const MAX_PATH_PREFIX_BYTES: usize = 1024;

/// What one tap wants to see; every field given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Filter {
    /// The destination service (the upstream cluster the request went to).
    pub service: Option<String>,
    /// The mesh route the request took.
    pub route: Option<String>,
    /// The proxy that served the request.
    pub node_id: Option<String>,
    /// The start of the request's `:path` (query included).
    pub path_prefix: Option<String>,
    /// The response status: a code (`503`) or a class (`5xx`).
    #[serde(serialize_with = "status_text")]
    pub status: Option<StatusMatch>,
}

/// A query the tap refuses; `field` names the parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("unknown query parameter '{0}'; use service, route, node_id, path_prefix and status")]
    Unknown(String),
    #[error("query parameter '{0}' is given twice; give it once")]
    Repeated(&'static str),
    #[error("query parameter '{field}' {problem}")]
    Invalid {
        field: &'static str,
        problem: String,
    },
}

impl FilterError {
    /// The query parameter at fault.
    pub fn field(&self) -> &str {
        match self {
            Self::Unknown(name) => name,
            Self::Repeated(field) | Self::Invalid { field, .. } => field,
        }
    }
}

impl Filter {
    /// Parses `service`, `route`, `node_id`, `path_prefix` and `status`; anything else, a
    /// repeated parameter or an empty or malformed value is refused.
    pub fn parse(query: Vec<(String, String)>) -> Result<Self, FilterError> {
        let mut filter = Filter::default();
        for (key, value) in query {
            let (field, slot, parsed): (&'static str, _, _) = match key.as_str() {
                "service" => ("service", &mut filter.service, name("service", value)?),
                "route" => ("route", &mut filter.route, name("route", value)?),
                "node_id" => ("node_id", &mut filter.node_id, name("node_id", value)?),
                "path_prefix" => ("path_prefix", &mut filter.path_prefix, path_prefix(value)?),
                "status" => {
                    if filter.status.replace(status(&value)?).is_some() {
                        return Err(FilterError::Repeated("status"));
                    }
                    continue;
                }
                _ => return Err(FilterError::Unknown(key)),
            };
            if slot.replace(parsed).is_some() {
                return Err(FilterError::Repeated(field));
            }
        }
        Ok(filter)
    }

    /// Whether `event` is one this tap shows.
    pub fn matches(&self, event: &TapEvent) -> bool {
        same(&self.node_id, Some(&*event.node_id))
            && same(&self.service, event.service.as_deref())
            && same(&self.route, event.route.as_deref())
            && self
                .path_prefix
                .as_ref()
                .is_none_or(|p| event.path.starts_with(p.as_str()))
            && self.status.is_none_or(|s| s.matches(event.status))
    }

    /// Whether the proxy `node` is one this tap watches.
    pub fn selects(&self, node: &NodeInfo) -> bool {
        self.node_id.as_ref().is_none_or(|id| *id == node.id)
    }

    /// Whether requests through the listener `name` can match: an HTTP listener whose routes
    /// include the tap's route and reach its service.
    pub fn concerns(&self, mesh: &Mesh, name: &str) -> bool {
        let Some(listener) = mesh.listeners.get(name) else {
            return false;
        };
        if listener.protocol != ListenerProtocol::Http {
            return false;
        }
        let routes = || {
            listener
                .routes
                .iter()
                .filter(|r| self.route.as_ref().is_none_or(|want| want == *r))
                .filter_map(|r| mesh.routes.get(r))
        };
        match &self.service {
            None => self.route.is_none() || routes().next().is_some(),
            Some(service) => routes().any(|route| {
                route
                    .rules
                    .iter()
                    .flat_map(|rule| &rule.destinations)
                    .any(|d| d.service == *service)
            }),
        }
    }

    /// What the proxy's access log filters on for this tap (the rest is checked here).
    pub fn log_match(&self) -> LogMatch {
        LogMatch {
            path_prefix: self.path_prefix.clone(),
            status: self.status,
        }
    }
}

fn same(want: &Option<String>, got: Option<&str>) -> bool {
    want.as_deref().is_none_or(|w| Some(w) == got)
}

fn status_text<S: serde::Serializer>(s: &Option<StatusMatch>, ser: S) -> Result<S::Ok, S::Error> {
    match s {
        Some(s) => ser.collect_str(s),
        None => ser.serialize_none(),
    }
}

fn invalid(field: &'static str, problem: impl Into<String>) -> FilterError {
    FilterError::Invalid {
        field,
        problem: problem.into(),
    }
}

fn name(field: &'static str, value: String) -> Result<String, FilterError> {
    if value.is_empty() {
        return Err(invalid(field, "is empty; give a name or leave it out"));
    }
    if value.len() > MAX_NAME_BYTES || value.chars().any(char::is_control) {
        return Err(invalid(
            field,
            format!("must be at most {MAX_NAME_BYTES} bytes with no control characters"),
        ));
    }
    Ok(value)
}

fn path_prefix(value: String) -> Result<String, FilterError> {
    const FIELD: &str = "path_prefix";
    if !value.starts_with('/') {
        return Err(invalid(
            FIELD,
            format!("must start with '/', got '{value}'"),
        ));
    }
    if value.len() > MAX_PATH_PREFIX_BYTES || value.chars().any(char::is_control) {
        return Err(invalid(
            FIELD,
            format!("must be at most {MAX_PATH_PREFIX_BYTES} bytes with no control characters"),
        ));
    }
    Ok(value)
}

/// `100`–`599`, or a class `1xx`–`5xx`.
fn status(value: &str) -> Result<StatusMatch, FilterError> {
    let bytes = value.as_bytes();
    let class = match bytes {
        [c @ b'1'..=b'5', b'x' | b'X', b'x' | b'X'] => Some(StatusMatch::Class(c - b'0')),
        _ => value
            .parse::<u16>()
            .ok()
            .filter(|c| (100..=599).contains(c) && value.len() == 3)
            .map(StatusMatch::Code),
    };
    class.ok_or_else(|| {
        invalid(
            "status",
            format!(
                "must be a code 100-599 (e.g. 503) or a class 1xx-5xx (e.g. 5xx), got '{value}'"
            ),
        )
    })
}

#[cfg(test)]
mod tests;
