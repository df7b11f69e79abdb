//! Mesh security settings: a service's mTLS mode, and the mesh-wide defaults (from the
//! server's flags) that apply where the operator set nothing.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How a service's sidecars accept inbound connections, and how other proxies call it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum MtlsMode {
    /// Only mTLS with a certificate from the mesh CA; plaintext callers are refused.
    Strict,
    /// mTLS and plaintext both accepted (for migrating a service); callers use mTLS.
    Permissive,
    /// Plaintext only, as before security existed.
    Off,
}

impl MtlsMode {
    /// Whether callers use TLS (strict and permissive services).
    pub fn callers_use_tls(self) -> bool {
        self != MtlsMode::Off
    }
}

/// What happens to a call no traffic permission allows or denies.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Default,
    Serialize,
    Deserialize,
    ToSchema,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum PermissionsDefault {
    /// Everything not denied is allowed (today's behaviour).
    #[default]
    Allow,
    /// Only what an allow permission names is allowed.
    Deny,
}

/// The mesh-wide security settings translation reads. Not stored: the server's flags fill it
/// (the same on every replica when they are started alike).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshSecurity {
    /// The SPIFFE trust domain: identities are `spiffe://<trust_domain>/service/<name>`.
    pub trust_domain: String,
    /// The mTLS mode of a service with sidecars that sets none.
    pub mtls_default: MtlsMode,
    pub permissions_default: PermissionsDefault,
    /// Whether a mesh CA issues workload certificates (`--ca`). Without one a service's
    /// `mtls` cannot work: its sidecars would wait for certificates that never come, and
    /// translation says so on every proxy it concerns.
    pub ca: bool,
}

/// The trust domain unless the operator names one.
pub const DEFAULT_TRUST_DOMAIN: &str = "mesh.local";

/// The SDS secret holding the mesh CA's roots, which every proxy validates peers against.
pub const TRUST_BUNDLE_SECRET: &str = "mesh-trust-bundle";

impl Default for MeshSecurity {
    /// Security off: no mTLS, everything allowed.
    fn default() -> Self {
        Self {
            trust_domain: DEFAULT_TRUST_DOMAIN.to_string(),
            mtls_default: MtlsMode::Off,
            permissions_default: PermissionsDefault::Allow,
            ca: false,
        }
    }
}

impl MeshSecurity {
    /// The SPIFFE ID of `service`, which is also the name of its certificate's SDS secret.
    pub fn spiffe_id(&self, service: &str) -> String {
        format!("spiffe://{}/service/{service}", self.trust_domain)
    }
}
