//! The production backend: PostgreSQL. Commits send `NOTIFY mesh_revision` so every replica
//! learns of every write at once; polling covers a dropped LISTEN connection.

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
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        sqlx::migrate!("../migrations/postgres").run(&pool).await?;
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(CHANNEL).await?;
        let store = SqlStore::new(PostgresBackend { pool }, poll_interval).await?;
        let task = Background(tokio::spawn(listen(listener, store.revision_sender())));
        Ok(store.with_task(task))
    }
}

/// Publishes each notified revision. `recv` reconnects by itself after a dropped connection;
/// whatever was missed meanwhile the poller picks up.
async fn listen(mut listener: PgListener, tx: watch::Sender<i64>) {
    loop {
        match listener.recv().await {
            Ok(n) => match n.payload().parse() {
                Ok(rev) => revisions::publish(&tx, rev),
                Err(_) => tracing::warn!(
                    payload = n.payload(),
                    "ignoring malformed revision notification"
                ),
            },
            Err(e) => {
                tracing::warn!(error = %e, "LISTEN connection failed; retrying in 1s (polling continues)");
                tokio::time::sleep(Duration::from_secs(1)).await;
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
    .bind(kind.as_str())
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
        .bind(r.kind.as_str())
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
            .bind(kind.as_str())
            .bind(name)
            .execute(&mut *self.0)
            .await?;
        for t in targets {
            sqlx::query(
                "INSERT INTO resource_refs (from_kind, from_name, to_kind, to_name, owned)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(kind.as_str())
            .bind(name)
            .bind(t.kind.as_str())
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
        .bind(kind.as_str())
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
            .bind(kind.as_str())
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
        .bind(kind.as_str())
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
}
