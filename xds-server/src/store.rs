//! The store: the mesh model as versioned JSON documents, one trait over two backends.
//!
//! - [`SqliteStore`]: an embedded file, the zero-setup default for one replica.
//! - [`PostgresStore`]: for production and several replicas; commits send `NOTIFY` so every
//!   replica learns of every write.
//! - [`Measured`]: wraps either and times every operation for `/metrics`.
//!
//! Every write runs in one transaction that first bumps the global revision. That single row
//! lock serialises writers, so revision order is commit order, and the reference checks
//! (dangling references, deleting something still referenced) cannot race.

mod authority;
mod measured;
mod postgres;
mod proxy_tokens;
mod revisions;
mod sql;
mod sqlite;
mod transaction;

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::model::{Kind, Reference, noun};

pub use authority::StoredCa;
pub use measured::Measured;
pub use postgres::{PostgresBackend, PostgresStore};
pub use proxy_tokens::ProxyToken;
pub use sql::SqlStore;
pub use sqlite::{SqliteBackend, SqliteStore};
pub(crate) use transaction::check_version;

/// One stored resource: the operator's spec plus what the store adds.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub kind: Kind,
    pub name: String,
    /// Bumped on every write of this resource; the optimistic-concurrency token.
    pub version: i64,
    /// The global revision of this resource's last write.
    pub revision: i64,
    pub spec: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A create-or-replace.
#[derive(Debug, Clone)]
pub struct Write {
    pub kind: Kind,
    pub name: String,
    pub spec: serde_json::Value,
    /// The resources `spec` names; each must exist when the write commits.
    pub references: Vec<Reference>,
    /// The version the writer last read: `Some(0)` means "must not exist yet", `None` writes
    /// unconditionally.
    pub expected_version: Option<i64>,
}

/// What [`Store::put`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub record: Record,
    pub created: bool,
}

/// Every resource at one revision: the input of translation.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub revision: i64,
    pub resources: BTreeMap<(Kind, String), Record>,
}

impl Snapshot {
    pub fn new(revision: i64, records: impl IntoIterator<Item = Record>) -> Self {
        let resources = records
            .into_iter()
            .map(|r| ((r.kind, r.name.clone()), r))
            .collect();
        Self {
            revision,
            resources,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{} '{name}' does not exist", noun(*kind))]
    NotFound { kind: Kind, name: String },
    #[error(
        "{} '{name}' is at version {}, not {expected}: read it again and retry",
        noun(*kind), actual.map_or("absent".to_string(), |v| v.to_string())
    )]
    Conflict {
        kind: Kind,
        name: String,
        expected: i64,
        actual: Option<i64>,
    },
    #[error("{} '{name}' does not exist: create it first", noun(*kind))]
    DanglingReference {
        field: String,
        kind: Kind,
        name: String,
    },
    #[error(
        "{} '{name}' is still used by {}: change or delete those first",
        noun(*kind),
        describe(referrers)
    )]
    Referenced {
        kind: Kind,
        name: String,
        referrers: Vec<(Kind, String)>,
    },
    /// See [`Error::is_unavailable`] for which of these are worth retrying.
    #[error("database error: {0} (is the database reachable?)")]
    Database(#[from] sqlx::Error),
    #[error("could not migrate the database schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored row is unreadable: {0}")]
    Corrupt(String),
}

impl Error {
    /// The database could not be reached or could not serve the request just now (a lost
    /// connection, a pool that found no live connection in time, a server shutting down or
    /// starting up, a busy SQLite file): retrying later may succeed, and the caller should be
    /// told so rather than see an internal error.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Database(e) => database_unavailable(e),
            _ => false,
        }
    }
}

/// The connection-level and transient failures among sqlx's errors (see
/// [`Error::is_unavailable`]).
fn database_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| transient_code(&code)),
        _ => false,
    }
}

