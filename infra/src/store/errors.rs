//! Sorting database failures into what callers act on: a concurrency
//! conflict (retry), a refused reservation (tell the user), the database
//! being unreachable (503, try later), or something unexpected (log it).
//!
//! A commit's failure is a typed [`CommitError`] from the store to the
//! command bus, which commits through [`super::BatonRepository::commit`]
//! itself: Baton's own failures (a reservation refused, an idempotency key
//! taken) never travel inside cqrs-es's `PersistenceError` to be recovered
//! by downcasting. Loads still go through cqrs-es, whose errors box the
//! database's; [`classify`] reads those.

use cqrs_es::persist::PersistenceError;
use cqrs_es::AggregateError;
use domain::reservation::ReservationConflict;

/// SQLSTATEs and SQLite codes that mean "another writer got there first".
fn is_conflict(code: &str) -> bool {
    matches!(
        code,
        "23505" // unique_violation: the (type, id, sequence) key
            | "40001" // serialization_failure
            | "40P01" // deadlock_detected: two commits took keys in opposite order
            | "1555" // SQLITE_CONSTRAINT_PRIMARYKEY
            | "2067" // SQLITE_CONSTRAINT_UNIQUE
            | "5" // SQLITE_BUSY
            | "517" // SQLITE_BUSY_SNAPSHOT
    )
}

/// True when the database cannot be reached (or is shutting down).
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections
            matches!(code.as_ref(), "57P01" | "57P02" | "57P03" | "53300") || code.starts_with("08")
            // connection exceptions
        }),
        _ => false,
    }
}

/// Why a commit failed.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// Another commit on the aggregate came first (or the database asked
    /// to retry: a serialisation failure, a deadlock, SQLite busy).
    #[error("another commit on the record came first")]
    Conflict,
    /// A cross-aggregate rule refused it.
    #[error(transparent)]
    Reservation(ReservationConflict),
    /// The command's idempotency key was stored by an earlier commit.
    #[error("the idempotency key was stored by an earlier commit")]
    KeyTaken,
    /// The database could not be reached.
    #[error("the event store is unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// The database refused it for another reason.
    #[error("the event store failed: {0}")]
    Database(#[source] sqlx::Error),
    /// An event to store could not be read back as its type.
    #[error(transparent)]
    Unreadable(#[from] domain::upcast::ReadError),
    /// An event could not be written as JSON.
    #[error("an event could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
    /// The command's idempotency metadata cannot be read.
    #[error(transparent)]
    Idempotency(#[from] crate::idempotency::CorruptRow),
    /// A sequence number beyond what the database stores.
    #[error("sequence number {0} is out of range")]
    Sequence(usize),
}

impl From<sqlx::Error> for CommitError {
    fn from(error: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &error {
            if db.code().is_some_and(|code| is_conflict(code.as_ref())) {
                return CommitError::Conflict;
            }
        }
        if is_unavailable(&error) {
            CommitError::Unavailable(error)
        } else {
            CommitError::Database(error)
        }
    }
}

/// For cqrs-es's own commit path (`PersistedEventRepository::persist`),
/// which Baton's bus does not take.
impl From<CommitError> for PersistenceError {
    fn from(error: CommitError) -> Self {
        match error {
            CommitError::Conflict => PersistenceError::OptimisticLockError,
            CommitError::Unavailable(e) => PersistenceError::ConnectionError(Box::new(e)),
            other => PersistenceError::UnknownError(Box::new(other)),
        }
    }
}

/// Why a load failed, once cqrs-es has wrapped it.
#[derive(Debug)]
pub enum StoreFailure {
    /// The database could not be reached.
    Unavailable(Box<dyn std::error::Error + Send + Sync>),
    Unexpected(Box<dyn std::error::Error + Send + Sync>),
}

/// Classifies a cqrs-es load error that did not come from the domain.
/// postgres-es reports a database it cannot reach through a pool (timed
/// out, closed) as an unknown error holding the `sqlx::Error`, so that one
/// library type is looked for inside it.
pub fn classify<E: std::error::Error>(error: AggregateError<E>) -> Result<StoreFailure, E> {
    Ok(match error {
        AggregateError::UserError(domain) => return Err(domain),
        AggregateError::DatabaseConnectionError(e) => StoreFailure::Unavailable(e),
        AggregateError::UnexpectedError(e)
            if e.downcast_ref::<sqlx::Error>().is_some_and(is_unavailable) =>
        {
            StoreFailure::Unavailable(e)
        }
        AggregateError::AggregateConflict => {
            StoreFailure::Unexpected("a load reported a conflict".into())
        }
        AggregateError::DeserializationError(e) | AggregateError::UnexpectedError(e) => {
            StoreFailure::Unexpected(e)
        }
    })
}
