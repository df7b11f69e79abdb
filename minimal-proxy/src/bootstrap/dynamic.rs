//! `dynamic_resources`: where clusters and listeners come from (ADS or their own services,
//! GRPC or DELTA_GRPC, V3 only), each channel resolved to the static cluster naming the
//! management server.

use super::{
    Channel, DEFAULT_INITIAL_FETCH_TIMEOUT, Dynamic, Error, Protocol, Source, raw,
    resources::ParsedCluster,
};

pub(super) fn dynamic(
    raw: raw::DynamicResources,
    clusters: &[ParsedCluster],
) -> Result<Dynamic, Error> {
    let ads = match &raw.ads_config {
        Some(a) => Some(api_source(
            a,
            "dynamic_resources.ads_config",
            true,
            clusters,
        )?),
        None => None,
    };
    let source = |raw: &Option<raw::ConfigSource>, name: &str| -> Result<Option<Source>, Error> {
        let Some(raw) = raw else { return Ok(None) };
        let path = format!("dynamic_resources.{name}");
        version(
            raw.resource_api_version.as_deref(),
            &format!("{path}.resource_api_version"),
        )?;
        let channel = match (&raw.ads, &raw.api_config_source) {
            (Some(_), Some(_)) => {
                return Err(Error::field(
                    path,
                    "set either 'ads' or 'api_config_source', not both",
                ));
            }
            (Some(_), None) => ads.clone().ok_or_else(|| {
                Error::field(
                    format!("{path}.ads"),
                    "needs dynamic_resources.ads_config (the ADS server to use)",
                )
            })?,
            (None, Some(api)) => {
                api_source(api, &format!("{path}.api_config_source"), false, clusters)?
            }
            (None, None) => {
                return Err(Error::field(
                    path,
                    "needs 'ads: {}' or 'api_config_source' (other config sources are not \
                     supported by minimal-proxy)",
                ));
            }
        };
        let initial_fetch_timeout = match raw.initial_fetch_timeout {
            None => Some(DEFAULT_INITIAL_FETCH_TIMEOUT),
            Some(d) if d.is_zero() => None,
            Some(d) => Some(d),
        };
        Ok(Some(Source {
            channel,
            initial_fetch_timeout,
        }))
    };
    Ok(Dynamic {
        cds: source(&raw.cds_config, "cds_config")?,
        lds: source(&raw.lds_config, "lds_config")?,
    })
}

fn api_source(
    raw: &raw::ApiConfigSource,
    path: &str,
    aggregated: bool,
    clusters: &[ParsedCluster],
) -> Result<Channel, Error> {
    let protocol = match raw.api_type.as_str() {
        "GRPC" => Protocol::Sotw,
        "DELTA_GRPC" => Protocol::Delta,
        other => {
            return Err(Error::field(
                format!("{path}.api_type"),
                format!("{other} is not supported by minimal-proxy: use GRPC or DELTA_GRPC"),
            ));
        }
    };
    version(
        raw.transport_api_version.as_deref(),
        &format!("{path}.transport_api_version"),
    )?;
    let [service] = raw.grpc_services.as_slice() else {
        return Err(Error::field(
            format!("{path}.grpc_services"),
            format!(
                "exactly one gRPC service is supported, got {}",
                raw.grpc_services.len()
            ),
        ));
    };
    let cluster = service.envoy_grpc.cluster_name.clone();
    let field = format!("{path}.grpc_services[0].envoy_grpc.cluster_name");
    let target = super::stats_sink::static_target(&cluster, &field, clusters)?;
    let initial_metadata = super::stats_sink::initial_metadata(
        &service.initial_metadata,
        &format!("{path}.grpc_services[0].initial_metadata"),
    )?;
    Ok(Channel {
        initial_metadata,
        aggregated,
        protocol,
        cluster,
        target,
        node_on_first_message_only: raw.set_node_on_first_message_only,
    })
}

/// Transport and resource API versions: V3 only (AUTO means V3 in Envoy today).
fn version(raw: Option<&str>, path: &str) -> Result<(), Error> {
    match raw {
        None | Some("V3") | Some("AUTO") => Ok(()),
        Some(other) => Err(Error::field(
            path,
            format!("{other} is not supported: minimal-proxy speaks the V3 xDS API only"),
        )),
    }
}
