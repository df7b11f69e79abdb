//! What the state-machine targets are made of: fuzzer-chosen type URLs, resource names, nonces
//! and versions (mostly from small sets, so requests hit real subscriptions, ACKs and NACKs),
//! resource sets (the fixed meshes or synthetic ones), and checks shared by SotW and delta.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Arc,
};

use arbitrary::Arbitrary;
use envoy_types::pb::google::protobuf::Any;
use prost::Message;
use xds_core::{TypeUrl, type_url};
use xds_server::{
    translate::{Encoded, Resources, TypeResources, content_version},
    xds::{Feedback, Step},
};

use crate::meshes::TRANSLATED;

/// Most operations one input runs: long enough for warming, NACK and removal sequences.
pub const MAX_OPS: usize = 48;

/// The ADS types in push order, then two others a proxy may ask for.
pub const TYPES: [&str; 6] = [
    type_url::CLUSTER,
    type_url::ENDPOINT,
    type_url::LISTENER,
    type_url::ROUTE,
    type_url::SECRET,
    "type.googleapis.com/aaa.Extra",
];

/// Names in the fixed meshes and the synthetic sets.
pub const NAMES: [&str; 12] = [
    "a",
    "b",
    "c",
    "d",
    "web",
    "api",
    "db",
    "lonely",
    "extra-cluster",
    "ingress",
    "db-in",
    "*",
];

#[derive(Arbitrary, Debug, Clone)]
pub enum TypeSel {
    Known(u8),
    /// The empty type URL (a per-type service's own type) or a malformed one.
    Raw(String),
}

