//! Proxy tokens as stored: what a proxy presents on the xDS port, kept as the SHA-256 of
//! its secret (never the secret), bound to one node id and node cluster.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row, SqlitePool, postgres::PgRow, sqlite::SqliteRow};

use super::Error;

/// One proxy token's row. Holds the secret's hash, never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyToken {
    /// Public handle, e.g. `pt-1f2e…`: what logs, lists and revocation name.
    pub id: String,
    /// Lowercase hex SHA-256 of the secret.
    pub secret_sha256: String,
    /// The node id a stream presenting this token must announce.
    pub node_id: String,
    /// The node cluster a stream presenting this token must announce.
    pub node_cluster: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
}

const SELECT: &str =
    "SELECT id, secret_sha256, node_id, node_cluster, description, created_at FROM proxy_tokens";

fn parse_time(s: &str) -> Result<DateTime<Utc>, Error> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| Error::Corrupt(format!("proxy token created_at '{s}': {e}")))
}

macro_rules! from_row {
    ($name:ident, $row:ty) => {
        fn $name(row: &$row) -> Result<ProxyToken, Error> {
            let created_at: String = row.try_get("created_at")?;
            Ok(ProxyToken {
                id: row.try_get("id")?,
                secret_sha256: row.try_get("secret_sha256")?,
                node_id: row.try_get("node_id")?,
                node_cluster: row.try_get("node_cluster")?,
                description: row.try_get("description")?,
                created_at: parse_time(&created_at)?,
            })
        }
    };
}
from_row!(from_sqlite, SqliteRow);
from_row!(from_postgres, PgRow);

pub(super) async fn sqlite_list(pool: &SqlitePool) -> Result<Vec<ProxyToken>, Error> {
    let rows = sqlx::query(&format!("{SELECT} ORDER BY created_at, id"))
        .fetch_all(pool)
        .await?;
    rows.iter().map(from_sqlite).collect()
}

pub(super) async fn sqlite_insert(pool: &SqlitePool, t: &ProxyToken) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO proxy_tokens (id, secret_sha256, node_id, node_cluster, description, created_at) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(&t.id)
    .bind(&t.secret_sha256)
    .bind(&t.node_id)
    .bind(&t.node_cluster)
    .bind(&t.description)
    .bind(t.created_at.to_rfc3339())
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn sqlite_delete(pool: &SqlitePool, id: &str) -> Result<bool, Error> {
    let done = sqlx::query("DELETE FROM proxy_tokens WHERE id = ?")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn postgres_list(pool: &PgPool) -> Result<Vec<ProxyToken>, Error> {
    let rows = sqlx::query(&format!("{SELECT} ORDER BY created_at, id"))
        .fetch_all(pool)
        .await?;
    rows.iter().map(from_postgres).collect()
}

pub(super) async fn postgres_insert(pool: &PgPool, t: &ProxyToken) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO proxy_tokens (id, secret_sha256, node_id, node_cluster, description, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&t.id)
    .bind(&t.secret_sha256)
    .bind(&t.node_id)
    .bind(&t.node_cluster)
    .bind(&t.description)
    .bind(t.created_at.to_rfc3339())
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn postgres_delete(pool: &PgPool, id: &str) -> Result<bool, Error> {
    let done = sqlx::query("DELETE FROM proxy_tokens WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}
