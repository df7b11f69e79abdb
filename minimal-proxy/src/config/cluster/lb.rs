//! `lb_policy` and its `lb_config` → [`LbPolicy`], with Envoy's defaults and bounds; and
//! `common_lb_config`, of which only `locality_weighted_lb_config` is implemented.

use envoy_types::pb::envoy::config::cluster::v3::cluster::{
    CommonLbConfig, LbConfig, LbPolicy as EnvoyLb, LeastRequestLbConfig, MaglevLbConfig,
    RingHashLbConfig, RoundRobinLbConfig,
    common_lb_config::{LocalityConfigSpecifier, LocalityWeightedLbConfig},
    ring_hash_lb_config::HashFunction,
};

use crate::config::{
    LbPolicy,
    check::{self, Refusal, Result, unset},
};

const POLICIES: &str = "ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH, MAGLEV";
/// Envoy's defaults and limits.
const CHOICE_COUNT: u32 = 2;
const MIN_RING_SIZE: u64 = 1024;
const MAX_RING_SIZE: u64 = 8 * 1024 * 1024;
const MAGLEV_TABLE_SIZE: u64 = 65537;
const MAGLEV_MAX_TABLE_SIZE: u64 = 5_000_011;

pub(super) fn lb_policy(policy: i32, config: &Option<LbConfig>) -> Result<LbPolicy> {
    let policy = EnvoyLb::try_from(policy)
        .map_err(|_| check::unknown_enum("lb_policy", policy, POLICIES))?;
    let lb = match (policy, config) {
        (EnvoyLb::RoundRobin, None) => LbPolicy::RoundRobin,
        (EnvoyLb::RoundRobin, Some(LbConfig::RoundRobinLbConfig(rr))) => {
            let RoundRobinLbConfig { slow_start_config } = rr;
            check::nested(|| {
                unset!(slow_start_config);
                Ok(())
            })
            .map_err(|r| r.under("round_robin_lb_config"))?;
            LbPolicy::RoundRobin
        }
        (EnvoyLb::LeastRequest, None) => LbPolicy::LeastRequest {
            choice_count: CHOICE_COUNT,
        },
        (EnvoyLb::LeastRequest, Some(LbConfig::LeastRequestLbConfig(lr))) => {
            least_request(lr).map_err(|r| r.under("least_request_lb_config"))?
        }
        (EnvoyLb::Random, None) => LbPolicy::Random,
        (EnvoyLb::RingHash, None) => LbPolicy::RingHash {
            min_ring_size: MIN_RING_SIZE,
            max_ring_size: MAX_RING_SIZE,
        },
        (EnvoyLb::RingHash, Some(LbConfig::RingHashLbConfig(rh))) => {
            ring_hash(rh).map_err(|r| r.under("ring_hash_lb_config"))?
        }
        (EnvoyLb::Maglev, None) => LbPolicy::Maglev {
            table_size: MAGLEV_TABLE_SIZE,
        },
        (EnvoyLb::Maglev, Some(LbConfig::MaglevLbConfig(m))) => {
            maglev(m).map_err(|r| r.under("maglev_lb_config"))?
        }
        (
            EnvoyLb::RoundRobin
            | EnvoyLb::LeastRequest
            | EnvoyLb::Random
            | EnvoyLb::RingHash
            | EnvoyLb::Maglev,
            Some(other),
        ) => {
            // A config for another policy: Envoy ignores it; refused so it is not mistaken
            // for one that applies.
            return Err(Refusal::new(
                config_name(other),
                format!("does not apply to lb_policy {}", policy.as_str_name()),
            ));
        }
        (other, _) => {
            return Err(check::unsupported_value(
                "lb_policy",
                other.as_str_name(),
                POLICIES,
            ));
        }
    };
    Ok(lb)
}

