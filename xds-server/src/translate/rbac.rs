//! Traffic permissions → Envoy RBAC filters on a service's inbound listener (HTTP filters for
//! HTTP services: a denied request gets 403; network filters for TCP services: a denied
//! connection is closed).
//!
//! Deny wins: one enforcing DENY filter per deny permission comes first, then one shadow filter
//! per shadow deny (it only counts `shadow_denied` and logs), then, when the mesh default is
//! deny, one ALLOW filter whose policy holds every allow permission. Each filter has a single
//! policy: RBAC's policies are a protobuf map, and one entry keeps the encoding (and so the
//! version) deterministic. A permission is one principal: the caller's SPIFFE ID (the peer
//! certificate's URI SAN), and its path prefixes and methods, all ANDed.

use std::collections::HashMap;

use envoy_types::pb::envoy::{
    config::{
        rbac::v3::{
            Permission, Policy, Principal, Rbac as Rules, permission,
            principal::{self, Authenticated},
            rbac::Action,
        },
        route::v3::{HeaderMatcher, header_matcher::HeaderMatchSpecifier},
    },
    extensions::filters::{http::rbac::v3::Rbac as HttpRbac, network::rbac::v3::Rbac as NetRbac},
    r#type::matcher::v3::{PathMatcher, StringMatcher, path_matcher, string_matcher::MatchPattern},
};

use crate::model::{MeshSecurity, PermissionAction, PermissionsDefault, TrafficPermission};

/// The permissions to one service, sorted into what each filter does.
pub(super) struct Plan<'a> {
    /// Enforced denies, by name.
    pub deny: Vec<(&'a str, &'a TrafficPermission)>,
    /// Shadow denies, by name.
    pub shadow: Vec<(&'a str, &'a TrafficPermission)>,
    /// Allows, by name; enforced only under a default deny.
    pub allow: Vec<(&'a str, &'a TrafficPermission)>,
    pub default: PermissionsDefault,
}

impl<'a> Plan<'a> {
    /// The permissions in `permissions` (in name order) that apply to `service`.
    pub fn new(
        service: &str,
        permissions: impl IntoIterator<Item = (&'a str, &'a TrafficPermission)>,
        default: PermissionsDefault,
    ) -> Self {
        let mut plan = Plan {
            deny: Vec::new(),
            shadow: Vec::new(),
            allow: Vec::new(),
            default,
        };
        for (name, p) in permissions.into_iter().filter(|(_, p)| p.to == service) {
            match (p.action, p.shadow) {
                (PermissionAction::Deny, false) => plan.deny.push((name, p)),
                (PermissionAction::Deny, true) => plan.shadow.push((name, p)),
                (PermissionAction::Allow, _) => plan.allow.push((name, p)),
            }
        }
        plan
    }

    /// Whether no filter is needed (nothing denied, shadowed, or restricted by default).
    pub fn is_empty(&self) -> bool {
        self.deny.is_empty() && self.shadow.is_empty() && self.default == PermissionsDefault::Allow
    }

    /// Every permission that shapes the filters, in filter order.
    pub fn applied(&self) -> impl Iterator<Item = (&'a str, &'a TrafficPermission)> + '_ {
        let allows = match self.default {
            PermissionsDefault::Deny => self.allow.as_slice(),
            PermissionsDefault::Allow => &[],
        };
        self.deny.iter().chain(&self.shadow).chain(allows).copied()
    }
}

/// One RBAC filter's settings, before they become the HTTP or network message.
#[derive(Clone)]
pub(super) struct Filter {
    /// A name unique in the chain: `rbac|deny|<permission>`, `rbac|shadow|<permission>` or
    /// `rbac|default-deny`.
    pub name: String,
    pub rules: Option<Rules>,
    pub shadow_rules: Option<Rules>,
    /// Distinguishes this filter's statistics from the others' (Envoy adds the `.`:
    /// `http.inbound|<S>.rbac.<permission>.denied`, `….<permission>.shadow_denied`).
    pub stat_prefix: String,
}

