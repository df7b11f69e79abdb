//! The write rules, written once for both backends. A backend supplies a [`WriteTx`]: the
//! handful of single-statement steps inside one transaction; the order and the checks live
//! here.

use async_trait::async_trait;
use chrono::{SubsecRound, Utc};

use super::{Error, Record, Write, Written};
use crate::model::{Kind, Reference};

/// The steps of a write transaction. Dropping it without [`WriteTx::commit`] rolls back.
#[async_trait]
pub trait WriteTx: Send {
    /// Bumps and returns the global revision; the first statement of every write, taking the
    /// lock that serialises writers.
    async fn bump_revision(&mut self) -> Result<i64, Error>;
    async fn fetch(&mut self, kind: Kind, name: &str) -> Result<Option<Record>, Error>;
    async fn upsert(&mut self, record: &Record) -> Result<(), Error>;
    /// Replaces the references held by `(kind, name)` with `targets`.
    async fn set_references(
        &mut self,
        kind: Kind,
        name: &str,
        targets: &[Reference],
    ) -> Result<(), Error>;
    /// Who references `(kind, name)`, owned references or plain ones, in a stable order.
    async fn referrers(
        &mut self,
        kind: Kind,
        name: &str,
        owned: bool,
    ) -> Result<Vec<(Kind, String)>, Error>;
    async fn delete_row(&mut self, kind: Kind, name: &str) -> Result<(), Error>;
    /// Commits; `revision` is announced to other replicas where the backend can.
    async fn commit(self, revision: i64) -> Result<(), Error>;
}

/// Create-or-replace: version check, reference check, upsert, references.
pub(super) async fn put<T: WriteTx>(mut tx: T, w: Write) -> Result<Written, Error> {
    let revision = tx.bump_revision().await?;
    let current = tx.fetch(w.kind, &w.name).await?;
    check_version(
        w.kind,
        &w.name,
        w.expected_version,
        current.as_ref().map(|c| c.version),
    )?;
    let targets = distinct_targets(&w.references);
    for target in &targets {
        if tx.fetch(target.kind, &target.name).await?.is_none() {
            return Err(Error::DanglingReference {
                field: target.field.clone(),
                kind: target.kind,
                name: target.name.clone(),
            });
        }
    }
    // Microseconds: what both databases keep, so the record returned equals the one stored.
    let now = Utc::now().trunc_subsecs(6);
    let record = Record {
        kind: w.kind,
        name: w.name,
        version: current.as_ref().map_or(1, |c| c.version + 1),
        revision,
        spec: w.spec,
        created_at: current.as_ref().map_or(now, |c| c.created_at),
        updated_at: now,
    };
    tx.upsert(&record).await?;
    tx.set_references(record.kind, &record.name, &targets)
        .await?;
    tx.commit(revision).await?;
    Ok(Written {
        created: current.is_none(),
        record,
    })
}

/// Delete: version check, refuse while referenced, then the owned resources and the target.
/// Returns the revision written and the deleted records, the named one first.
pub(super) async fn delete<T: WriteTx>(
    mut tx: T,
    kind: Kind,
    name: &str,
    expected_version: Option<i64>,
) -> Result<(i64, Vec<Record>), Error> {
    let revision = tx.bump_revision().await?;
    let current = tx.fetch(kind, name).await?.ok_or_else(|| Error::NotFound {
        kind,
        name: name.to_string(),
    })?;
    check_version(kind, name, expected_version, Some(current.version))?;
    let blocking = tx.referrers(kind, name, false).await?;
    if !blocking.is_empty() {
        return Err(Error::Referenced {
            kind,
            name: name.to_string(),
            referrers: blocking,
        });
    }
    let mut deleted = vec![current];
    for (child_kind, child_name) in tx.referrers(kind, name, true).await? {
        deleted.extend(tx.fetch(child_kind, &child_name).await?);
        tx.delete_row(child_kind, &child_name).await?;
    }
    tx.delete_row(kind, name).await?;
    tx.commit(revision).await?;
    Ok((revision, deleted))
}

/// Checks the version a writer expects against what is stored (also for dry runs, which
/// check without writing).
pub(crate) fn check_version(
    kind: Kind,
    name: &str,
    expected: Option<i64>,
    actual: Option<i64>,
) -> Result<(), Error> {
    let ok = match expected {
        None => true,
        Some(0) => actual.is_none(),
        Some(e) => actual == Some(e),
    };
    if ok {
        return Ok(());
    }
    Err(Error::Conflict {
        kind,
        name: name.to_string(),
        expected: expected.unwrap_or_default(),
        actual,
    })
}

/// One reference per target, owned if any mention of it is owned.
fn distinct_targets(references: &[Reference]) -> Vec<Reference> {
    let mut out: Vec<Reference> = Vec::new();
    for r in references {
        match out
            .iter_mut()
            .find(|o| o.kind == r.kind && o.name == r.name)
        {
            Some(o) => o.owned |= r.owned,
            None => out.push(r.clone()),
        }
    }
    out
}
