//! The issuer: one fresh workload certificate per service identity, published with every mesh
//! snapshot. A certificate is re-issued at half its lifetime (`renewal.rs`) and the snapshot
//! republished, so streams push the new one long before the old one expires.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::SystemTime,
};

use tokio::sync::watch;

use super::{Authority, TrustDomain, WorkloadCert, allowed_identity, renewal};
use crate::{
    translate::{NodeInfo, SdsSelection},
    watch::Published,
};

/// Requests for another service's certificate, refused (see [`audit_request`]).
static REFUSED: AtomicU64 = AtomicU64::new(0);

/// The certificates a snapshot carries: one per service, and the trust bundle.
#[derive(Debug, Default)]
pub struct Identities {
    pub trust_domain: TrustDomain,
    /// `None` without a CA: no secrets at all.
    pub bundle: Option<Arc<str>>,
    pub certs: BTreeMap<String, Arc<WorkloadCert>>,
}

/// One issue of a service's certificate, for tests and logs.
pub type Issued = Arc<WorkloadCert>;

impl Identities {
    /// What `node` may receive: its own identity's certificate (when its node cluster names
    /// a service with one) and the trust bundle.
    pub fn select(&self, node: &NodeInfo) -> SdsSelection {
        let cert = allowed_identity(node)
            .and_then(|s| self.certs.get_key_value(s))
            .map(|(s, c)| (s.clone(), c.clone()));
        SdsSelection {
            cert,
            bundle: self.bundle.clone(),
        }
    }
}

/// Logs and counts each certificate `node` asks for that is not its own identity's: it gets
/// nothing for that name (translation only ever gives a proxy its own).
pub fn audit_request<'a>(node: &NodeInfo, type_url: &str, names: impl Iterator<Item = &'a str>) {
    if type_url != xds_core::type_url::SECRET {
        return;
    }
    let own = allowed_identity(node);
    for name in names {
        let Some(service) = name
            .strip_prefix("spiffe://")
            .and_then(|rest| rest.split_once("/service/"))
            .map(|(_, s)| s)
        else {
            continue;
        };
        if Some(service) != own {
            REFUSED.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(node = %node.id, cluster = %node.cluster, requested = name,
                "a proxy asked for another service's certificate: it gets nothing for it");
        }
    }
}

/// How many certificate requests for another identity were refused since start.
pub fn refused_requests() -> u64 {
    REFUSED.load(Ordering::Relaxed)
}

/// The certificates to hold for `services` at `now`: kept while not due, issued when missing
/// or due; services gone are dropped. Returns the new set and whether anything changed.
fn refresh(
    authority: &Authority,
    current: &BTreeMap<String, Arc<WorkloadCert>>,
    services: impl IntoIterator<Item = String>,
    now: SystemTime,
) -> (BTreeMap<String, Arc<WorkloadCert>>, bool) {
    let mut next = BTreeMap::new();
    let mut changed = false;
    for service in services {
        match current.get(&service) {
            Some(c) if !renewal::due(now, renewal::renew_at(c.issued_at, c.not_after)) => {
                next.insert(service, c.clone());
            }
            _ => match authority.issue(&service, now) {
                Ok(cert) => {
                    tracing::info!(identity = %cert.spiffe_id, serial = %cert.serial,
                        "issued a workload certificate");
                    next.insert(service, Arc::new(cert));
                    changed = true;
                }
                Err(e) => tracing::error!(%service, error = %e, "could not issue a certificate"),
            },
        }
    }
    changed |= next.len() != current.len();
    (next, changed)
}

/// Forwards `mesh` with a certificate for each of its services; re-issues them as they fall
/// due and republishes. Ends when `mesh` ends.
pub fn spawn(
    authority: Arc<Authority>,
    mut mesh: watch::Receiver<Arc<Published>>,
) -> watch::Receiver<Arc<Published>> {
    let bundle: Arc<str> = authority.trust_bundle_pem().into();
    let trust_domain = authority.trust_domain().clone();
    let with = move |published: &Published, certs: &BTreeMap<String, Arc<WorkloadCert>>| {
        Arc::new(Published {
            identities: Arc::new(Identities {
                trust_domain: trust_domain.clone(),
                bundle: Some(bundle.clone()),
                certs: certs.clone(),
            }),
            ..published.clone()
        })
    };
    let first = mesh.borrow_and_update().clone();
    let services = |p: &Published| p.mesh.services.keys().cloned().collect::<Vec<_>>();
    let (mut certs, _) = refresh(
        &authority,
        &BTreeMap::new(),
        services(&first),
        SystemTime::now(),
    );
    let (tx, rx) = watch::channel(with(&first, &certs));
    tokio::spawn(async move {
        loop {
            let wake = renewal::next_wake(
                certs
                    .values()
                    .map(|c| renewal::renew_at(c.issued_at, c.not_after)),
            );
            let sleep = wake.map(|at| at.duration_since(SystemTime::now()).unwrap_or_default());
            tokio::select! {
                changed = mesh.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let next = mesh.borrow_and_update().clone();
                    (certs, _) = refresh(&authority, &certs, services(&next), SystemTime::now());
                    tx.send_replace(with(&next, &certs));
                }
                () = tokio::time::sleep(sleep.unwrap_or_default()), if sleep.is_some() => {
                    let current = tx.borrow().clone();
                    let (next, changed) = refresh(&authority, &certs, services(&current), SystemTime::now());
                    certs = next;
                    if changed {
                        let mut p = (*with(&current, &certs)).clone();
                        p.at = std::time::Instant::now();
                        tx.send_replace(Arc::new(p));
                    }
                }
                () = tx.closed() => return,
            }
        }
    });
    rx
}

#[cfg(test)]
pub(super) fn refresh_for_test(
    authority: &Authority,
    current: &BTreeMap<String, Arc<WorkloadCert>>,
    services: Vec<String>,
    now: SystemTime,
) -> (BTreeMap<String, Arc<WorkloadCert>>, bool) {
    refresh(authority, current, services, now)
}
