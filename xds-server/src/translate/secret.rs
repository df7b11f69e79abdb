//! SDS: a proxy's own workload certificate and the mesh trust bundle as Envoy `Secret`s (the
//! names are in `crate::ca`), and their redaction wherever resources are shown.

use std::{
    hash::{Hash, Hasher},
    sync::Arc,
};

use envoy_types::pb::envoy::{
    config::core::v3::{DataSource, data_source::Specifier},
    extensions::transport_sockets::tls::v3::{
        CertificateValidationContext, Secret, TlsCertificate, secret::Type,
    },
};
use serde_json::Value;

use super::{Origin, Resources};
use crate::{
    ca::{TRUST_BUNDLE_SECRET, WorkloadCert},
    model::Kind,
};

/// The secrets one proxy may receive. Proxies with equal ones share a group, so equality is
/// by what identifies them (the certificate's serial, the bundle's text), not by key bytes.
#[derive(Debug, Clone, Default)]
pub struct SdsSelection {
    /// The service the proxy is the sidecar of, and its current certificate.
    pub cert: Option<(String, Arc<WorkloadCert>)>,
    /// The trust bundle (PEM roots); `None` without a CA.
    pub bundle: Option<Arc<str>>,
}

impl SdsSelection {
    fn key(&self) -> (Option<(&str, &str)>, Option<&str>) {
        let cert = self
            .cert
            .as_ref()
            .map(|(s, c)| (s.as_str(), c.serial.as_str()));
        (cert, self.bundle.as_deref())
    }
}

impl PartialEq for SdsSelection {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for SdsSelection {}

impl Hash for SdsSelection {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl PartialOrd for SdsSelection {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SdsSelection {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

fn inline(text: &str) -> Option<DataSource> {
    Some(DataSource {
        specifier: Some(Specifier::InlineString(text.to_string())),
        ..Default::default()
    })
}

/// The certificate secret of a workload: named by its SPIFFE ID.
pub fn certificate_secret(cert: &WorkloadCert) -> Secret {
    Secret {
        name: cert.spiffe_id.clone(),
        r#type: Some(Type::TlsCertificate(TlsCertificate {
            certificate_chain: inline(&cert.chain_pem),
            private_key: inline(&cert.key_pem),
            ..Default::default()
        })),
    }
}

/// The trust bundle secret: every root the mesh trusts.
pub fn bundle_secret(bundle: &str) -> Secret {
    Secret {
        name: TRUST_BUNDLE_SECRET.to_string(),
        r#type: Some(Type::ValidationContext(CertificateValidationContext {
            trusted_ca: inline(bundle),
            ..Default::default()
        })),
    }
}

/// Adds the secrets of `sds` to `out`.
pub(super) fn add(out: &mut Resources, sds: &SdsSelection) {
    if let Some((service, cert)) = &sds.cert {
        out.add(
            &cert.spiffe_id,
            &certificate_secret(cert),
            Origin::whole(Kind::Service, service),
        );
    }
    if let Some(bundle) = &sds.bundle {
        let secret = bundle_secret(bundle);
        let value = prost::Message::encode_to_vec(&secret);
        let version = super::content_version(&value);
        out.insert(
            TRUST_BUNDLE_SECRET,
            <Secret as prost::Name>::type_url(),
            value,
            version,
            Arc::new([]),
        );
    }
}

/// Replaces every private key and every credential in a rendered resource (proto3 JSON)
/// with `"[redacted]"`, so what the API shows of a `Secret` never holds key material, nor an
/// access log's config its bearer (a grpc_service's `initial_metadata` `authorization`).
pub fn redact_secrets(resource: &mut Value) {
    match resource {
        Value::Object(map) => {
            let credential = map
                .get("key")
                .and_then(Value::as_str)
                .is_some_and(|k| k.eq_ignore_ascii_case("authorization"));
            for (k, v) in map.iter_mut() {
                if k == "privateKey" || k == "private_key" || (credential && k == "value") {
                    *v = Value::String("[redacted]".into());
                } else {
                    redact_secrets(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_secrets),
        _ => {}
    }
}
