//! Authenticated xDS: proxy tokens checked on every gRPC stream of the xDS port.
//!
//! A proxy presents `authorization: Bearer <secret>` as gRPC metadata (Envoy sends it from
//! `grpc_service.initial_metadata`). [`ProxyAuth`] keeps every token's SHA-256 in memory, so
//! a stream costs one hash and one map lookup; the stream's node (id and cluster) must be
//! the token's. The index reloads whenever the store's revision moves (a revocation bumps
//! it, and NOTIFY or polling carries that to every replica); a stream whose token vanished is
//! ended at once ([`ProxyAuth::revoked`]).
//!
//! - `secret`: minting and hashing secrets.
//! - `policy`: `--xds-auth auto|required|off`.

mod policy;
pub mod secret;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

use tokio::sync::watch;
use tonic::{Status, metadata::MetadataMap};

use crate::store::{self, ProxyToken, Store};

pub use policy::XdsAuth;

/// How often a stream presenting an unknown token may make this replica re-read the tokens
/// (a token minted on another replica just now): at most once per this long.
const MISS_RELOAD_EVERY: Duration = Duration::from_secs(1);

/// What a valid token allows: streams of this node id and node cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The token's id, for logs (never the secret).
    pub id: String,
    pub node_id: String,
    pub node_cluster: String,
}

impl From<&ProxyToken> for Grant {
    fn from(t: &ProxyToken) -> Self {
        Self {
            id: t.id.clone(),
            node_id: t.node_id.clone(),
            node_cluster: t.node_cluster.clone(),
        }
    }
}

/// The xDS port's token check; cheap to clone. [`ProxyAuth::off`] lets every stream in.
#[derive(Clone, Default)]
pub struct ProxyAuth {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    store: Arc<dyn Store>,
    /// Grants by the hex SHA-256 of their secret.
    tokens: RwLock<Arc<HashMap<String, Arc<Grant>>>>,
    /// Bumped after every reload: streams wake and check their token is still there.
    reloaded: watch::Sender<u64>,
    last_miss_reload: Mutex<Option<Instant>>,
    _task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = &self._task {
            task.abort();
        }
    }
}

impl std::fmt::Debug for ProxyAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyAuth")
            .field("required", &self.is_required())
            .finish_non_exhaustive()
    }
}

impl ProxyAuth {
    /// No token asked for (the default, and `--xds-auth off`).
    pub fn off() -> Self {
        Self::default()
    }

    /// Tokens required: loads them, then reloads whenever the store's revision moves.
    pub async fn required(store: Arc<dyn Store>) -> Result<Self, store::Error> {
        let tokens = index(&store.proxy_tokens().await?);
        let (reloaded, _) = watch::channel(0);
        let inner = Arc::new_cyclic(|weak: &std::sync::Weak<Inner>| {
            let weak = weak.clone();
            let mut revisions = store.watch();
            let task = tokio::spawn(async move {
                while revisions.changed().await.is_ok() {
                    let Some(inner) = weak.upgrade() else { return };
                    if let Err(e) = inner.reload().await {
                        tracing::warn!(error = %e, "could not reload proxy tokens; keeping the old set");
                    }
                }
            });
            Inner {
                store,
                tokens: RwLock::new(Arc::new(tokens)),
                reloaded,
                last_miss_reload: Mutex::new(None),
                _task: Some(task),
            }
        });
        Ok(Self { inner: Some(inner) })
    }

    pub fn is_required(&self) -> bool {
        self.inner.is_some()
    }

    /// Whether `grant`'s token is still known (not revoked); always with auth off.
    pub fn knows(&self, grant: &Grant) -> bool {
        self.inner
            .as_ref()
            .is_none_or(|inner| inner.knows(&grant.id))
    }

    /// The grant of the token in `metadata`; `None` when auth is off. UNAUTHENTICATED when
    /// there is no token or it is unknown (or revoked).
    pub async fn authenticate(&self, metadata: &MetadataMap) -> Result<Option<Arc<Grant>>, Status> {
        let Some(inner) = &self.inner else {
            return Ok(None);
        };
        let hash = presented_hash(metadata)?;
        if let Some(grant) = inner.find(&hash) {
            return Ok(Some(grant));
        }
        if inner.may_reload_on_miss() {
            if let Err(e) = inner.reload().await {
                tracing::warn!(error = %e, "could not reload proxy tokens");
            }
            if let Some(grant) = inner.find(&hash) {
                return Ok(Some(grant));
            }
        }
        Err(unknown())
    }

    /// [`ProxyAuth::authenticate`] from memory only (for a tonic interceptor, which cannot
    /// wait): a token minted on another replica a moment ago may be refused once.
    pub fn authenticate_now(&self, metadata: &MetadataMap) -> Result<Option<Arc<Grant>>, Status> {
        let Some(inner) = &self.inner else {
            return Ok(None);
        };
        let hash = presented_hash(metadata)?;
        inner.find(&hash).map(Some).ok_or_else(unknown)
    }