/// SQLSTATEs (Postgres) and result codes (SQLite) that say "not now" rather than "never".
fn transient_code(code: &str) -> bool {
    // Postgres: class 08 connection exception; 57P01 admin_shutdown, 57P02 crash_shutdown,
    // 57P03 cannot_connect_now; 53300 too_many_connections; 40001 serialization_failure,
    // 40P01 deadlock_detected.
    if code.starts_with("08")
        || ["57P01", "57P02", "57P03", "53300", "40001", "40P01"].contains(&code)
    {
        return true;
    }
    // SQLite's extended result codes: the primary code is the low byte; 5 BUSY, 6 LOCKED.
    code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6))
}

fn describe(referrers: &[(Kind, String)]) -> String {
    referrers
        .iter()
        .map(|(k, n)| format!("{} '{n}'", noun(*k)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The storage the rest of the server sees. Implementations must pass the conformance suite in
/// `tests/store_conformance.rs`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `"sqlite"` or `"postgres"`, for logs and `/readyz`.
    fn backend(&self) -> &'static str;

    /// Creates or replaces one resource, checking its expected version and references.
    async fn put(&self, write: Write) -> Result<Written, Error>;

    async fn get(&self, kind: Kind, name: &str) -> Result<Option<Record>, Error>;

    /// Up to `limit` resources of `kind` whose names sort after `after`, in name order.
    async fn list(&self, kind: Kind, after: Option<&str>, limit: u32)
    -> Result<Vec<Record>, Error>;

    /// Deletes one resource and the resources it owns; refused while others reference it.
    /// Returns the deleted records, the named one first.
    async fn delete(
        &self,
        kind: Kind,
        name: &str,
        expected_version: Option<i64>,
    ) -> Result<Vec<Record>, Error>;

    /// Every resource, read in one consistent transaction.
    async fn snapshot(&self) -> Result<Snapshot, Error>;

    /// The latest committed revision, read from the database.
    async fn revision(&self) -> Result<i64, Error>;

    /// The latest revision this replica knows of: bumped at once by local writes, and by
    /// NOTIFY or polling for writes from elsewhere. Never goes backwards.
    fn watch(&self) -> watch::Receiver<i64>;

    /// Every proxy token (hashes, never secrets), oldest first.
    async fn proxy_tokens(&self) -> Result<Vec<ProxyToken>, Error>;

    /// Stores a new proxy token (its id and hash must be new).
    async fn proxy_token_create(&self, token: &ProxyToken) -> Result<(), Error>;

    /// Deletes a proxy token; false when there was none. Bumps the global revision so every
    /// replica (NOTIFY or polling) reloads its tokens and ends the streams that used it.
    async fn proxy_token_revoke(&self, id: &str) -> Result<bool, Error>;

    /// The built-in mesh CA, if one was stored. (The default is for test doubles: both SQL
    /// backends keep it.)
    async fn ca_get(&self) -> Result<Option<StoredCa>, Error> {
        Err(Error::Corrupt(
            "this store does not keep the mesh CA".into(),
        ))
    }

    /// Stores `ca` unless a CA is already stored, and returns the stored one: replicas
    /// starting at once all end up with the first one written.
    async fn ca_insert_if_absent(&self, _ca: &StoredCa) -> Result<StoredCa, Error> {
        Err(Error::Corrupt(
            "this store does not keep the mesh CA".into(),
        ))
    }
}

fn parse_kind(s: &str) -> Result<Kind, Error> {
    Kind::from_collection(s).ok_or_else(|| Error::Corrupt(format!("unknown kind '{s}'")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_connections_are_unavailable_other_errors_are_not() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        for e in [sqlx::Error::PoolTimedOut, sqlx::Error::Io(refused)] {
            assert!(Error::Database(e).is_unavailable());
        }
        assert!(!Error::Database(sqlx::Error::RowNotFound).is_unavailable());
        assert!(!Error::Corrupt("x".into()).is_unavailable());
    }

    #[test]
    fn transient_codes() {
        for code in ["08006", "57P01", "57P03", "53300", "40001", "5", "517", "6"] {
            assert!(transient_code(code), "{code}");
        }
        for code in ["23505", "42P01", "19", "1"] {
            assert!(!transient_code(code), "{code}");
        }
    }
}