/// `common_lb_config` → whether locality weights apply. Envoy ignores the assignment's
/// locality weights unless `locality_weighted_lb_config` is set; every other field must stay
/// at its default. Not with RANDOM: Envoy picks a locality by weight and then a host at random,
/// while the proxy's random pick is uniform over the hosts.
pub(super) fn locality_weighted(
    common: &Option<CommonLbConfig>,
    policy: &LbPolicy,
) -> Result<bool> {
    let Some(common) = common else {
        return Ok(false);
    };
    let CommonLbConfig {
        healthy_panic_threshold,
        update_merge_window,
        ignore_new_hosts_until_first_hc,
        close_connections_on_host_set_change,
        consistent_hashing_lb_config,
        override_host_status,
        locality_config_specifier,
    } = common;
    check::nested(|| {
        unset!(
            healthy_panic_threshold,
            update_merge_window,
            ignore_new_hosts_until_first_hc,
            close_connections_on_host_set_change,
            consistent_hashing_lb_config,
            override_host_status,
        );
        Ok(())
    })
    .map_err(|r| r.under("common_lb_config"))?;
    match locality_config_specifier {
        None => Ok(false),
        Some(LocalityConfigSpecifier::LocalityWeightedLbConfig(LocalityWeightedLbConfig {})) => {
            if *policy == LbPolicy::Random {
                return Err(Refusal::new(
                    "common_lb_config.locality_weighted_lb_config",
                    "is not supported with lb_policy RANDOM by minimal-proxy (its random pick \
                     ignores weights); use ROUND_ROBIN or LEAST_REQUEST, or leave it unset",
                ));
            }
            Ok(true)
        }
        Some(LocalityConfigSpecifier::ZoneAwareLbConfig(_)) => Err(Refusal::new(
            "common_lb_config.zone_aware_lb_config",
            "zone-aware routing is not supported by minimal-proxy; leave it unset, or use \
             locality_weighted_lb_config",
        )),
    }
}

fn config_name(config: &LbConfig) -> &'static str {
    match config {
        LbConfig::RingHashLbConfig(_) => "ring_hash_lb_config",
        LbConfig::MaglevLbConfig(_) => "maglev_lb_config",
        LbConfig::OriginalDstLbConfig(_) => "original_dst_lb_config",
        LbConfig::LeastRequestLbConfig(_) => "least_request_lb_config",
        LbConfig::RoundRobinLbConfig(_) => "round_robin_lb_config",
    }
}

fn least_request(lr: &LeastRequestLbConfig) -> Result<LbPolicy> {
    let LeastRequestLbConfig {
        choice_count,
        active_request_bias,
        slow_start_config,
    } = lr;
    unset!(active_request_bias, slow_start_config);
    let choice_count = check::uint32(choice_count).unwrap_or(CHOICE_COUNT);
    if choice_count < 2 {
        return Err(Refusal::new(
            "choice_count",
            format!("must be at least 2, got {choice_count}"),
        ));
    }
    Ok(LbPolicy::LeastRequest { choice_count })
}

fn ring_hash(rh: &RingHashLbConfig) -> Result<LbPolicy> {
    let RingHashLbConfig {
        minimum_ring_size,
        hash_function,
        maximum_ring_size,
    } = rh;
    match HashFunction::try_from(*hash_function) {
        Ok(HashFunction::XxHash) => {}
        Ok(other) => {
            return Err(check::unsupported_value(
                "hash_function",
                other.as_str_name(),
                "XX_HASH",
            ));
        }
        Err(_) => {
            return Err(check::unknown_enum(
                "hash_function",
                *hash_function,
                "XX_HASH",
            ));
        }
    }
    let min_ring_size = minimum_ring_size
        .as_ref()
        .map_or(MIN_RING_SIZE, |v| v.value);
    let max_ring_size = maximum_ring_size
        .as_ref()
        .map_or(MAX_RING_SIZE, |v| v.value);
    if max_ring_size > MAX_RING_SIZE {
        return Err(Refusal::new(
            "maximum_ring_size",
            format!("must be at most {MAX_RING_SIZE}, got {max_ring_size}"),
        ));
    }
    if min_ring_size > max_ring_size {
        return Err(Refusal::new(
            "minimum_ring_size",
            format!("{min_ring_size} is greater than maximum_ring_size {max_ring_size}"),
        ));
    }
    Ok(LbPolicy::RingHash {
        min_ring_size,
        max_ring_size,
    })
}

fn maglev(m: &MaglevLbConfig) -> Result<LbPolicy> {
    let MaglevLbConfig { table_size } = m;
    let table_size = table_size.as_ref().map_or(MAGLEV_TABLE_SIZE, |v| v.value);
    if table_size > MAGLEV_MAX_TABLE_SIZE || !is_prime(table_size) {
        return Err(Refusal::new(
            "table_size",
            format!("must be a prime number at most {MAGLEV_MAX_TABLE_SIZE}, got {table_size}"),
        ));
    }
    Ok(LbPolicy::Maglev { table_size })
}

/// Trial division: table sizes are at most about five million.
fn is_prime(n: u64) -> bool {
    n >= 2
        && (2..)
            .take_while(|d| d * d <= n)
            .all(|d| !n.is_multiple_of(d))
}
