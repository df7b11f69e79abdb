//! `load_assignment_from_proto`: localities, weights, health, labels, and refusals.

use std::collections::BTreeMap;

use envoy_types::pb::{
    envoy::config::{
        core::v3::{
            Address, HealthStatus, Locality, Metadata, Pipe, SocketAddress, address,
            socket_address::{PortSpecifier, Protocol},
        },
        endpoint::v3::{
            ClusterLoadAssignment, Endpoint as EnvoyEndpoint, LbEndpoint, LocalityLbEndpoints,
            cluster_load_assignment::{Policy, policy::DropOverload},
            endpoint::HealthCheckConfig,
            lb_endpoint::HostIdentifier,
        },
    },
    google::protobuf::{Struct, Value, value::Kind},
};

use super::{refused, u32v};
use crate::config::{
    Endpoint, EndpointAddress, EndpointHealth, LoadAssignment, LocalityEndpoints,
    load_assignment_from_proto,
};

const CLA: &str = "cluster load assignment 'web'";

fn socket(host: &str, port: u32) -> Option<Address> {
    Some(Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            protocol: Protocol::Tcp as i32,
            address: host.into(),
            port_specifier: Some(PortSpecifier::PortValue(port)),
            ..SocketAddress::default()
        })),
    })
}

fn lb_endpoint(host: &str) -> LbEndpoint {
    LbEndpoint {
        host_identifier: Some(HostIdentifier::Endpoint(EnvoyEndpoint {
            address: socket(host, 8080),
            ..EnvoyEndpoint::default()
        })),
        ..LbEndpoint::default()
    }
}

fn lb_metadata(labels: &[(&str, &str)]) -> Metadata {
    let fields = labels
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                Value {
                    kind: Some(Kind::StringValue(v.to_string())),
                },
            )
        })
        .collect();
    Metadata {
        filter_metadata: [("envoy.lb".to_string(), Struct { fields })].into(),
        ..Metadata::default()
    }
}

fn cla(endpoints: Vec<LocalityLbEndpoints>) -> ClusterLoadAssignment {
    ClusterLoadAssignment {
        cluster_name: "web".into(),
        endpoints,
        ..ClusterLoadAssignment::default()
    }
}

fn one(e: LbEndpoint) -> ClusterLoadAssignment {
    cla(vec![LocalityLbEndpoints {
        lb_endpoints: vec![e],
        ..LocalityLbEndpoints::default()
    }])
}

