//! Subset load balancing (`lb_subset_config`), as Envoy does it: for each selector (a set of
//! label keys) the hosts carrying all of those keys are grouped by their values, and each group
//! gets its own load balancers. A request's `metadata_match` picks the group with exactly those
//! key/values; when there is none, the selector with the same keys decides the fallback, else
//! the cluster's; a request without `metadata_match` gets the cluster's fallback.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use crate::config::{LbPolicy, SubsetConfig, SubsetFallback};

use super::{host::Host, host_set::Tiers};

/// Label key/values identifying one subset.
pub(crate) type SubsetKey = BTreeMap<String, String>;

#[derive(Debug)]
pub(crate) struct Subsets {
    config: SubsetConfig,
    index: BTreeMap<SubsetKey, Tiers>,
}

/// Where a request's picks come from.
#[derive(Debug)]
pub(crate) enum Choice<'a> {
    Subset(&'a Tiers),
    Fallback(SubsetFallback),
}

impl Subsets {
    pub fn build(config: &SubsetConfig, policy: &LbPolicy, hosts: &[Arc<Host>]) -> Subsets {
        let mut groups: BTreeMap<SubsetKey, Vec<Arc<Host>>> = BTreeMap::new();
        // Each key set once, so no host lands twice in a group.
        let key_sets: BTreeSet<&Vec<String>> = config.selectors.iter().map(|s| &s.keys).collect();
        for keys in key_sets {
            for host in hosts {
                let key: Option<SubsetKey> = keys
                    .iter()
                    .map(|k| host.labels.get(k).map(|v| (k.clone(), v.clone())))
                    .collect();
                if let Some(key) = key {
                    groups.entry(key).or_default().push(host.clone());
                }
            }
        }
        let index = groups
            .into_iter()
            // Envoy's subsets ignore locality weights (`locality_weight_aware` is refused).
            .map(|(key, hosts)| (key, Tiers::build(policy, &hosts, false)))
            .collect();
        Subsets {
            config: config.clone(),
            index,
        }
    }

    /// The subsets that exist (`lb_subsets_active`, created and removed between builds).
    pub fn keys(&self) -> impl Iterator<Item = &SubsetKey> {
        self.index.keys()
    }

    pub fn choose(&self, metadata: &BTreeMap<String, String>) -> Choice<'_> {
        if metadata.is_empty() {
            return Choice::Fallback(self.config.fallback);
        }
        if let Some(tiers) = self.index.get(metadata) {
            return Choice::Subset(tiers);
        }
        let fallback = self
            .config
            .selectors
            .iter()
            .find(|s| s.keys.iter().eq(metadata.keys()))
            .map_or(self.config.fallback, |s| s.fallback);
        Choice::Fallback(fallback)
    }
}
