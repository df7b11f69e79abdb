//! `lb_subset_config` → [`SubsetConfig`]: label-key selectors with NO_FALLBACK or
//! ANY_ENDPOINT fallbacks; default subsets and per-selector key subsets are refused.

use envoy_types::pb::envoy::config::cluster::v3::cluster::{
    LbSubsetConfig,
    lb_subset_config::{
        LbSubsetFallbackPolicy, LbSubsetMetadataFallbackPolicy, LbSubsetSelector,
        lb_subset_selector::LbSubsetSelectorFallbackPolicy,
    },
};

use crate::config::{
    SubsetConfig, SubsetFallback, SubsetSelector,
    check::{self, Refusal, Result, unset},
};

const FALLBACKS: &str = "NO_FALLBACK, ANY_ENDPOINT";
const SELECTOR_FALLBACKS: &str = "NOT_DEFINED, NO_FALLBACK, ANY_ENDPOINT";

pub(super) fn subset_config(s: &LbSubsetConfig) -> Result<SubsetConfig> {
    let LbSubsetConfig {
        fallback_policy,
        default_subset,
        subset_selectors,
        locality_weight_aware,
        scale_locality_weight,
        panic_mode_any,
        list_as_any,
        metadata_fallback_policy,
    } = s;
    unset!(
        default_subset,
        locality_weight_aware,
        scale_locality_weight,
        panic_mode_any,
        list_as_any
    );
    match LbSubsetMetadataFallbackPolicy::try_from(*metadata_fallback_policy) {
        Ok(LbSubsetMetadataFallbackPolicy::MetadataNoFallback) => {}
        _ => return Err(check::not_supported("metadata_fallback_policy")),
    }
    let fallback = match LbSubsetFallbackPolicy::try_from(*fallback_policy) {
        Ok(LbSubsetFallbackPolicy::NoFallback) => SubsetFallback::NoFallback,
        Ok(LbSubsetFallbackPolicy::AnyEndpoint) => SubsetFallback::AnyEndpoint,
        Ok(other) => {
            return Err(check::unsupported_value(
                "fallback_policy",
                other.as_str_name(),
                FALLBACKS,
            ));
        }
        Err(_) => {
            return Err(check::unknown_enum(
                "fallback_policy",
                *fallback_policy,
                FALLBACKS,
            ));
        }
    };
    let selectors = subset_selectors
        .iter()
        .enumerate()
        .map(|(i, sel)| {
            selector(sel, fallback).map_err(|r| r.under(format!("subset_selectors[{i}]")))
        })
        .collect::<Result<_>>()?;
    Ok(SubsetConfig {
        fallback,
        selectors,
    })
}

/// A selector; NOT_DEFINED inherits the top-level fallback, as in Envoy.
fn selector(sel: &LbSubsetSelector, inherited: SubsetFallback) -> Result<SubsetSelector> {
    let LbSubsetSelector {
        keys,
        single_host_per_subset,
        fallback_policy,
        fallback_keys_subset,
    } = sel;
    unset!(single_host_per_subset, fallback_keys_subset);
    if keys.is_empty() {
        return Err(Refusal::new("keys", "must name at least one key"));
    }
    let fallback = match LbSubsetSelectorFallbackPolicy::try_from(*fallback_policy) {
        Ok(LbSubsetSelectorFallbackPolicy::NotDefined) => inherited,
        Ok(LbSubsetSelectorFallbackPolicy::NoFallback) => SubsetFallback::NoFallback,
        Ok(LbSubsetSelectorFallbackPolicy::AnyEndpoint) => SubsetFallback::AnyEndpoint,
        Ok(other) => {
            return Err(check::unsupported_value(
                "fallback_policy",
                other.as_str_name(),
                SELECTOR_FALLBACKS,
            ));
        }
        Err(_) => {
            return Err(check::unknown_enum(
                "fallback_policy",
                *fallback_policy,
                SELECTOR_FALLBACKS,
            ));
        }
    };
    let mut keys = keys.clone();
    keys.sort();
    keys.dedup();
    Ok(SubsetSelector { keys, fallback })
}
