//! Sorting database failures into what callers act on: a concurrency
//! conflict (retry), a refused reservation (tell the user), the database
//! being unreachable (503, try later), or something unexpected (log it).

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

/// Maps a database error met while persisting.
pub fn persistence_error(error: sqlx::Error) -> PersistenceError {
    if let sqlx::Error::Database(db) = &error {
        if db.code().is_some_and(|code| is_conflict(code.as_ref())) {
            return PersistenceError::OptimisticLockError;
        }
    }
    if is_unavailable(&error) {
        PersistenceError::ConnectionError(Box::new(error))
    } else {
        PersistenceError::UnknownError(Box::new(error))
    }
}

/// Why a commit failed, once cqrs-es has wrapped it.
#[derive(Debug)]
pub enum StoreFailure {
    /// Another commit on the aggregate came first.
    Conflict,
    /// A cross-aggregate rule refused it.
    Reservation(ReservationConflict),
    /// The command's idempotency key was stored by an earlier commit.
    KeyTaken,
    /// The database could not be reached.
    Unavailable(Box<dyn std::error::Error + Send + Sync>),
    /// Anything else.
    Unexpected(Box<dyn std::error::Error + Send + Sync>),
}

/// Classifies a cqrs-es error that did not come from the domain.
pub fn classify<E: std::error::Error>(error: AggregateError<E>) -> Result<StoreFailure, E> {
    Ok(match error {
        AggregateError::UserError(domain) => return Err(domain),
        AggregateError::AggregateConflict => StoreFailure::Conflict,
        AggregateError::DatabaseConnectionError(e) => StoreFailure::Unavailable(e),
        AggregateError::DeserializationError(e) => StoreFailure::Unexpected(e),
        AggregateError::UnexpectedError(e) => {
            if e.downcast_ref::<crate::idempotency::KeyTaken>().is_some() {
                StoreFailure::KeyTaken
            } else if let Some(conflict) = e.downcast_ref::<ReservationConflict>() {
                StoreFailure::Reservation(conflict.clone())
            } else if e.downcast_ref::<sqlx::Error>().is_some_and(is_unavailable) {
                StoreFailure::Unavailable(e)
            } else {
                StoreFailure::Unexpected(e)
            }
        }
    })
}