impl TypeSel {
    pub fn url(&self) -> String {
        match self {
            TypeSel::Known(i) => TYPES[*i as usize % TYPES.len()].to_string(),
            TypeSel::Raw(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
pub enum NameSel {
    Known(u8),
    Raw(String),
}

impl NameSel {
    pub fn name(&self) -> String {
        match self {
            NameSel::Known(i) => NAMES[*i as usize % NAMES.len()].to_string(),
            NameSel::Raw(s) => s.clone(),
        }
    }
}

pub fn names(sel: &[NameSel]) -> Vec<String> {
    sel.iter().map(NameSel::name).collect()
}

/// Which nonce a request echoes.
#[derive(Arbitrary, Debug, Clone)]
pub enum NonceSel {
    Empty,
    /// The latest response of the request's type.
    Latest,
    /// The n-th latest response of the stream, of any type.
    Older(u8),
    Raw(String),
}

/// Which version a SotW request carries.
#[derive(Arbitrary, Debug, Clone)]
pub enum VersionSel {
    Empty,
    /// The version of the latest response of the request's type.
    Latest,
    Raw(String),
}

/// The `which`-th per-type service's type (CDS, EDS, LDS or RDS), or ADS.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Service {
    Ads,
    PerType(u8),
}

impl Service {
    pub fn only(self) -> Option<TypeUrl> {
        match self {
            Service::Ads => None,
            Service::PerType(i) => Some(TypeUrl::from(TYPES[i as usize % 4])),
        }
    }
}

/// A resource set: a fixed mesh or a synthetic one.
#[derive(Arbitrary, Debug, Clone)]
pub enum ResSel {
    Mesh(u8),
    /// Per type (CDS, EDS, LDS, RDS, SDS), which of "a".."d" exist and their content tags
    /// (two bits each); `warm` picks which clusters are generated EDS clusters.
    Synthetic {
        present: [u8; 5],
        tags: [u8; 5],
        warm: u8,
    },
}

impl ResSel {
    pub fn resources(&self, aggregated: bool) -> Arc<Resources> {
        match self {
            ResSel::Mesh(i) => {
                let t = &*TRANSLATED;
                let all = if aggregated { &t.ads } else { &t.separate };
                all[*i as usize % all.len()].clone()
            }
            ResSel::Synthetic {
                present,
                tags,
                warm,
            } => synthetic(present, tags, *warm),
        }
    }
}

fn synthetic(present: &[u8; 5], tags: &[u8; 5], warm: u8) -> Arc<Resources> {
    let mut by_type = BTreeMap::new();
    for (t, type_url) in TYPES[..5].iter().enumerate() {
        let mut typed = TypeResources::new();
        for (i, name) in NAMES[..4].iter().enumerate() {
            if present[t] & (1 << i) == 0 {
                continue;
            }
            let tag = (tags[t] >> (2 * i)) & 3;
            let value = format!("{name}#{tag}").into_bytes();
            let encoded = Encoded {
                name: name.to_string(),
                version: content_version(&value),
                resource: Any {
                    type_url: type_url.to_string(),
                    value,
                },
                origins: Default::default(),
            };
            typed.insert(name.to_string(), Arc::new(encoded));
        }
        if !typed.is_empty() {
            by_type.insert(type_url.to_string(), typed);
        }
    }
    let eds_clusters = NAMES[..4]
        .iter()
        .enumerate()
        .filter(|(i, _)| warm & (1 << i) != 0)
        .map(|(_, n)| n.to_string())
        .collect();
    let mut resources = Resources::default();
    resources.by_type = by_type;
    resources.eds_clusters = eds_clusters;
    Arc::new(resources)
}

/// Every resource a stream was given, by type and bytes: how a SotW response's resources are
/// named again, and proof that a response only holds what the server had.
#[derive(Default)]
pub struct Index(HashMap<(String, Vec<u8>), String>);

impl Index {
    pub fn add(&mut self, resources: &Resources) {
        for (t, typed) in &resources.by_type {
            for (name, e) in typed {
                assert_eq!(&e.name, name, "resource filed under another name");
                assert_eq!(&e.resource.type_url, t, "resource filed under another type");
                self.0
                    .insert((t.clone(), e.resource.value.clone()), name.clone());
            }
        }
    }

    /// The name of a resource the stream was given; panics for one it never was.
    pub fn name(&self, any: &Any) -> &str {
        self.0
            .get(&(any.type_url.clone(), any.value.clone()))
            .unwrap_or_else(|| panic!("a response holds a {} the server never had", any.type_url))
    }
}

/// Nonces a stream has sent: each must be new.
#[derive(Default)]
pub struct Nonces {
    all: Vec<String>,
    seen: BTreeSet<String>,
    /// The latest nonce per type.
    pub latest: BTreeMap<String, String>,
}

impl Nonces {
    pub fn record(&mut self, type_url: &str, nonce: &str) {
        assert!(!nonce.is_empty(), "a response without a nonce");
        assert!(
            self.seen.insert(nonce.to_string()),
            "nonce {nonce} was used before on this stream"
        );
        self.all.push(nonce.to_string());
        self.latest.insert(type_url.to_string(), nonce.to_string());
    }

    pub fn pick(&self, sel: &NonceSel, type_url: &str) -> String {
        match sel {
            NonceSel::Empty => String::new(),
            NonceSel::Latest => self.latest.get(type_url).cloned().unwrap_or_default(),
            NonceSel::Older(n) => {
                let n = *n as usize;
                if self.all.is_empty() {
                    String::new()
                } else {
                    self.all[self.all.len() - 1 - n % self.all.len()].clone()
                }
            }
            NonceSel::Raw(s) => s.clone(),
        }
    }
}

/// A step with its responses put on the wire and read back as Envoy's messages: what the proxy
/// receives is what is checked, and the encoding must agree with its own length.
pub fn decoded<R: Message, D: Message + Default>(step: Step<R>) -> Step<D> {
    let responses = step
        .responses
        .iter()
        .map(|r| {
            let bytes = r.encode_to_vec();
            assert_eq!(
                bytes.len(),
                r.encoded_len(),
                "encoded_len disagrees with the encoding"
            );
            D::decode(bytes.as_slice()).expect("a response decodes as Envoy's message")
        })
        .collect();
    Step {
        responses,
        feedback: step.feedback,
    }
}

/// The ACKs and NACKs among the feedback, in order.
pub fn acks_and_nacks(feedback: &[Feedback]) -> Vec<&Feedback> {
    feedback
        .iter()
        .filter(|f| matches!(f, Feedback::Ack { .. } | Feedback::Nack { .. }))
        .collect()
}

/// Checks the `Sent` feedback lists the responses one for one: type, version, count.
pub fn check_sent(feedback: &[Feedback], responses: &[(String, String, usize)]) {
    let sent: Vec<(String, String, usize)> = feedback
        .iter()
        .filter_map(|f| match f {
            Feedback::Sent {
                type_url,
                version,
                count,
            } => Some((type_url.clone(), version.clone(), *count)),
            _ => None,
        })
        .collect();
    assert_eq!(sent, responses, "Sent feedback must match the responses");
}

/// On ADS, pushes go out make-before-break: types in push order (CDS, EDS, LDS, RDS), then
/// the removals in reverse order. `ranks` are the responses' ADS ranks in sending order;
/// `removal_from` is where the removal phase starts.
pub fn check_push_order<K: Ord + std::fmt::Debug>(ranks: &[K], removal_from: usize) {
    let (adds, removals) = ranks.split_at(removal_from);
    assert!(
        adds.windows(2).all(|w| w[0] < w[1]),
        "updates out of ADS order (CDS, EDS, LDS, RDS): ranks {ranks:?}"
    );
    assert!(
        removals.windows(2).all(|w| w[0] > w[1]),
        "removals not in reverse ADS order: ranks {ranks:?}"
    );
}

/// Whether a proxy may wildcard-subscribe to this type by naming nothing.
pub fn wildcard_capable(type_url: &str) -> bool {
    TypeUrl::from(type_url).wildcard_capable()
}
