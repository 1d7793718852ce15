//! Who relays: on PostgreSQL a session advisory lock held on a connection
//! of the leader's own, on SQLite a lease in the relay row; a heartbeat
//! task renews it whatever the sink is doing.

use std::time::Duration;

use sqlx::{Connection, PgConnection};
use tokio::sync::watch;

use crate::store::Database;

use super::{Relay, TICK};

/// The advisory lock key of the relay (ASCII "BATONRLY").
const RELAY_LOCK: i64 = 0x4241_544F_4E52_4C59;

/// A heartbeat renewal that takes longer than this counts as failed: the
/// relay stops leading before a follower would unseat it (`LEASE`).
const RENEW_WITHIN: Duration = Duration::from_secs(3);

/// A leader whose heartbeat is older than this may be replaced (a SQLite
/// lease taken over; a PostgreSQL leader's session ended).
const LEASE: Duration = Duration::from_secs(5);

pub(super) enum Leadership {
    Postgres(PgConnection),
    Sqlite,
}

/// A leadership kept alive by its heartbeat task.
pub(super) struct Lease {
    /// Turns true when a renewal failed: stop relaying.
    pub(super) lost: watch::Receiver<bool>,
    /// Ends the heartbeat task (and with it the leadership's connection).
    pub(super) stop: watch::Sender<bool>,
    pub(super) task: tokio::task::JoinHandle<()>,
}

impl Relay {
    pub(super) async fn lead(&self, shutdown: &mut watch::Receiver<bool>) -> Option<Leadership> {
        loop {
            if *shutdown.borrow() || shutdown.has_changed().is_err() {
                return None;
            }
            match self.try_lead().await {
                Ok(Some(leadership)) => return Some(leadership),
                Ok(None) => {}
                Err(error) => tracing::warn!(%error, "outbox relay cannot reach the database"),
            }
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    pub(super) async fn try_lead(&self) -> Result<Option<Leadership>, sqlx::Error> {
        match &self.db {
            Database::Postgres(pool) => {
                let mut conn = PgConnection::connect_with(&pool.connect_options()).await?;
                let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                    .bind(RELAY_LOCK)
                    .fetch_one(&mut conn)
                    .await?;
                if !got {
                    self.unseat_silent_leader(&mut conn).await?;
                    return Ok(None);
                }
                sqlx::query(
                    "UPDATE outbox_relay SET owner = $1, owner_since = now(), \
                     heartbeat_at = now() WHERE id = 1",
                )
                .bind(&self.owner)
                .execute(&mut conn)
                .await?;
                Ok(Some(Leadership::Postgres(conn)))
            }
            Database::Sqlite(pool) => {
                let now = chrono::Utc::now();
                let stale = now - chrono::Duration::from_std(LEASE).unwrap_or_default();
                let taken = sqlx::query(
                    "UPDATE outbox_relay SET owner = ?1, owner_since = ?2, heartbeat_at = ?2 \
                     WHERE id = 1 AND (owner IS NULL OR owner = ?1 OR heartbeat_at < ?3)",
                )
                .bind(&self.owner)
                .bind(now.to_rfc3339())
                .bind(stale.to_rfc3339())
                .execute(pool)
                .await?;
                Ok((taken.rows_affected() == 1).then_some(Leadership::Sqlite))
            }
        }
    }

    /// A leader whose host or network died leaves its session, and so its
    /// lock, open until PostgreSQL notices, which can take as long as TCP
    /// keepalive (hours). A leader renews its heartbeat every second; when it
    /// has not for `LEASE`, a follower ends the leader's backend, releasing
    /// the lock for the next attempt.
    pub(super) async fn unseat_silent_leader(
        &self,
        conn: &mut PgConnection,
    ) -> Result<(), sqlx::Error> {
        let stale = i64::try_from(LEASE.as_secs()).unwrap_or(5);
        let ended: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(l.pid) FROM pg_locks l, outbox_relay r \
             WHERE l.locktype = 'advisory' AND l.granted \
             AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
             AND ((l.classid::bigint << 32) | l.objid::bigint) = $1 \
             AND r.id = 1 AND r.heartbeat_at < now() - make_interval(secs => $2)",
        )
        .bind(RELAY_LOCK)
        .bind(stale as f64)
        .fetch_all(conn)
        .await?;
        if ended.iter().any(|ended| *ended) {
            tracing::warn!(
                "ended the session of a relay leader that stopped renewing its heartbeat"
            );
        }
        Ok(())
    }

    /// Confirms leadership and records a heartbeat.
    pub(super) async fn still_leading(&self, leadership: &mut Leadership) -> bool {
        let result = match (leadership, &self.db) {
            (Leadership::Postgres(conn), _) => sqlx::query(
                "UPDATE outbox_relay SET heartbeat_at = now() WHERE id = 1 AND owner = $1",
            )
            .bind(&self.owner)
            .execute(conn)
            .await
            .map(|r| r.rows_affected() == 1),
            (Leadership::Sqlite, Database::Sqlite(pool)) => {
                sqlx::query("UPDATE outbox_relay SET heartbeat_at = ? WHERE id = 1 AND owner = ?")
                    .bind(chrono::Utc::now().to_rfc3339())
                    .bind(&self.owner)
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected() == 1)
            }
            (Leadership::Sqlite, Database::Postgres(_)) => Ok(false),
        };
        result.unwrap_or(false)
    }

    pub(super) async fn resign(&self) {
        let result = match &self.db {
            Database::Postgres(pool) => {
                sqlx::query("UPDATE outbox_relay SET owner = NULL WHERE id = 1 AND owner = $1")
                    .bind(&self.owner)
                    .execute(pool)
                    .await
                    .map(|_| ())
            }
            Database::Sqlite(pool) => {
                sqlx::query("UPDATE outbox_relay SET owner = NULL WHERE id = 1 AND owner = ?")
                    .bind(&self.owner)
                    .execute(pool)
                    .await
                    .map(|_| ())
            }
        };
        if let Err(error) = result {
            tracing::debug!(%error, "could not clear the relay owner");
        }
    }

    /// Renews `leadership`'s heartbeat every `TICK` on a task of its own,
    /// until `stop` or until a renewal fails or takes longer than
    /// `RENEW_WITHIN`, when it reports the loss. The relay's passes can wait
    /// seconds on JetStream (a publish waits for its acknowledgement); with
    /// the heartbeat on the same task, a leader that was alive but could
    /// not reach NATS let its lease lapse and was unseated every few
    /// seconds. Dropping the leadership at the end closes its connection,
    /// which releases the advisory lock.
    pub(super) fn keep_leading(&self, mut leadership: Leadership) -> Lease {
        let (lost_tx, lost) = watch::channel(false);
        let (stop, mut stopped) = watch::channel(false);
        let relay = self.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(TICK) => {}
                    _ = stopped.changed() => return,
                }
                let renewed =
                    tokio::time::timeout(RENEW_WITHIN, relay.still_leading(&mut leadership))
                        .await
                        .unwrap_or(false);
                if !renewed {
                    let _ = lost_tx.send(true);
                    return;
                }
            }
        });
        Lease { lost, stop, task }
    }
}

/// Returns once `lost` turns true, or its sender (the heartbeat task) is
/// gone: its connection, and with it the lock, went with it.
pub(super) async fn until_lost(lost: &mut watch::Receiver<bool>) {
    let _ = lost.wait_for(|lost| *lost).await;
}