#[test]
fn localities_weights_health_and_labels() {
    let assignment = cla(vec![
        LocalityLbEndpoints {
            lb_endpoints: vec![lb_endpoint("10.0.3.1")],
            ..LocalityLbEndpoints::default()
        },
        LocalityLbEndpoints {
            locality: Some(Locality {
                zone: "z1".into(),
                region: "r".into(),
                ..Locality::default()
            }),
            load_balancing_weight: u32v(3),
            lb_endpoints: vec![
                LbEndpoint {
                    load_balancing_weight: u32v(2),
                    health_status: HealthStatus::Healthy as i32,
                    metadata: Some(lb_metadata(&[("version", "v1")])),
                    ..lb_endpoint("10.0.1.1")
                },
                LbEndpoint {
                    health_status: HealthStatus::Draining as i32,
                    ..lb_endpoint("10.0.1.2")
                },
                LbEndpoint {
                    health_status: HealthStatus::Timeout as i32,
                    ..lb_endpoint("10.0.1.3")
                },
                LbEndpoint {
                    health_status: HealthStatus::Degraded as i32,
                    ..lb_endpoint("10.0.1.4")
                },
                LbEndpoint {
                    health_status: HealthStatus::Unknown as i32,
                    ..lb_endpoint("::1")
                },
            ],
            ..LocalityLbEndpoints::default()
        },
    ]);
    let ep = |addr: &str, weight, health, labels: &[(&str, &str)]| Endpoint {
        address: EndpointAddress::Socket(addr.parse().unwrap()),
        weight,
        health,
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    assert_eq!(
        load_assignment_from_proto(&assignment).unwrap(),
        LoadAssignment {
            cluster_name: "web".into(),
            localities: vec![
                LocalityEndpoints {
                    zone: String::new(),
                    weight: None,
                    endpoints: vec![ep("10.0.3.1:8080", 1, EndpointHealth::Healthy, &[])],
                },
                LocalityEndpoints {
                    zone: "z1".into(),
                    weight: Some(3),
                    endpoints: vec![
                        ep(
                            "10.0.1.1:8080",
                            2,
                            EndpointHealth::Healthy,
                            &[("version", "v1")]
                        ),
                        ep("10.0.1.2:8080", 1, EndpointHealth::Draining, &[]),
                        ep("10.0.1.3:8080", 1, EndpointHealth::Unhealthy, &[]),
                        ep("10.0.1.4:8080", 1, EndpointHealth::Degraded, &[]),
                        ep("[::1]:8080", 1, EndpointHealth::Healthy, &[]),
                    ],
                },
            ],
        }
    );
}

#[test]
fn other_metadata_namespaces_are_inert_and_non_string_labels_refused() {
    let mut m = lb_metadata(&[("version", "v1")]);
    m.filter_metadata.insert("istio".into(), Struct::default());
    let a = load_assignment_from_proto(&one(LbEndpoint {
        metadata: Some(m),
        ..lb_endpoint("10.0.0.1")
    }))
    .unwrap();
    assert_eq!(
        a.localities[0].endpoints[0].labels,
        BTreeMap::from([("version".to_string(), "v1".to_string())])
    );

    let mut m = lb_metadata(&[]);
    m.filter_metadata
        .get_mut("envoy.lb")
        .unwrap()
        .fields
        .insert(
            "canary".into(),
            Value {
                kind: Some(Kind::BoolValue(true)),
            },
        );
    refused(
        load_assignment_from_proto(&one(LbEndpoint {
            metadata: Some(m),
            ..lb_endpoint("10.0.0.1")
        })),
        CLA,
        "endpoints[0].lb_endpoints[0].metadata.filter_metadata[\"envoy.lb\"].canary",
        "only string values",
    );
}

#[test]
fn assignment_refusals_name_the_field() {
    let at = "endpoints[0].lb_endpoints[0]";
    let cases: Vec<(ClusterLoadAssignment, String, &str)> = vec![
        (
            cla(vec![LocalityLbEndpoints {
                priority: 1,
                lb_endpoints: vec![lb_endpoint("10.0.0.1")],
                ..Default::default()
            }]),
            "endpoints[0].priority".into(),
            "'1' is not supported by minimal-proxy; supported: 0",
        ),
        (
            one(lb_endpoint("web.internal")),
            format!("{at}.endpoint.address.socket_address.address"),
            "not an IP address",
        ),
        (
            one(LbEndpoint {
                load_balancing_weight: u32v(0),
                ..lb_endpoint("10.0.0.1")
            }),
            format!("{at}.load_balancing_weight"),
            "at least 1",
        ),
        (
            one(LbEndpoint {
                host_identifier: Some(HostIdentifier::Endpoint(EnvoyEndpoint {
                    address: socket("10.0.0.1", 8080),
                    hostname: "a.example".into(),
                    ..Default::default()
                })),
                ..Default::default()
            }),
            format!("{at}.endpoint.hostname"),
            "not supported",
        ),
        (
            one(LbEndpoint {
                host_identifier: Some(HostIdentifier::Endpoint(EnvoyEndpoint {
                    address: socket("10.0.0.1", 8080),
                    health_check_config: Some(HealthCheckConfig {
                        port_value: 9000,
                        ..Default::default()
                    }),
                    ..Default::default()
                })),
                ..Default::default()
            }),
            format!("{at}.endpoint.health_check_config.port_value"),
            "not supported",
        ),
        (
            one(LbEndpoint {
                host_identifier: Some(HostIdentifier::Endpoint(EnvoyEndpoint {
                    address: Some(Address {
                        address: Some(address::Address::Pipe(Pipe::default())),
                    }),
                    ..Default::default()
                })),
                ..Default::default()
            }),
            format!("{at}.endpoint.address.pipe"),
            "not supported",
        ),
        (
            one(LbEndpoint {
                host_identifier: Some(HostIdentifier::Endpoint(EnvoyEndpoint {
                    address: socket("10.0.0.1", 70000),
                    ..Default::default()
                })),
                ..Default::default()
            }),
            format!("{at}.endpoint.address.socket_address.port_value"),
            "at most 65535",
        ),
        (
            ClusterLoadAssignment {
                policy: Some(Policy {
                    drop_overloads: vec![DropOverload::default()],
                    ..Default::default()
                }),
                ..cla(vec![])
            },
            "policy.drop_overloads".into(),
            "not supported",
        ),
        (
            ClusterLoadAssignment {
                policy: Some(Policy {
                    overprovisioning_factor: u32v(100),
                    ..Default::default()
                }),
                ..cla(vec![])
            },
            "policy.overprovisioning_factor".into(),
            "'100'",
        ),
    ];
    for (assignment, field, reason) in cases {
        refused(load_assignment_from_proto(&assignment), CLA, &field, reason);
    }
    // Envoy's default overprovisioning factor, given explicitly, is fine.
    let explicit = ClusterLoadAssignment {
        policy: Some(Policy {
            overprovisioning_factor: u32v(140),
            ..Default::default()
        }),
        ..cla(vec![])
    };
    assert!(
        load_assignment_from_proto(&explicit)
            .unwrap()
            .localities
            .is_empty()
    );
}
