//! Subset load balancing: selection by labels and both fallback policies.

use std::collections::BTreeSet;

use super::*;
use crate::{
    config::{SubsetConfig, SubsetFallback, SubsetSelector},
    upstream::Error,
};

fn labelled(port: u16, labels: &[(&str, &str)]) -> Endpoint {
    Endpoint {
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..endpoint(addr(port), 1)
    }
}

fn selector(keys: &[&str], fallback: SubsetFallback) -> SubsetSelector {
    SubsetSelector {
        keys: keys.iter().map(|k| k.to_string()).collect(),
        fallback,
    }
}

/// v1/prod on 1, v2/prod on 2, v1/canary on 3; selectors `[version]` (no fallback) and
/// `[stage, version]` (any endpoint); the cluster's own fallback as given.
fn subset_cluster(fallback: SubsetFallback) -> Arc<Cluster> {
    let mut config = config(
        LbPolicy::RoundRobin,
        assignment(vec![
            labelled(1, &[("version", "v1"), ("stage", "prod")]),
            labelled(2, &[("version", "v2"), ("stage", "prod")]),
            labelled(3, &[("version", "v1"), ("stage", "canary")]),
        ]),
    );
    config.subsets = Some(SubsetConfig {
        fallback,
        selectors: vec![
            selector(&["version"], SubsetFallback::NoFallback),
            selector(&["stage", "version"], SubsetFallback::AnyEndpoint),
        ],
    });
    cluster(config)
}

fn matching(pairs: &[(&str, &str)]) -> LbContext {
    LbContext {
        metadata_match: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..LbContext::default()
    }
}

fn ports(c: &Cluster, ctx: &LbContext) -> BTreeSet<u16> {
    picks(c, ctx, 60).into_keys().collect()
}

#[test]
fn a_match_picks_only_the_hosts_carrying_those_labels() {
    let c = subset_cluster(SubsetFallback::NoFallback);
    assert_eq!(
        ports(&c, &matching(&[("version", "v1")])),
        BTreeSet::from([1, 3])
    );
    assert_eq!(
        ports(&c, &matching(&[("stage", "prod"), ("version", "v2")])),
        BTreeSet::from([2])
    );
    // [version] gives v1, v2; [stage, version] gives three pairs.
    assert_eq!(c.stats().lb_subsets_active.get(), 5);
    assert_eq!(c.stats().lb_subsets_selected.get(), 120);
}

#[test]
fn the_selector_with_the_same_keys_decides_the_fallback() {
    let c = subset_cluster(SubsetFallback::AnyEndpoint);
    // [version] says no fallback.
    assert!(matches!(
        c.select(&matching(&[("version", "v9")])),
        Err(Error::NoHealthyUpstream)
    ));
    // [stage, version] says any endpoint.
    let any = matching(&[("stage", "dev"), ("version", "v1")]);
    assert_eq!(ports(&c, &any), BTreeSet::from([1, 2, 3]));
    assert_eq!(c.stats().lb_subsets_fallback.get(), 60);
}

#[test]
fn keys_no_selector_names_and_no_match_get_the_clusters_fallback() {
    let none = subset_cluster(SubsetFallback::NoFallback);
    assert!(none.select(&matching(&[("zone", "x")])).is_err());
    assert!(none.select(&LbContext::default()).is_err());

    let any = subset_cluster(SubsetFallback::AnyEndpoint);
    assert_eq!(
        ports(&any, &matching(&[("zone", "x")])),
        BTreeSet::from([1, 2, 3])
    );
    assert_eq!(
        ports(&any, &LbContext::default()),
        BTreeSet::from([1, 2, 3])
    );
}

#[test]
fn subsets_follow_assignment_changes() {
    let c = subset_cluster(SubsetFallback::NoFallback);
    c.set_assignment(&assignment(vec![labelled(4, &[("version", "v3")])]));
    assert_eq!(
        ports(&c, &matching(&[("version", "v3")])),
        BTreeSet::from([4])
    );
    assert!(c.select(&matching(&[("version", "v1")])).is_err());
    assert_eq!(c.stats().lb_subsets_active.get(), 1);
    assert_eq!(c.stats().lb_subsets_removed.get(), 5);
}

/// Envoy's subsets ignore locality weights (without `locality_weight_aware`), while the
/// cluster's fallback to any endpoint honours them.
#[test]
fn subsets_ignore_locality_weights() {
    let locality = |zone: &str, weight, port| LocalityEndpoints {
        zone: zone.into(),
        weight: Some(weight),
        endpoints: vec![labelled(port, &[("version", "v1")])],
    };
    let mut config = config(
        LbPolicy::RoundRobin,
        LoadAssignment {
            cluster_name: "web".into(),
            localities: vec![locality("a", 1, 1), locality("b", 3, 2)],
        },
    );
    config.locality_weighted = true;
    config.subsets = Some(SubsetConfig {
        fallback: SubsetFallback::AnyEndpoint,
        selectors: vec![selector(&["version"], SubsetFallback::NoFallback)],
    });
    let c = cluster(config);
    let subset = picks(&c, &matching(&[("version", "v1")]), 100);
    assert_eq!(subset, BTreeMap::from([(1, 50), (2, 50)]));
    let fallback = picks(&c, &LbContext::default(), 100);
    assert_eq!(fallback, BTreeMap::from([(1, 25), (2, 75)]));
}
