//! One commit on SQLite: events, reservations and outbox rows in a single
//! transaction. SQLite admits one writer at a time, so commits are already
//! serial and outbox positions follow commit order.

use cqrs_es::persist::SerializedEvent;
use domain::reservation::{in_applying_order, ReservationChange, ReservationConflict};
use sqlx::{Sqlite, SqlitePool, Transaction};

use super::errors::CommitError;
use super::postgres::sequence;

pub(super) async fn commit(
    pool: &SqlitePool,
    events: &[SerializedEvent],
    changes: &[ReservationChange],
) -> Result<(), CommitError> {
    let now = chrono::Utc::now().to_rfc3339();
    let mut tx = super::begin_sqlite_write(pool).await?;
    // Same order as on PostgreSQL: idempotency key, reservations, then
    // events and outbox.
    if let Some((key, last)) = crate::idempotency::of_commit(events)? {
        let (kind, id) = (&last.aggregate_type, &last.aggregate_id);
        if !crate::idempotency::insert(&mut *tx, &key, kind, id, sequence(last)?).await? {
            return Err(CommitError::KeyTaken);
        }
    }
    apply_reservations(&mut tx, changes, &now).await?;
    for event in events {
        let payload = serde_json::to_string(&event.payload)?;
        let metadata = serde_json::to_string(&event.metadata)?;
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
             event_version, payload, metadata) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&event.aggregate_type)
        .bind(&event.aggregate_id)
        .bind(sequence(event)?)
        .bind(&event.event_type)
        .bind(&event.event_version)
        .bind(&payload)
        .bind(&metadata)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO outbox (aggregate_type, aggregate_id, sequence, committed_at) \
             VALUES (?, ?, ?, ?)",
        )
        .bind(&event.aggregate_type)
        .bind(&event.aggregate_id)
        .bind(sequence(event)?)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
    }
    Ok(tx.commit().await?)
}

fn refused(conflict: ReservationConflict) -> CommitError {
    CommitError::Reservation(conflict)
}

async fn apply_reservations(
    tx: &mut Transaction<'_, Sqlite>,
    changes: &[ReservationChange],
    now: &str,
) -> Result<(), CommitError> {
    for change in in_applying_order(changes) {
        match change {
            ReservationChange::Claim { key, holder } => {
                let taken: Option<i32> = sqlx::query_scalar(
                    "INSERT INTO reservations (key, holder, since) VALUES (?, ?, ?) \
                     ON CONFLICT (key) DO UPDATE SET holder = excluded.holder \
                     WHERE reservations.holder = excluded.holder RETURNING 1",
                )
                .bind(key.storage_key())
                .bind(holder)
                .bind(now)
                .fetch_optional(&mut **tx)
                .await?;
                if taken.is_none() {
                    return Err(refused(key.conflict()));
                }
            }
            ReservationChange::Release { key, holder } => {
                sqlx::query("DELETE FROM reservations WHERE key = ? AND holder = ?")
                    .bind(key.storage_key())
                    .bind(holder)
                    .execute(&mut **tx)
                    .await?;
            }
            ReservationChange::ReleaseAll { holder } => {
                sqlx::query("DELETE FROM reservations WHERE holder = ?")
                    .bind(holder)
                    .execute(&mut **tx)
                    .await?;
            }
            ReservationChange::Require { key } => {
                let held: Option<i32> =
                    sqlx::query_scalar("SELECT 1 FROM reservations WHERE key = ?")
                        .bind(key.storage_key())
                        .fetch_optional(&mut **tx)
                        .await?;
                if held.is_none() {
                    return Err(refused(key.conflict()));
                }
            }
            ReservationChange::RequireNone { family } => {
                if super::family_held(&mut **tx, family.storage_prefix()).await? {
                    return Err(refused(family.conflict()));
                }
            }
        }
    }
    Ok(())
}