    /// A tonic interceptor for the xDS port's other services (MetricsService,
    /// AccessLogService): refuses streams without a valid token and puts the
    /// [`Authenticated`] stream in the request's extensions.
    pub fn interceptor(
        &self,
    ) -> impl FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, Status>
    + Clone
    + Send
    + Sync
    + 'static {
        let auth = self.clone();
        move |req: tonic::Request<()>| auth.admit(req)
    }

    /// What [`ProxyAuth::interceptor`] does to one request: refused without a valid token
    /// (when required), else passed on with its [`Authenticated`] stream.
    pub fn admit(&self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        if let Some(grant) = self.authenticate_now(req.metadata())? {
            let auth = self.clone();
            req.extensions_mut().insert(Authenticated { grant, auth });
        }
        Ok(req)
    }

    /// PERMISSION_DENIED unless the stream's node is the one the token was issued for.
    pub fn check_node(grant: &Grant, node_id: &str, node_cluster: &str) -> Result<(), Status> {
        if grant.node_id == node_id && grant.node_cluster == node_cluster {
            return Ok(());
        }
        tracing::warn!(
            token = %grant.id, node = %node_id, cluster = %node_cluster,
            "xDS stream refused: the proxy token belongs to another node"
        );
        Err(Status::permission_denied(format!(
            "proxy token {} is for node '{}' in cluster '{}', not node '{node_id}' in cluster '{node_cluster}'",
            grant.id, grant.node_id, grant.node_cluster
        )))
    }

    /// Resolves once `grant`'s token is no longer known (revoked here or on another replica);
    /// never when auth is off.
    pub async fn revoked(&self, grant: &Grant) {
        let Some(inner) = &self.inner else {
            return std::future::pending().await;
        };
        let mut reloaded = inner.reloaded.subscribe();
        loop {
            if !inner.knows(&grant.id) {
                return;
            }
            if reloaded.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    /// Resolves to the status that ends a stream once `grant`'s token is revoked; never when
    /// there is no grant (auth off).
    pub fn revocation(
        &self,
        grant: Option<Arc<Grant>>,
    ) -> impl std::future::Future<Output = Status> + Send + 'static {
        let auth = self.clone();
        async move {
            let Some(grant) = grant else {
                return std::future::pending().await;
            };
            auth.revoked(&grant).await;
            tracing::info!(token = %grant.id, node = %grant.node_id, "xDS stream ended: its proxy token was revoked");
            Status::unauthenticated(format!(
                "proxy token {} was revoked: issue a new one",
                grant.id
            ))
        }
    }

    /// Reads the tokens again now (after a local create or revoke: this replica need not wait
    /// for the revision watch).
    pub async fn reload(&self) -> Result<(), store::Error> {
        match &self.inner {
            Some(inner) => inner.reload().await,
            None => Ok(()),
        }
    }
}

impl Inner {
    fn find(&self, hash: &str) -> Option<Arc<Grant>> {
        self.tokens.read().ok()?.get(hash).cloned()
    }

    fn knows(&self, id: &str) -> bool {
        self.tokens
            .read()
            .map(|t| t.values().any(|g| g.id == id))
            .unwrap_or(true)
    }

    fn may_reload_on_miss(&self) -> bool {
        let Ok(mut last) = self.last_miss_reload.lock() else {
            return false;
        };
        let now = Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < MISS_RELOAD_EVERY) {
            return false;
        }
        *last = Some(now);
        true
    }

    async fn reload(&self) -> Result<(), store::Error> {
        let tokens = index(&self.store.proxy_tokens().await?);
        if let Ok(mut current) = self.tokens.write() {
            *current = Arc::new(tokens);
        }
        self.reloaded.send_modify(|n| *n += 1);
        Ok(())
    }
}

/// The hash of the bearer token in `metadata`; UNAUTHENTICATED when there is none.
fn presented_hash(metadata: &MetadataMap) -> Result<String, Status> {
    let value = metadata.get("authorization").map(|v| v.as_bytes());
    let Some(secret) = crate::api::bearer(value) else {
        tracing::info!("xDS stream refused: no proxy token");
        return Err(Status::unauthenticated(
            "this xDS server requires a proxy token: send gRPC metadata 'authorization: Bearer <token>' (grpc_service.initial_metadata; see GET /api/v1/bootstrap?token=issue)",
        ));
    };
    Ok(secret::hash(secret))
}

fn unknown() -> Status {
    tracing::info!("xDS stream refused: unknown or revoked proxy token");
    Status::unauthenticated(
        "unknown or revoked proxy token: issue a new one (POST /api/v1/proxy-tokens)",
    )
}

/// A stream on the xDS port's other services (metrics, access logs) that presented a valid
/// token: put in the request's extensions by [`ProxyAuth::interceptor`]; absent with auth off.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub grant: Arc<Grant>,
    auth: ProxyAuth,
}

impl Authenticated {
    /// The authenticated stream of `request`, if auth is on.
    pub fn of<T>(request: &tonic::Request<T>) -> Option<Authenticated> {
        request.extensions().get::<Authenticated>().cloned()
    }

    /// Resolves to the status that ends the stream once its token is revoked (here or on
    /// another replica), as discovery streams end.
    pub fn revoked(&self) -> impl std::future::Future<Output = Status> + Send + 'static {
        self.auth.revocation(Some(self.grant.clone()))
    }
}

/// The end of a stream whose token `authenticated` holds: never when auth is off.
pub async fn revocation(authenticated: Option<Authenticated>) -> Status {
    match authenticated {
        Some(a) => a.revoked().await,
        None => std::future::pending().await,
    }
}

fn index(tokens: &[ProxyToken]) -> HashMap<String, Arc<Grant>> {
    tokens
        .iter()
        .map(|t| (t.secret_sha256.clone(), Arc::new(Grant::from(t))))
        .collect()
}
