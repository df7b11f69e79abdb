//! Store latency: [`Measured`] wraps the store the server runs on and times every call, so
//! both backends are measured in one place (see `crate::metrics::StoreMetrics`).

use std::{future::Future, sync::Arc, time::Instant};

use async_trait::async_trait;
use tokio::sync::watch;

use super::{Error, Record, Snapshot, Store, Write, Written};
use crate::{metrics::StoreMetrics, model::Kind};

/// The operations, as their `operation` label values.
pub const OPERATIONS: [&str; 6] = ["get", "list", "put", "delete", "snapshot", "revision"];

/// A [`Store`] that records how long each call of the store it wraps took.
pub struct Measured {
    inner: Arc<dyn Store>,
    metrics: StoreMetrics,
}

impl Measured {
    /// Wraps `inner`; its series start at zero.
    pub fn new(inner: Arc<dyn Store>, metrics: StoreMetrics) -> Self {
        metrics.start(inner.backend(), &OPERATIONS);
        Self { inner, metrics }
    }

    async fn timed<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let started = Instant::now();
        let result = call.await;
        let failed = result.as_ref().is_err_and(database_failure);
        let seconds = started.elapsed().as_secs_f64();
        self.metrics
            .observe(operation, self.inner.backend(), seconds, failed);
        result
    }
}

/// Whether the database failed the call, as opposed to refusing the request (a version
/// conflict, a missing reference), which is the caller's business and not the store's health.
fn database_failure(e: &Error) -> bool {
    match e {
        Error::NotFound { .. }
        | Error::Conflict { .. }
        | Error::DanglingReference { .. }
        | Error::Referenced { .. } => false,
        Error::Database(_) | Error::Migrate(_) | Error::Corrupt(_) => true,
    }
}

#[async_trait]
impl Store for Measured {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    async fn put(&self, write: Write) -> Result<Written, Error> {
        self.timed("put", self.inner.put(write)).await
    }

    async fn get(&self, kind: Kind, name: &str) -> Result<Option<Record>, Error> {
        self.timed("get", self.inner.get(kind, name)).await
    }

    async fn list(
        &self,
        kind: Kind,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Record>, Error> {
        self.timed("list", self.inner.list(kind, after, limit))
            .await
    }

    async fn delete(
        &self,
        kind: Kind,
        name: &str,
        expected_version: Option<i64>,
    ) -> Result<Vec<Record>, Error> {
        let call = self.inner.delete(kind, name, expected_version);
        self.timed("delete", call).await
    }

    async fn snapshot(&self) -> Result<Snapshot, Error> {
        self.timed("snapshot", self.inner.snapshot()).await
    }

    async fn revision(&self) -> Result<i64, Error> {
        self.timed("revision", self.inner.revision()).await
    }

    fn watch(&self) -> watch::Receiver<i64> {
        self.inner.watch()
    }

    // Proxy tokens are read on startup and after revocations: not worth latency series.
    async fn proxy_tokens(&self) -> Result<Vec<super::ProxyToken>, Error> {
        self.inner.proxy_tokens().await
    }

    async fn proxy_token_create(&self, token: &super::ProxyToken) -> Result<(), Error> {
        self.inner.proxy_token_create(token).await
    }

    async fn proxy_token_revoke(&self, id: &str) -> Result<bool, Error> {
        self.inner.proxy_token_revoke(id).await
    }

    // The CA row is read once at startup: not worth a latency series.
    async fn ca_get(&self) -> Result<Option<super::StoredCa>, Error> {
        self.inner.ca_get().await
    }

    async fn ca_insert_if_absent(&self, ca: &super::StoredCa) -> Result<super::StoredCa, Error> {
        self.inner.ca_insert_if_absent(ca).await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::{metrics::Metrics, status::Registry, store::SqliteStore};

    fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line starting {prefix} in:\n{text}"))
    }

    #[test]
    fn refusals_are_not_database_failures() {
        assert!(database_failure(&Error::Database(
            sqlx::Error::PoolTimedOut
        )));
        assert!(database_failure(&Error::Corrupt("x".into())));
        let missing = Error::NotFound {
            kind: Kind::Route,
            name: "r".into(),
        };
        assert!(!database_failure(&missing));
    }

    #[tokio::test]
    async fn every_operation_is_timed_and_only_database_failures_count_as_errors() {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = SqliteStore::open(&dir.path().join("mesh.db"), Duration::from_secs(60))
            .await
            .unwrap();
        let metrics = Metrics::new();
        let store = Measured::new(Arc::new(sqlite), metrics.store());
        let before = metrics.render(&Registry::default(), 0);
        for op in OPERATIONS {
            let series = format!(
                "xds_store_operation_duration_seconds_count{{operation=\"{op}\",backend=\"sqlite\"}} 0"
            );
            assert!(before.contains(&series), "{before}");
        }

        let write = |expected_version| Write {
            kind: Kind::Service,
            name: "web".into(),
            spec: json!({ "protocol": "http" }),
            references: vec![],
            expected_version,
        };
        store.put(write(Some(0))).await.unwrap();
        // A version conflict is the caller's mistake, not the database's.
        assert!(matches!(
            store.put(write(Some(0))).await,
            Err(Error::Conflict { .. })
        ));
        store.get(Kind::Service, "web").await.unwrap();
        store.snapshot().await.unwrap();

        let text = metrics.render(&Registry::default(), 0);
        let count = |op: &str| {
            line(
                &text,
                &format!(
                    "xds_store_operation_duration_seconds_count{{operation=\"{op}\",backend=\"sqlite\"}}"
                ),
            )
            .rsplit(' ')
            .next()
            .unwrap()
            .to_string()
        };
        assert_eq!(count("put"), "2");
        assert_eq!(count("get"), "1");
        assert_eq!(count("snapshot"), "1");
        assert_eq!(count("delete"), "0");
        assert_eq!(
            line(
                &text,
                "xds_store_errors_total{operation=\"put\",backend=\"sqlite\"}"
            ),
            "xds_store_errors_total{operation=\"put\",backend=\"sqlite\"} 0"
        );
    }
}
