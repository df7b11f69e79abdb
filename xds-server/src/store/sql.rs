//! What both SQL backends share: the `Store` implementation over a [`Backend`] that supplies
//! the dialect (one statement per method), the revision watch and its background tasks.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use tokio::sync::watch;

use super::{
    Error, Record, Snapshot, Store, StoredCa, Write, Written,
    revisions::{self, Background},
    transaction::{self, WriteTx},
};
use crate::model::Kind;

/// One SQL dialect: how to read, and how to open a write transaction.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// `"sqlite"` or `"postgres"`.
    const NAME: &'static str;
    type Tx: WriteTx;

    async fn begin(&self) -> Result<Self::Tx, Error>;
    async fn get(&self, kind: Kind, name: &str) -> Result<Option<Record>, Error>;
    /// Names after `after` (`""` for the first page), in byte order.
    async fn list(&self, kind: Kind, after: &str, limit: i64) -> Result<Vec<Record>, Error>;
    /// Every resource, read in one consistent transaction.
    async fn snapshot(&self) -> Result<Snapshot, Error>;
    async fn revision(&self) -> Result<i64, Error>;
    async fn proxy_tokens(&self) -> Result<Vec<super::ProxyToken>, Error>;
    async fn proxy_token_insert(&self, token: &super::ProxyToken) -> Result<(), Error>;
    /// Deletes the row; true when it existed.
    async fn proxy_token_delete(&self, id: &str) -> Result<bool, Error>;
    async fn ca_get(&self) -> Result<Option<StoredCa>, Error>;
    async fn ca_insert_if_absent(&self, ca: &StoredCa) -> Result<StoredCa, Error>;
}

/// A [`Store`] over one SQL backend.
pub struct SqlStore<B> {
    backend: Arc<B>,
    revision: watch::Sender<i64>,
    _tasks: Vec<Background>,
}

impl<B: Backend> SqlStore<B> {
    /// Starts the revision watch at the database's revision, polled every `poll_interval`.
    pub(super) async fn new(backend: B, poll_interval: Duration) -> Result<Self, Error> {
        let backend = Arc::new(backend);
        let (tx, _) = watch::channel(backend.revision().await?);
        let polled = backend.clone();
        let poller = revisions::spawn_poller(tx.clone(), poll_interval, move || {
            let backend = polled.clone();
            async move { backend.revision().await }
        });
        Ok(Self {
            backend,
            revision: tx,
            _tasks: vec![poller],
        })
    }

    /// Keeps `task` running for as long as the store lives.
    pub(super) fn with_task(mut self, task: Background) -> Self {
        self._tasks.push(task);
        self
    }

    /// The sender side of the revision watch, for tasks that learn of writes elsewhere.
    pub(super) fn revision_sender(&self) -> watch::Sender<i64> {
        self.revision.clone()
    }
}

#[async_trait]
impl<B: Backend> Store for SqlStore<B> {
    fn backend(&self) -> &'static str {
        B::NAME
    }

    async fn put(&self, w: Write) -> Result<Written, Error> {
        let written = transaction::put(self.backend.begin().await?, w).await?;
        revisions::publish(&self.revision, written.record.revision);
        Ok(written)
    }

    async fn get(&self, kind: Kind, name: &str) -> Result<Option<Record>, Error> {
        self.backend.get(kind, name).await
    }

    async fn list(
        &self,
        kind: Kind,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Record>, Error> {
        self.backend
            .list(kind, after.unwrap_or(""), i64::from(limit))
            .await
    }

    async fn delete(
        &self,
        kind: Kind,
        name: &str,
        expected_version: Option<i64>,
    ) -> Result<Vec<Record>, Error> {
        let tx = self.backend.begin().await?;
        let (revision, deleted) = transaction::delete(tx, kind, name, expected_version).await?;
        revisions::publish(&self.revision, revision);
        Ok(deleted)
    }

    async fn snapshot(&self) -> Result<Snapshot, Error> {
        self.backend.snapshot().await
    }

    async fn revision(&self) -> Result<i64, Error> {
        self.backend.revision().await
    }

    fn watch(&self) -> watch::Receiver<i64> {
        self.revision.subscribe()
    }

    async fn proxy_tokens(&self) -> Result<Vec<super::ProxyToken>, Error> {
        self.backend.proxy_tokens().await
    }

    async fn proxy_token_create(&self, token: &super::ProxyToken) -> Result<(), Error> {
        self.backend.proxy_token_insert(token).await
    }

    async fn proxy_token_revoke(&self, id: &str) -> Result<bool, Error> {
        if !self.backend.proxy_token_delete(id).await? {
            return Ok(false);
        }
        // An empty write: the revision moves, and its announcement (NOTIFY, or the next poll)
        // tells every replica to reload its tokens.
        let mut tx = self.backend.begin().await?;
        let revision = tx.bump_revision().await?;
        tx.commit(revision).await?;
        revisions::publish(&self.revision, revision);
        Ok(true)
    }

    async fn ca_get(&self) -> Result<Option<StoredCa>, Error> {
        self.backend.ca_get().await
    }

    async fn ca_insert_if_absent(&self, ca: &StoredCa) -> Result<StoredCa, Error> {
        self.backend.ca_insert_if_absent(ca).await
    }
}
