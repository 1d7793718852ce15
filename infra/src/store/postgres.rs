//! One commit on PostgreSQL: events, reservations and outbox rows, in a
//! single transaction (or, for a one-event command with no reservation
//! change, or only claims, or only releases of a holder's keys, a single
//! statement).

use cqrs_es::persist::SerializedEvent;
use domain::reservation::{
    in_applying_order, ReservationChange, ReservationConflict, ReservationKey,
};
use sqlx::{PgPool, Postgres, Transaction};

use super::errors::CommitError;

/// The channel the relay listens on.
pub const OUTBOX_CHANNEL: &str = "baton_outbox";

/// The event and its outbox row in one statement: the outbox row takes its
/// position only once the event's row is in (after any wait on the
/// event's key), so the order argument of `outbox` holds.
const INSERT_EVENT: &str =
    "WITH e AS (INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
     event_version, payload, metadata) VALUES ($1, $2, $3, $4, $5, $6, $7) \
     RETURNING aggregate_type, aggregate_id, sequence) \
     INSERT INTO outbox (aggregate_type, aggregate_id, sequence) SELECT * FROM e";

/// The event and its outbox row after releasing every key of `$8`'s
/// holders. The event's row reads the releases' count, so it goes in only
/// once they are done (after any wait on a key another commit reads): its
/// outbox position comes after that commit, as in a transaction.
const RELEASE_ALL_AND_INSERT: &str =
    "WITH r AS (DELETE FROM reservations WHERE holder = ANY($8) RETURNING 1), \
     e AS (INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
     event_version, payload, metadata) SELECT $1, $2, $3, $4, $5, $6, $7 \
     FROM (SELECT count(*) FROM r) AS released \
     RETURNING aggregate_type, aggregate_id, sequence) \
     INSERT INTO outbox (aggregate_type, aggregate_id, sequence) SELECT * FROM e";

/// The claims of `$8` (keys, sorted) by `$9` (holders), then the event and
/// its outbox row. `baton_all_claimed` raises `BT001` unless every claim
/// was taken, which undoes the statement (migration 0007).
const CLAIM_AND_INSERT: &str = "WITH c AS (INSERT INTO reservations (key, holder) \
     SELECT * FROM unnest($8::text[], $9::text[]) \
     ON CONFLICT (key) DO UPDATE SET holder = EXCLUDED.holder \
     WHERE reservations.holder = EXCLUDED.holder RETURNING key), \
     ok AS (SELECT baton_all_claimed(count(*), cardinality($8::text[])) AS ok FROM c), \
     e AS (INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
     event_version, payload, metadata) SELECT $1, $2, $3, $4, $5, $6, $7 FROM ok WHERE ok.ok \
     RETURNING aggregate_type, aggregate_id, sequence) \
     INSERT INTO outbox (aggregate_type, aggregate_id, sequence) SELECT * FROM e";

/// What `baton_all_claimed` raises.
const CLAIM_REFUSED: &str = "BT001";

/// A commit of one event with no idempotency key that one statement can
/// carry: PostgreSQL runs a statement atomically on its own, so it needs no
/// BEGIN and COMMIT round trips (measured with `bench-pipeline` and
/// `bench-http`: they were most of what Baton's commit cost beyond the bare
/// framework's).
enum OneStatement {
    /// No reservation changes (most commands).
    Plain,
    /// Releases of everything some holders have (a discharge).
    ReleaseAll(Vec<String>),
    /// Claims of distinct keys, sorted (an admission).
    Claims(Vec<String>, Vec<String>),
}

impl OneStatement {
    fn of(changes: &[ReservationChange]) -> Option<Self> {
        if changes.is_empty() {
            return Some(Self::Plain);
        }
        let holders: Option<Vec<String>> = changes
            .iter()
            .map(|change| match change {
                ReservationChange::ReleaseAll { holder } => Some(holder.clone()),
                _ => None,
            })
            .collect();
        if let Some(holders) = holders {
            return Some(Self::ReleaseAll(holders));
        }
        let mut claims: Vec<(String, String)> = changes
            .iter()
            .map(|change| match change {
                ReservationChange::Claim { key, holder } => {
                    Some((key.storage_key(), holder.clone()))
                }
                _ => None,
            })
            .collect::<Option<_>>()?;
        // Sorted, so two commits claiming the same keys lock them in the
        // same order and cannot deadlock on each other.
        claims.sort();
        if claims.windows(2).any(|pair| pair[0].0 == pair[1].0) {
            return None;
        }
        Some(Self::Claims(
            claims.iter().map(|(key, _)| key.clone()).collect(),
            claims.into_iter().map(|(_, holder)| holder).collect(),
        ))
    }
}

