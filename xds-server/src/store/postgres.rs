//! The production backend: PostgreSQL. Commits send `NOTIFY mesh_revision` so every replica
//! learns of every write at once. A dropped LISTEN connection is re-established with backoff
//! and followed by one revision read (the notifications missed meanwhile are gone); polling
//! is the slower fallback.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::{
    Postgres, Row, Transaction,
    postgres::{PgListener, PgPool, PgPoolOptions, PgRow},
};
use tokio::sync::watch;

use super::{
    Error, Record, Snapshot, parse_kind,
    revisions::{self, Background},
    sql::{Backend, SqlStore},
    transaction::WriteTx,
};
use crate::model::{Kind, Reference};

/// The channel every commit notifies, with the new revision as payload.
const CHANNEL: &str = "mesh_revision";

/// How long a request waits for a pooled connection (and so for a new one while the database
/// is down) before it fails with a 503: short enough that clients learn of an outage at once,
/// long enough to ride out a fast restart.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// The LISTEN connection's reconnect backoff: first retry, then doubled up to the cap.
const RECONNECT_FIRST: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_secs(1);

/// A store in PostgreSQL, shared by any number of replicas.
pub type PostgresStore = SqlStore<PostgresBackend>;

/// The PostgreSQL dialect.
pub struct PostgresBackend {
    pool: PgPool,
}

impl SqlStore<PostgresBackend> {
    /// Connects to `url`, migrates the schema and starts listening for other replicas' writes.
    pub async fn connect(url: &str, poll_interval: Duration) -> Result<Self, Error> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // The default: a pooled connection is pinged before use, so the connections a
            // database restart broke are replaced instead of failing the next request.
            .test_before_acquire(true)
            .connect(url)
            .await?;
        sqlx::migrate!("../migrations/postgres").run(&pool).await?;
        let listener = subscribe(&pool).await?;
        let store = SqlStore::new(PostgresBackend { pool: pool.clone() }, poll_interval).await?;
        let task = Background(tokio::spawn(listen(
            pool,
            listener,
            store.revision_sender(),
        )));
        Ok(store.with_task(task))
    }
}

/// A connection that LISTENs on [`CHANNEL`]. It reports a lost connection (`try_recv` gives
/// `None`) instead of reconnecting by itself, so [`listen`] knows when notifications may have
/// been missed.
async fn subscribe(pool: &PgPool) -> Result<PgListener, Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.eager_reconnect(false);
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Publishes each notified revision. When the connection drops (a database restart, a
/// failover, a network cut), it LISTENs again with backoff and then reads the revision once:
/// notifications sent while it was away are gone, and that read is what brings this replica
/// up to date (the mesh watcher then reloads the whole snapshot). Polling, when frequent,
/// covers the same gap.
async fn listen(pool: PgPool, mut listener: PgListener, tx: watch::Sender<i64>) {
    loop {
        let lost = loop {
            match listener.try_recv().await {
                Ok(Some(n)) => match n.payload().parse() {
                    Ok(rev) => revisions::publish(&tx, rev),
                    Err(_) => tracing::warn!(
                        payload = n.payload(),
                        "ignoring malformed revision notification"
                    ),
                },
                Ok(None) => break "connection closed".to_string(),
                Err(e) => break e.to_string(),
            }
        };
        tracing::warn!(
            error = %lost,
            "LISTEN connection to Postgres lost; reconnecting (writes from other replicas are \
             seen again once it is back)"
        );
        drop(listener);
        listener = resubscribe(&pool).await;
        let revision = catch_up(&pool).await;
        tracing::info!(revision, "LISTEN re-established; caught up with the store");
        revisions::publish(&tx, revision);
    }
}

/// Reads the revision, retrying with backoff: after a re-established LISTEN this read is the
/// only news of the writes missed meanwhile. (Notifications arriving during the retries wait
/// on the connection.)
async fn catch_up(pool: &PgPool) -> i64 {
    let mut wait = RECONNECT_FIRST;
    loop {
        match read_revision(pool).await {
            Ok(revision) => return revision,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?wait, "LISTEN is back but reading the revision failed");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(RECONNECT_MAX);
            }
        }
    }
}

/// Retries [`subscribe`] with exponential backoff until it succeeds.
async fn resubscribe(pool: &PgPool) -> PgListener {
    let mut wait = RECONNECT_FIRST;
    let mut attempts = 0u32;
    loop {
        match subscribe(pool).await {
            Ok(listener) => return listener,
            Err(e) => {
                attempts += 1;
                // Every attempt while it is short, then one line in ten: an outage of minutes
                // should not flood the log.
                if attempts <= 3 || attempts.is_multiple_of(10) {
                    tracing::warn!(error = %e, attempts, retry_in = ?wait, "LISTEN: Postgres not reachable yet");
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(RECONNECT_MAX);
            }
        }
    }
}

async fn read_revision<'e>(
    conn: impl sqlx::Executor<'e, Database = Postgres>,
) -> Result<i64, Error> {
    Ok(
        sqlx::query_scalar("SELECT revision FROM mesh_revision WHERE id = 1")
            .fetch_one(conn)
            .await?,
    )
}

const COLUMNS: &str = "kind, name, version, revision, spec, created_at, updated_at";

