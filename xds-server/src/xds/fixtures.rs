//! Test fixtures shared by the state machine tests: resources built from short specs.

use std::sync::Arc;

use envoy_types::pb::google::protobuf::Any;

use xds_core::type_url;

use crate::translate::{Encoded, Resources, TypeResources, content_version};

pub const CDS: &str = type_url::CLUSTER;
pub const EDS: &str = type_url::ENDPOINT;
pub const LDS: &str = type_url::LISTENER;
pub const RDS: &str = type_url::ROUTE;

/// The bytes of a test resource, `name#tag`: equal tags mean equal content and versions.
pub fn payload(name: &str, tag: &str) -> Vec<u8> {
    format!("{name}#{tag}").into_bytes()
}

/// One type's resources from `"a:1 b:2"` (name:content tag).
pub fn typed(type_url: &str, spec: &str) -> TypeResources {
    spec.split_whitespace()
        .map(|item| {
            let (name, tag) = item.split_once(':').expect("name:tag");
            let value = payload(name, tag);
            let encoded = Encoded {
                name: name.to_string(),
                version: content_version(&value),
                resource: Any {
                    type_url: type_url.to_string(),
                    value,
                },
                origins: Default::default(),
            };
            (name.to_string(), Arc::new(encoded))
        })
        .collect()
}

/// Resources of the given types, each as `"name:tag ..."`.
pub fn with_types(types: &[(&str, &str)]) -> Arc<Resources> {
    let by_type: std::collections::BTreeMap<String, TypeResources> = types
        .iter()
        .map(|(t, spec)| (t.to_string(), typed(t, spec)))
        .collect();
    // Every test cluster is a generated EDS cluster, as the translator's are.
    let eds_clusters = by_type
        .get(CDS)
        .map(|c| c.keys().cloned().collect())
        .unwrap_or_default();
    Arc::new(Resources {
        by_type,
        eds_clusters,
        ..Resources::default()
    })
}

/// Clusters, endpoints, listeners and routes, each as `"name:tag ..."`.
pub fn resources(cds: &str, eds: &str, lds: &str, rds: &str) -> Arc<Resources> {
    with_types(&[(CDS, cds), (EDS, eds), (LDS, lds), (RDS, rds)])
}

/// A short name for a type URL in assertions.
pub fn short(type_url: &str) -> &str {
    let all = [(CDS, "CDS"), (EDS, "EDS"), (LDS, "LDS"), (RDS, "RDS")];
    let known = all.iter().find(|(t, _)| *t == type_url);
    known.map_or_else(|| type_url.rsplit('.').next().unwrap(), |(_, s)| *s)
}
