//! RBAC permissions and principals → [`RbacMatcher`]. Permissions: `any`, `and_rules`,
//! `or_rules`, `not_rule`, `header`, `url_path`. Principals: `any`, `and_ids`, `or_ids`,
//! `not_id`, `authenticated`, `header`, `url_path`. Addresses, ports, SNI, metadata, filter
//! state and extensions are refused by field.

#![allow(deprecated)] // `source_ip` is named so that it is refused.

use envoy_types::pb::envoy::{
    config::rbac::v3::{
        Permission, Principal,
        permission::{Rule, Set as Rules},
        principal::{Authenticated, Identifier, Set as Ids},
    },
    r#type::matcher::v3::{PathMatcher, path_matcher},
};

use crate::config::{
    RbacMatcher,
    check::{Refusal, Result, not_supported, required},
    route::{header_matcher, string_match},
};

pub(super) fn permission(p: &Permission) -> Result<RbacMatcher> {
    let Permission { rule } = p;
    let rule = rule.as_ref().ok_or_else(|| {
        Refusal::new(
            "rule",
            "is required: one of any, and_rules, or_rules, not_rule, header, url_path",
        )
    })?;
    Ok(match rule {
        Rule::Any(any) => always(*any)?,
        Rule::AndRules(set) => RbacMatcher::And(rules(set).map_err(|e| e.under("and_rules"))?),
        Rule::OrRules(set) => RbacMatcher::Or(rules(set).map_err(|e| e.under("or_rules"))?),
        Rule::NotRule(p) => {
            RbacMatcher::Not(Box::new(permission(p).map_err(|e| e.under("not_rule"))?))
        }
        Rule::Header(h) => RbacMatcher::Header(header_matcher(h).map_err(|e| e.under("header"))?),
        Rule::UrlPath(p) => url_path(p).map_err(|e| e.under("url_path"))?,
        Rule::DestinationIp(_) => return Err(not_supported("destination_ip")),
        Rule::DestinationPort(_) => return Err(not_supported("destination_port")),
        Rule::DestinationPortRange(_) => return Err(not_supported("destination_port_range")),
        Rule::Metadata(_) => return Err(not_supported("metadata")),
        Rule::RequestedServerName(_) => return Err(not_supported("requested_server_name")),
        Rule::Matcher(_) => return Err(not_supported("matcher")),
        Rule::UriTemplate(_) => return Err(not_supported("uri_template")),
        Rule::SourcedMetadata(_) => return Err(not_supported("sourced_metadata")),
    })
}

pub(super) fn principal(p: &Principal) -> Result<RbacMatcher> {
    let Principal { identifier } = p;
    let identifier = identifier.as_ref().ok_or_else(|| {
        Refusal::new(
            "identifier",
            "is required: one of any, and_ids, or_ids, not_id, authenticated, header, url_path",
        )
    })?;
    Ok(match identifier {
        Identifier::Any(any) => always(*any)?,
        Identifier::AndIds(set) => RbacMatcher::And(ids(set).map_err(|e| e.under("and_ids"))?),
        Identifier::OrIds(set) => RbacMatcher::Or(ids(set).map_err(|e| e.under("or_ids"))?),
        Identifier::NotId(p) => {
            RbacMatcher::Not(Box::new(principal(p).map_err(|e| e.under("not_id"))?))
        }
        Identifier::Authenticated(a) => authenticated(a).map_err(|e| e.under("authenticated"))?,
        Identifier::Header(h) => {
            RbacMatcher::Header(header_matcher(h).map_err(|e| e.under("header"))?)
        }
        Identifier::UrlPath(p) => url_path(p).map_err(|e| e.under("url_path"))?,
        Identifier::SourceIp(_) => return Err(not_supported("source_ip")),
        Identifier::DirectRemoteIp(_) => return Err(not_supported("direct_remote_ip")),
        Identifier::RemoteIp(_) => return Err(not_supported("remote_ip")),
        Identifier::Metadata(_) => return Err(not_supported("metadata")),
        Identifier::FilterState(_) => return Err(not_supported("filter_state")),
        Identifier::SourcedMetadata(_) => return Err(not_supported("sourced_metadata")),
        Identifier::Custom(_) => return Err(not_supported("custom")),
    })
}

/// `any` must be `true` (Envoy's validation refuses `false`).
fn always(any: bool) -> Result<RbacMatcher> {
    if any {
        Ok(RbacMatcher::Any)
    } else {
        Err(Refusal::new("any", "must be true"))
    }
}

fn rules(set: &Rules) -> Result<Vec<RbacMatcher>> {
    let Rules { rules } = set;
    if rules.is_empty() {
        return Err(Refusal::new("rules", "must hold at least one permission"));
    }
    rules
        .iter()
        .enumerate()
        .map(|(i, p)| permission(p).map_err(|e| e.under(format!("rules[{i}]"))))
        .collect()
}

fn ids(set: &Ids) -> Result<Vec<RbacMatcher>> {
    let Ids { ids } = set;
    if ids.is_empty() {
        return Err(Refusal::new("ids", "must hold at least one principal"));
    }
    ids.iter()
        .enumerate()
        .map(|(i, p)| principal(p).map_err(|e| e.under(format!("ids[{i}]"))))
        .collect()
}

fn authenticated(a: &Authenticated) -> Result<RbacMatcher> {
    let Authenticated { principal_name } = a;
    let name = principal_name
        .as_ref()
        .map(|m| string_match(m).map_err(|e| e.under("principal_name")))
        .transpose()?;
    Ok(RbacMatcher::Authenticated(name))
}

fn url_path(p: &PathMatcher) -> Result<RbacMatcher> {
    let PathMatcher { rule } = p;
    match rule {
        Some(path_matcher::Rule::Path(m)) => Ok(RbacMatcher::UrlPath(
            string_match(m).map_err(|e| e.under("path"))?,
        )),
        None => Err(required("path")),
    }
}
