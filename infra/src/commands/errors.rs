//! Why a command was not carried out, as the API needs to tell it.

use std::time::Duration;

use domain::referral::ReferralError;
use domain::reservation::ReservationConflict;
use domain::spell::SpellError;

use crate::store::{classify, CommitError, StoreFailure};

/// A command ran out of time (see [`super::COMMAND_DEADLINE`]).
#[derive(Debug, thiserror::Error)]
#[error("the event store did not answer within {0:?}")]
pub struct DeadlinePassed(pub Duration);

/// The caller may not act on the aggregate as the bus loaded it: the
/// caller's own refusal (the API's 404 or 403), carried through the bus.
#[derive(Debug, thiserror::Error)]
#[error("the caller may not act on this record")]
pub struct Denied(pub Box<dyn std::error::Error + Send + Sync>);

/// A check of the caller against the aggregate's current state, made by the
/// bus on the state it loads for the command anyway. Authorising on a
/// state loaded for the purpose cost a second load per command (measured
/// with `bench-http`), and the bus's state is the one the command is
/// decided on, so the check cannot see another.
pub type Guard<'a, D> = &'a (dyn Fn(&D) -> Result<(), Denied> + Send + Sync);

/// Why a command was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error> {
    /// The command's guard refused the caller.
    #[error(transparent)]
    Denied(Denied),
    /// The domain refused it: a rule of the aggregate.
    #[error(transparent)]
    Refused(E),
    /// A rule spanning aggregates refused it.
    #[error(transparent)]
    Reservation(ReservationConflict),
    /// `If-Match` named another version than the current one.
    #[error("the record has changed: it is at version {current}")]
    VersionMismatch {
        /// The current version.
        current: u64,
    },
    /// The id inside a creating command is not the id it was sent to: the
    /// reservations of the aggregate would name one and hold the other.
    #[error("the id in the command does not match the record it was sent to")]
    IdMismatch,
    /// The idempotency key was used before for a different request.
    #[error("this idempotency key was used for a different request")]
    KeyReused,
    /// Other commands kept winning the race for this aggregate.
    #[error("the record is being changed by others; try again")]
    Contended,
    /// The event store could not be reached.
    #[error("the event store is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Anything else: logged, never shown.
    #[error("unexpected event store failure")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl<E: std::error::Error> CommandError<E> {
    pub(super) fn from_failure(failure: StoreFailure) -> Self {
        match failure {
            StoreFailure::Unavailable(e) => CommandError::Unavailable(e),
            StoreFailure::Unexpected(e) => CommandError::Internal(e),
        }
    }

    pub(super) fn from_commit(error: CommitError) -> Self {
        match error {
            CommitError::Conflict => CommandError::Contended,
            // Answered from the stored row by `execute`; reaching here means
            // the row vanished between the two, which cannot happen.
            CommitError::KeyTaken => CommandError::KeyReused,
            CommitError::Reservation(conflict) => CommandError::Reservation(conflict),
            CommitError::Unavailable(e) => CommandError::Unavailable(Box::new(e)),
            other => CommandError::Internal(Box::new(other)),
        }
    }

    /// Maps the domain refusal, keeping every other kind.
    pub fn map_refusal<F: std::error::Error>(self, f: impl FnOnce(E) -> F) -> CommandError<F> {
        match self {
            CommandError::Denied(d) => CommandError::Denied(d),
            CommandError::Refused(e) => CommandError::Refused(f(e)),
            CommandError::Reservation(c) => CommandError::Reservation(c),
            CommandError::VersionMismatch { current } => CommandError::VersionMismatch { current },
            CommandError::IdMismatch => CommandError::IdMismatch,
            CommandError::KeyReused => CommandError::KeyReused,
            CommandError::Contended => CommandError::Contended,
            CommandError::Unavailable(e) => CommandError::Unavailable(e),
            CommandError::Internal(e) => CommandError::Internal(e),
        }
    }
}

/// Why a referral could not be raised: the spell's rule or the referral's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RaiseRefusal {
    /// The spell cannot be referred (unknown, discharged, cancelled).
    #[error(transparent)]
    Spell(SpellError),
    /// The referral itself was refused.
    #[error(transparent)]
    Referral(ReferralError),
}

pub(super) fn failure<E: std::error::Error>(error: cqrs_es::AggregateError<E>) -> CommandError<E> {
    match classify(error) {
        Ok(failure) => CommandError::from_failure(failure),
        Err(refusal) => CommandError::Refused(refusal),
    }
}

pub(super) fn database_failure<E: std::error::Error>(e: sqlx::Error) -> CommandError<E> {
    if crate::store::is_unavailable(&e) {
        CommandError::Unavailable(Box::new(e))
    } else {
        CommandError::Internal(Box::new(e))
    }
}