pub(super) async fn commit(
    pool: &PgPool,
    events: &[SerializedEvent],
    changes: &[ReservationChange],
) -> Result<(), CommitError> {
    if let [event] = events {
        if crate::idempotency::of_commit(events)?.is_none() {
            match OneStatement::of(changes) {
                Some(OneStatement::Plain) => {
                    insert_event(pool, event).await?;
                    return Ok(());
                }
                Some(OneStatement::ReleaseAll(holders)) => {
                    bind_event(sqlx::query(RELEASE_ALL_AND_INSERT), event)?
                        .bind(holders)
                        .execute(pool)
                        .await?;
                    return Ok(());
                }
                Some(OneStatement::Claims(keys, holders)) => {
                    let claimed = bind_event(sqlx::query(CLAIM_AND_INSERT), event)?
                        .bind(keys)
                        .bind(holders)
                        .execute(pool)
                        .await;
                    match claimed {
                        Ok(_) => return Ok(()),
                        // A key is taken: the transaction below says which
                        // (or commits, if it was released meanwhile).
                        Err(sqlx::Error::Database(db))
                            if db.code().as_deref() == Some(CLAIM_REFUSED) => {}
                        Err(error) => return Err(error.into()),
                    }
                }
                None => {}
            }
        }
    }
    let mut tx = pool.begin().await?;
    // The idempotency key before anything else: a retry of a command that
    // created something must find the first answer, not trip over the
    // reservations the first attempt took.
    if let Some((key, last)) = crate::idempotency::of_commit(events)? {
        let (kind, id) = (&last.aggregate_type, &last.aggregate_id);
        if !crate::idempotency::insert(&mut *tx, &key, kind, id, sequence(last)?).await? {
            return Err(CommitError::KeyTaken);
        }
    }
    // Reservations first: a commit that must wait for another's key takes
    // its outbox position only after that one commits, so the stream shows
    // a referral raised before the discharge that it raced, never after.
    apply_reservations(&mut tx, changes).await?;
    for event in events {
        insert_event(&mut *tx, event).await?;
    }
    // No NOTIFY here: PostgreSQL serialises the commits of notifying
    // transactions on one lock held through the WAL flush, which defeats
    // group commit (measured: less than half the throughput at 32 clients).
    // The relay is woken after the commit instead; see `wake_relay`.
    Ok(tx.commit().await?)
}

async fn insert_event<'c>(
    executor: impl sqlx::PgExecutor<'c>,
    event: &SerializedEvent,
) -> Result<(), CommitError> {
    bind_event(sqlx::query(INSERT_EVENT), event)?
        .execute(executor)
        .await?;
    Ok(())
}

/// Binds an event's columns as `$1` to `$7`, in the order of `INSERT_EVENT`.
fn bind_event<'q>(
    query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    event: &'q SerializedEvent,
) -> Result<sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>, CommitError> {
    Ok(query
        .bind(&event.aggregate_type)
        .bind(&event.aggregate_id)
        .bind(sequence(event)?)
        .bind(&event.event_type)
        .bind(&event.event_version)
        .bind(&event.payload)
        .bind(&event.metadata))
}

/// Wakes a relay leading in another process, after a commit. A NOTIFY in a
/// transaction of its own writes no WAL, so its lock is held only briefly.
pub(super) async fn wake_relay(pool: &PgPool) {
    if let Err(error) = sqlx::query("SELECT pg_notify($1, '')")
        .bind(OUTBOX_CHANNEL)
        .execute(pool)
        .await
    {
        // The relay's one-second poll picks the rows up anyway.
        tracing::debug!(%error, "could not notify the relay");
    }
}

pub(super) fn sequence(event: &SerializedEvent) -> Result<i64, CommitError> {
    i64::try_from(event.sequence).map_err(|_| CommitError::Sequence(event.sequence))
}

fn refused(conflict: ReservationConflict) -> CommitError {
    CommitError::Reservation(conflict)
}

