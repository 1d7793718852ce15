//! Idempotency keys: a client that retries a command with the same key gets
//! the first answer, and the command is recorded once.
//!
//! The key is written in the same transaction as the command's events (the
//! repository reads it from the first event's metadata), so there is no
//! window in which events are committed but the key is not: a retry after a
//! crash, or racing the first attempt, finds either nothing (and runs) or
//! the stored answer. A second commit under a key already stored aborts
//! with `store::CommitError::KeyTaken` and the bus answers from the stored row instead.
//! Keys are scoped by principal: one user can never replay another's answer.

use serde::{Deserialize, Serialize};

use crate::store::Database;

/// The metadata entry carrying the key through cqrs-es into the commit.
pub const METADATA_KEY: &str = "idempotency";

/// A command's idempotency key and what identifies its request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Idempotency {
    /// Who sent it (a token's `sub`).
    pub principal: String,
    /// The client's key.
    pub key: String,
    /// A digest of the request (method, path, body): the same key with a
    /// different request is the client's mistake, not a retry.
    pub fingerprint: String,
    /// Extra answer fields the API adds (e.g. a new delay's id), stored so
    /// the replayed answer is the first one, word for word.
    pub extra: serde_json::Value,
}

/// The first answer, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    /// The fingerprint of the request that produced it.
    pub fingerprint: String,
    /// The aggregate the command went to.
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// Its version after the command.
    pub version: u64,
    /// The API's extra fields.
    pub extra: serde_json::Value,
}

/// A stored answer that cannot be read back: logged and answered as an
/// internal error, never replaced by defaults (a version of 0 or no extra
/// fields would be a wrong answer given as the first one).
#[derive(Debug, thiserror::Error)]
pub enum CorruptRow {
    /// A negative version.
    #[error("idempotency key row holds version {0}")]
    Version(i64),
    /// Extra fields that are not JSON.
    #[error("idempotency key row's extra fields are not JSON: {0}")]
    Extra(#[source] serde_json::Error),
    /// A commit's idempotency metadata that is not an `Idempotency`.
    #[error("a commit's idempotency metadata cannot be read: {0}")]
    Metadata(#[source] serde_json::Error),
}

/// Finds the answer stored under a key.
pub async fn lookup(
    db: &Database,
    principal: &str,
    key: &str,
) -> Result<Option<StoredAnswer>, sqlx::Error> {
    let row: Option<(String, String, String, i64, String)> = crate::on_either_database!(db, pool => {
        sqlx::query_as(
            "SELECT fingerprint, aggregate_type, aggregate_id, version, extra \
             FROM idempotency_keys WHERE principal = $1 AND key = $2",
        )
        .bind(principal)
        .bind(key)
        .fetch_optional(pool)
        .await?
    });
    let Some((fingerprint, aggregate_type, aggregate_id, version, extra)) = row else {
        return Ok(None);
    };
    let corrupt = |e: CorruptRow| sqlx::Error::Decode(Box::new(e));
    Ok(Some(StoredAnswer {
        fingerprint,
        aggregate_type,
        aggregate_id,
        version: u64::try_from(version).map_err(|_| corrupt(CorruptRow::Version(version)))?,
        extra: serde_json::from_str(&extra).map_err(|e| corrupt(CorruptRow::Extra(e)))?,
    }))
}

/// The key a commit carries, if any, and the version it leaves.
pub(crate) fn of_commit(
    events: &[cqrs_es::persist::SerializedEvent],
) -> Result<Option<(Idempotency, &cqrs_es::persist::SerializedEvent)>, CorruptRow> {
    let (Some(first), Some(last)) = (events.first(), events.last()) else {
        return Ok(None);
    };
    let Some(text) = first.metadata.get(METADATA_KEY).and_then(|v| v.as_str()) else {
        return Ok(None);
    };
    let idempotency = serde_json::from_str(text).map_err(CorruptRow::Metadata)?;
    Ok(Some((idempotency, last)))
}

/// Stores the answer to a command that recorded nothing (it asked for what
/// already held), so a retry under its key answers the same even after
/// others have moved the record on. False when the key was stored already.
pub async fn store_unchanged(
    db: &Database,
    key: &Idempotency,
    aggregate_type: &str,
    aggregate_id: &str,
    version: u64,
) -> Result<bool, sqlx::Error> {
    let version = i64::try_from(version).unwrap_or(i64::MAX);
    crate::on_either_database!(db, pool => {
        insert(pool, key, aggregate_type, aggregate_id, version).await
    })
}

/// Inserts a key's row unless it is there; false when it was. One text for
/// both databases: the time is the clock's on both, as SQLite has no
/// `now()` default.
pub(crate) async fn insert<'e, DB>(
    executor: impl sqlx::Executor<'e, Database = DB>,
    key: &Idempotency,
    aggregate_type: &str,
    aggregate_id: &str,
    version: i64,
) -> Result<bool, sqlx::Error>
where
    DB: sqlx::Database,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> chrono::DateTime<chrono::Utc>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'r> (i32,): sqlx::FromRow<'r, DB::Row>,
{
    let stored: Option<i32> = sqlx::query_scalar(
        "INSERT INTO idempotency_keys (principal, key, fingerprint, aggregate_type, \
         aggregate_id, version, extra, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (principal, key) DO NOTHING RETURNING 1",
    )
    .bind(key.principal.as_str())
    .bind(key.key.as_str())
    .bind(key.fingerprint.as_str())
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(version)
    .bind(key.extra.to_string())
    .bind(chrono::Utc::now())
    .fetch_optional(executor)
    .await?;
    Ok(stored.is_some())
}
