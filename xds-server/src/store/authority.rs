//! The built-in mesh CA's row: written once, whichever replica comes first, and read back by
//! all (see `crate::ca::storage`).

use chrono::Utc;
use sqlx::{PgPool, Row, SqlitePool, postgres::PgRow, sqlite::SqliteRow};

use super::Error;

/// The built-in CA as stored. Prints without the key.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredCa {
    pub certificate_pem: String,
    /// The key's PEM, or the key sealed with the operator's key when `key_sealed`.
    pub private_key: String,
    pub key_sealed: bool,
}

impl std::fmt::Debug for StoredCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCa")
            .field("key_sealed", &self.key_sealed)
            .field("private_key", &"[redacted]")
            .finish_non_exhaustive()
    }
}

fn from_sqlite(row: &SqliteRow) -> Result<StoredCa, Error> {
    Ok(StoredCa {
        certificate_pem: row.try_get("certificate_pem")?,
        private_key: row.try_get("private_key")?,
        key_sealed: row.try_get("key_sealed")?,
    })
}

fn from_postgres(row: &PgRow) -> Result<StoredCa, Error> {
    Ok(StoredCa {
        certificate_pem: row.try_get("certificate_pem")?,
        private_key: row.try_get("private_key")?,
        key_sealed: row.try_get("key_sealed")?,
    })
}

const SELECT: &str = "SELECT certificate_pem, private_key, key_sealed FROM mesh_ca WHERE id = 1";

pub(super) async fn sqlite_get(pool: &SqlitePool) -> Result<Option<StoredCa>, Error> {
    let row = sqlx::query(SELECT).fetch_optional(pool).await?;
    row.as_ref().map(from_sqlite).transpose()
}

pub(super) async fn sqlite_insert_if_absent(
    pool: &SqlitePool,
    ca: &StoredCa,
) -> Result<StoredCa, Error> {
    sqlx::query(
        "INSERT INTO mesh_ca (id, certificate_pem, private_key, key_sealed, created_at) \
         VALUES (1, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&ca.certificate_pem)
    .bind(&ca.private_key)
    .bind(ca.key_sealed)
    .bind(Utc::now().to_rfc3339())
    .execute(pool)
    .await?;
    sqlite_get(pool)
        .await?
        .ok_or_else(|| Error::Corrupt("the mesh CA row vanished right after its insert".into()))
}

pub(super) async fn postgres_get(pool: &PgPool) -> Result<Option<StoredCa>, Error> {
    let row = sqlx::query(SELECT).fetch_optional(pool).await?;
    row.as_ref().map(from_postgres).transpose()
}

pub(super) async fn postgres_insert_if_absent(
    pool: &PgPool,
    ca: &StoredCa,
) -> Result<StoredCa, Error> {
    sqlx::query(
        "INSERT INTO mesh_ca (id, certificate_pem, private_key, key_sealed, created_at) \
         VALUES (1, $1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&ca.certificate_pem)
    .bind(&ca.private_key)
    .bind(ca.key_sealed)
    .bind(Utc::now().to_rfc3339())
    .execute(pool)
    .await?;
    postgres_get(pool)
        .await?
        .ok_or_else(|| Error::Corrupt("the mesh CA row vanished right after its insert".into()))
}