/// Applies reservation changes. A claim on a key another holder has, or a
/// requirement nobody meets, aborts the transaction. Row locks make
/// concurrent claims on one key wait for each other, so exactly one wins.
///
/// A commit's changes touch distinct keys (a transfer releases one bed and
/// claims another), so their order does not matter and they are applied set
/// by set: all releases, then all claims, then all requirements, one round
/// trip each. Should a commit ever name one key twice, they are applied one
/// by one in order instead.
async fn apply_reservations(
    tx: &mut Transaction<'_, Postgres>,
    changes: &[ReservationChange],
) -> Result<(), CommitError> {
    let mut keys = std::collections::HashSet::new();
    let distinct = changes.iter().all(|change| match change {
        ReservationChange::Claim { key, .. }
        | ReservationChange::Release { key, .. }
        | ReservationChange::Require { key } => keys.insert(key.clone()),
        ReservationChange::ReleaseAll { .. } | ReservationChange::RequireNone { .. } => true,
    });
    if !distinct {
        for change in in_applying_order(changes) {
            apply_sets(tx, std::slice::from_ref(change)).await?;
        }
        return Ok(());
    }
    apply_sets(tx, changes).await
}

async fn apply_sets(
    tx: &mut Transaction<'_, Postgres>,
    changes: &[ReservationChange],
) -> Result<(), CommitError> {
    let mut release_all = Vec::new();
    let (mut release_keys, mut release_holders) = (Vec::new(), Vec::new());
    let mut claims: Vec<(&ReservationKey, &String)> = Vec::new();
    let mut requires = Vec::new();
    let mut vacant = Vec::new();
    for change in changes {
        match change {
            ReservationChange::ReleaseAll { holder } => release_all.push(holder.clone()),
            ReservationChange::Release { key, holder } => {
                release_keys.push(key.storage_key());
                release_holders.push(holder.clone());
            }
            ReservationChange::Claim { key, holder } => claims.push((key, holder)),
            ReservationChange::Require { key } => requires.push(key),
            ReservationChange::RequireNone { family } => vacant.push(family),
        }
    }
    if !release_all.is_empty() {
        sqlx::query("DELETE FROM reservations WHERE holder = ANY($1)")
            .bind(&release_all)
            .execute(&mut **tx)
            .await?;
    }
    if !release_keys.is_empty() {
        sqlx::query(
            "DELETE FROM reservations r USING unnest($1::text[], $2::text[]) AS x(key, holder) \
             WHERE r.key = x.key AND r.holder = x.holder",
        )
        .bind(&release_keys)
        .bind(&release_holders)
        .execute(&mut **tx)
        .await?;
    }
    if !claims.is_empty() {
        // Sorted, so two commits claiming the same keys lock them in the same
        // order and cannot deadlock on each other.
        claims.sort_by_key(|(key, _)| key.storage_key());
        let keys: Vec<String> = claims.iter().map(|(k, _)| k.storage_key()).collect();
        let holders: Vec<String> = claims.iter().map(|(_, h)| (*h).clone()).collect();
        let taken: Vec<String> = sqlx::query_scalar(
            "INSERT INTO reservations (key, holder) \
             SELECT * FROM unnest($1::text[], $2::text[]) \
             ON CONFLICT (key) DO UPDATE SET holder = EXCLUDED.holder \
             WHERE reservations.holder = EXCLUDED.holder RETURNING key",
        )
        .bind(&keys)
        .bind(&holders)
        .fetch_all(&mut **tx)
        .await?;
        if let Some((key, _)) = claims
            .iter()
            .find(|(k, _)| !taken.contains(&k.storage_key()))
        {
            return Err(refused(key.conflict()));
        }
    }
    if !requires.is_empty() {
        let keys: Vec<String> = requires.iter().map(|k| k.storage_key()).collect();
        // FOR SHARE: a concurrent release waits for this commit, and a
        // release committed first makes the row vanish here.
        let held: Vec<String> =
            sqlx::query_scalar("SELECT key FROM reservations WHERE key = ANY($1) FOR SHARE")
                .bind(&keys)
                .fetch_all(&mut **tx)
                .await?;
        if let Some(key) = requires.iter().find(|k| !held.contains(&k.storage_key())) {
            return Err(refused(key.conflict()));
        }
    }
    // Last, as `in_applying_order` defines: a commit claiming a key of the
    // family that raced a release above has either committed (and is seen
    // here, since each statement reads afresh) or will find the key gone.
    for family in vacant {
        if super::family_held(&mut **tx, family.storage_prefix()).await? {
            return Err(refused(family.conflict()));
        }
    }
    Ok(())
}
