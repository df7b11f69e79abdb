//! The embedded backend: one SQLite file in WAL mode.

use std::{path::Path, str::FromStr, time::Duration};

use async_trait::async_trait;
use sqlx::{
    Row, Sqlite, Transaction,
    sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
        SqliteSynchronous,
    },
};

use super::{
    Error, Record, Snapshot, parse_kind,
    sql::{Backend, SqlStore},
    transaction::WriteTx,
};
use crate::model::{Kind, Reference};

/// A store in one SQLite file. Several processes may share the file; each sees the others'
/// writes by polling.
pub type SqliteStore = SqlStore<SqliteBackend>;

/// The SQLite dialect.
pub struct SqliteBackend {
    pool: SqlitePool,
}

impl SqlStore<SqliteBackend> {
    /// Opens (creating if needed) the database file at `path` and migrates it.
    pub async fn open(path: &Path, poll_interval: Duration) -> Result<Self, Error> {
        Self::open_with(SqliteConnectOptions::new().filename(path), poll_interval).await
    }

    /// Opens a `sqlite:` URL, e.g. `sqlite://mesh.db`.
    pub async fn connect(url: &str, poll_interval: Duration) -> Result<Self, Error> {
        Self::open_with(SqliteConnectOptions::from_str(url)?, poll_interval).await
    }

    async fn open_with(
        options: SqliteConnectOptions,
        poll_interval: Duration,
    ) -> Result<Self, Error> {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("../migrations/sqlite").run(&pool).await?;
        SqlStore::new(SqliteBackend { pool }, poll_interval).await
    }
}

async fn read_revision<'e>(conn: impl sqlx::Executor<'e, Database = Sqlite>) -> Result<i64, Error> {
    Ok(
        sqlx::query_scalar("SELECT revision FROM mesh_revision WHERE id = 1")
            .fetch_one(conn)
            .await?,
    )
}

const COLUMNS: &str = "kind, name, version, revision, spec, created_at, updated_at";

fn record(row: &SqliteRow) -> Result<Record, Error> {
    let spec: String = row.try_get("spec")?;
    Ok(Record {
        kind: parse_kind(row.try_get("kind")?)?,
        name: row.try_get("name")?,
        version: row.try_get("version")?,
        revision: row.try_get("revision")?,
        spec: serde_json::from_str(&spec).map_err(|e| Error::Corrupt(e.to_string()))?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

async fn fetch<'e>(
    conn: impl sqlx::Executor<'e, Database = Sqlite>,
    kind: Kind,
    name: &str,
) -> Result<Option<Record>, Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM resources WHERE kind = ? AND name = ?"
    ))
    .bind(kind.collection())
    .bind(name)
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(record)
    .transpose()
}

pub struct SqliteTx(Transaction<'static, Sqlite>);

#[async_trait]
impl WriteTx for SqliteTx {
    /// As the transaction's first statement this takes SQLite's write lock, so writers queue
    /// here (up to the busy timeout) instead of failing later.
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
            "INSERT INTO resources ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (kind, name) DO UPDATE SET version = excluded.version,
               revision = excluded.revision, spec = excluded.spec, updated_at = excluded.updated_at"
        ))
        .bind(r.kind.collection())
        .bind(&r.name)
        .bind(r.version)
        .bind(r.revision)
        .bind(r.spec.to_string())
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
        sqlx::query("DELETE FROM resource_refs WHERE from_kind = ? AND from_name = ?")
            .bind(kind.collection())
            .bind(name)
            .execute(&mut *self.0)
            .await?;
        for t in targets {
            sqlx::query(
                "INSERT INTO resource_refs (from_kind, from_name, to_kind, to_name, owned)
                 VALUES (?, ?, ?, ?, ?)",
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
             WHERE to_kind = ? AND to_name = ? AND owned = ? ORDER BY from_kind, from_name",
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
        sqlx::query("DELETE FROM resources WHERE kind = ? AND name = ?")
            .bind(kind.collection())
            .bind(name)
            .execute(&mut *self.0)
            .await?;
        Ok(())
    }

    /// Other processes on the same file learn of the write by polling.
    async fn commit(self, _revision: i64) -> Result<(), Error> {
        Ok(self.0.commit().await?)
    }
}

#[async_trait]
impl Backend for SqliteBackend {
    const NAME: &'static str = "sqlite";
    type Tx = SqliteTx;

    async fn begin(&self) -> Result<SqliteTx, Error> {
        Ok(SqliteTx(self.pool.begin().await?))
    }

    async fn get(&self, kind: Kind, name: &str) -> Result<Option<Record>, Error> {
        fetch(&self.pool, kind, name).await
    }

    async fn list(&self, kind: Kind, after: &str, limit: i64) -> Result<Vec<Record>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM resources WHERE kind = ? AND name > ? ORDER BY name LIMIT ?"
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
        super::proxy_tokens::sqlite_list(&self.pool).await
    }

    async fn proxy_token_insert(&self, token: &super::ProxyToken) -> Result<(), Error> {
        super::proxy_tokens::sqlite_insert(&self.pool, token).await
    }

    async fn proxy_token_delete(&self, id: &str) -> Result<bool, Error> {
        super::proxy_tokens::sqlite_delete(&self.pool, id).await
    }

    async fn ca_get(&self) -> Result<Option<super::StoredCa>, Error> {
        super::authority::sqlite_get(&self.pool).await
    }

    async fn ca_insert_if_absent(&self, ca: &super::StoredCa) -> Result<super::StoredCa, Error> {
        super::authority::sqlite_insert_if_absent(&self.pool, ca).await
    }
}