fn record(row: &PgRow) -> Result<Record, Error> {
    Ok(Record {
        kind: parse_kind(row.try_get("kind")?)?,
        name: row.try_get("name")?,
        version: row.try_get("version")?,
        revision: row.try_get("revision")?,
        spec: row.try_get("spec")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

async fn fetch<'e>(
    conn: impl sqlx::Executor<'e, Database = Postgres>,
    kind: Kind,
    name: &str,
) -> Result<Option<Record>, Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM resources WHERE kind = $1 AND name = $2"
    ))
    .bind(kind.collection())
    .bind(name)
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(record)
    .transpose()
}

pub struct PostgresTx(Transaction<'static, Postgres>);

#[async_trait]
impl WriteTx for PostgresTx {
    /// Locks the revision row until commit: concurrent writers wait here, in order.
    async fn bump_revision(&mut self) -> Result<i64, Error> {
        Ok(sqlx::query_scalar(
            "UPDATE mesh_revision SET revision = revision + 1 WHERE id = 1 RETURNING revision",
        )
        .fetch_one(&mut *self.0)
        .await?)
    }

    async fn fetch(&mut self, kind: Kind, name: &str) -> Result<Option<Record>, Error> {
        fetch(&mut *self.0, kind, name).await
    }

    async fn upsert(&mut self, r: &Record) -> Result<(), Error> {
        sqlx::query(&format!(
            "INSERT INTO resources ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (kind, name) DO UPDATE SET version = excluded.version,
               revision = excluded.revision, spec = excluded.spec, updated_at = excluded.updated_at"
        ))
        .bind(r.kind.collection())
        .bind(&r.name)
        .bind(r.version)
        .bind(r.revision)
        .bind(&r.spec)
        .bind(r.created_at)
        .bind(r.updated_at)
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }

    async fn set_references(
        &mut self,
        kind: Kind,
        name: &str,
        targets: &[Reference],
    ) -> Result<(), Error> {
        sqlx::query("DELETE FROM resource_refs WHERE from_kind = $1 AND from_name = $2")
            .bind(kind.collection())
            .bind(name)
            .execute(&mut *self.0)
            .await?;
        for t in targets {
            sqlx::query(
                "INSERT INTO resource_refs (from_kind, from_name, to_kind, to_name, owned)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(kind.collection())
            .bind(name)
            .bind(t.kind.collection())
            .bind(&t.name)
            .bind(t.owned)
            .execute(&mut *self.0)
            .await?;
        }
        Ok(())
    }

    async fn referrers(
        &mut self,
        kind: Kind,
        name: &str,
        owned: bool,
    ) -> Result<Vec<(Kind, String)>, Error> {
        let rows = sqlx::query(
            "SELECT from_kind, from_name FROM resource_refs
             WHERE to_kind = $1 AND to_name = $2 AND owned = $3 ORDER BY from_kind, from_name",
        )
        .bind(kind.collection())
        .bind(name)
        .bind(owned)
        .fetch_all(&mut *self.0)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    parse_kind(r.try_get("from_kind")?)?,
                    r.try_get("from_name")?,
                ))
            })
            .collect()
    }

    async fn delete_row(&mut self, kind: Kind, name: &str) -> Result<(), Error> {
        sqlx::query("DELETE FROM resources WHERE kind = $1 AND name = $2")
            .bind(kind.collection())
            .bind(name)
            .execute(&mut *self.0)
            .await?;
        Ok(())
    }

    /// The notification is queued in the transaction and delivered only if it commits.
    async fn commit(mut self, revision: i64) -> Result<(), Error> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(revision.to_string())
            .execute(&mut *self.0)
            .await?;
        Ok(self.0.commit().await?)
    }
}

#[async_trait]
impl Backend for PostgresBackend {
    const NAME: &'static str = "postgres";
    type Tx = PostgresTx;

    async fn begin(&self) -> Result<PostgresTx, Error> {
        Ok(PostgresTx(self.pool.begin().await?))
    }

    async fn get(&self, kind: Kind, name: &str) -> Result<Option<Record>, Error> {
        fetch(&self.pool, kind, name).await
    }

    async fn list(&self, kind: Kind, after: &str, limit: i64) -> Result<Vec<Record>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM resources WHERE kind = $1 AND name > $2 ORDER BY name LIMIT $3"
        ))
        .bind(kind.collection())
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record).collect()
    }

    async fn snapshot(&self) -> Result<Snapshot, Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let revision = read_revision(&mut *tx).await?;
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM resources"))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let records = rows.iter().map(record).collect::<Result<Vec<_>, _>>()?;
        Ok(Snapshot::new(revision, records))
    }

    async fn revision(&self) -> Result<i64, Error> {
        read_revision(&self.pool).await
    }

    async fn proxy_tokens(&self) -> Result<Vec<super::ProxyToken>, Error> {
        super::proxy_tokens::postgres_list(&self.pool).await
    }

    async fn proxy_token_insert(&self, token: &super::ProxyToken) -> Result<(), Error> {
        super::proxy_tokens::postgres_insert(&self.pool, token).await
    }

    async fn proxy_token_delete(&self, id: &str) -> Result<bool, Error> {
        super::proxy_tokens::postgres_delete(&self.pool, id).await
    }

    async fn ca_get(&self) -> Result<Option<super::StoredCa>, Error> {
        super::authority::postgres_get(&self.pool).await
    }

    async fn ca_insert_if_absent(&self, ca: &super::StoredCa) -> Result<super::StoredCa, Error> {
        super::authority::postgres_insert_if_absent(&self.pool, ca).await
    }
}