/// The filters for `plan`, in order. `http` says whether paths and methods can be checked;
/// a TCP service's permission that narrows by them is left out, with a warning.
pub(super) fn filters(
    plan: &Plan,
    security: &MeshSecurity,
    service: &str,
    http: bool,
    warnings: &mut Vec<String>,
) -> Vec<Filter> {
    let mut usable = |name: &str, p: &TrafficPermission| {
        let ok = http || !p.is_narrowed();
        if !ok {
            warnings.push(format!(
                "traffic permission '{name}' left out: it names paths or methods, which a tcp \
                 service '{service}' cannot check; remove them"
            ));
        }
        ok
    };
    let mut out = Vec::new();
    for (kind, list) in [("deny", &plan.deny), ("shadow", &plan.shadow)] {
        for (name, p) in list {
            if !usable(name, p) {
                continue;
            }
            let rules = Some(single(
                Action::Deny,
                name,
                vec![principal(p, security, http)],
            ));
            let (rules, shadow_rules) = if kind == "deny" {
                (rules, None)
            } else {
                (None, rules)
            };
            out.push(Filter {
                name: format!("rbac|{kind}|{name}"),
                rules,
                shadow_rules,
                stat_prefix: name.to_string(),
            });
        }
    }
    if plan.default == PermissionsDefault::Deny {
        let principals: Vec<Principal> = plan
            .allow
            .iter()
            .filter(|(name, p)| usable(name, p))
            .map(|(_, p)| principal(p, security, http))
            .collect();
        // No allow at all: an ALLOW filter without policies denies everything.
        let rules = if principals.is_empty() {
            Rules {
                action: Action::Allow as i32,
                ..Rules::default()
            }
        } else {
            single(Action::Allow, "allow", principals)
        };
        out.push(Filter {
            name: "rbac|default-deny".to_string(),
            rules: Some(rules),
            shadow_rules: None,
            stat_prefix: "default-deny".to_string(),
        });
    }
    out
}

impl Filter {
    pub fn http(self) -> HttpRbac {
        HttpRbac {
            rules_stat_prefix: if self.rules.is_some() {
                self.stat_prefix.clone()
            } else {
                String::new()
            },
            rules: self.rules,
            shadow_rules_stat_prefix: if self.shadow_rules.is_some() {
                self.stat_prefix
            } else {
                String::new()
            },
            shadow_rules: self.shadow_rules,
            ..HttpRbac::default()
        }
    }

    /// `listener` is the inbound listener's name, which opens the network filter's statistics.
    pub fn network(self, listener: &str) -> NetRbac {
        NetRbac {
            rules: self.rules,
            stat_prefix: format!("{listener}.{}.", self.stat_prefix),
            shadow_rules_stat_prefix: if self.shadow_rules.is_some() {
                self.stat_prefix
            } else {
                String::new()
            },
            shadow_rules: self.shadow_rules,
            ..NetRbac::default()
        }
    }
}

/// Rules with one policy, `name`, matching any of `principals` on any request.
fn single(action: Action, name: &str, principals: Vec<Principal>) -> Rules {
    let policy = Policy {
        permissions: vec![Permission {
            rule: Some(permission::Rule::Any(true)),
        }],
        principals,
        ..Policy::default()
    };
    Rules {
        action: action as i32,
        policies: HashMap::from([(name.to_string(), policy)]),
        ..Rules::default()
    }
}

/// The principal of one permission: its callers, and (for HTTP) its paths and methods.
fn principal(p: &TrafficPermission, security: &MeshSecurity, http: bool) -> Principal {
    let callers: Vec<Principal> = if p.from_any() {
        // Any verified peer certificate.
        vec![id(principal::Identifier::Authenticated(Authenticated {
            principal_name: None,
        }))]
    } else {
        p.from_services()
            .map(|f| {
                id(principal::Identifier::Authenticated(Authenticated {
                    principal_name: Some(exact(security.spiffe_id(f))),
                }))
            })
            .collect()
    };
    let mut all = vec![any_of(callers)];
    if http && !p.paths.is_empty() {
        all.push(any_of(
            p.paths
                .iter()
                .map(|path| {
                    id(principal::Identifier::UrlPath(PathMatcher {
                        rule: Some(path_matcher::Rule::Path(StringMatcher {
                            match_pattern: Some(MatchPattern::Prefix(path.clone())),
                            ..StringMatcher::default()
                        })),
                    }))
                })
                .collect(),
        ));
    }
    if http && !p.methods.is_empty() {
        all.push(any_of(
            p.methods
                .iter()
                .map(|m| {
                    id(principal::Identifier::Header(HeaderMatcher {
                        name: ":method".to_string(),
                        header_match_specifier: Some(HeaderMatchSpecifier::StringMatch(exact(
                            m.clone(),
                        ))),
                        ..HeaderMatcher::default()
                    }))
                })
                .collect(),
        ));
    }
    if all.len() == 1 {
        all.remove(0)
    } else {
        id(principal::Identifier::AndIds(principal::Set { ids: all }))
    }
}

fn id(identifier: principal::Identifier) -> Principal {
    Principal {
        identifier: Some(identifier),
    }
}

/// One principal as itself, several as their OR.
fn any_of(mut ids: Vec<Principal>) -> Principal {
    if ids.len() == 1 {
        ids.remove(0)
    } else {
        id(principal::Identifier::OrIds(principal::Set { ids }))
    }
}

fn exact(value: String) -> StringMatcher {
    StringMatcher {
        match_pattern: Some(MatchPattern::Exact(value)),
        ..StringMatcher::default()
    }
}
