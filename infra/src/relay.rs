//! The outbox relay: hands committed events to the sink (JetStream, or the
//! local event log) in order, removing each outbox row only once the sink
//! has acknowledged it. A crash at any point loses nothing: unacknowledged
//! rows are still in the outbox and are sent again, and JetStream drops the
//! re-publish by its message id.
//!
//! Exactly one process relays at a time. On PostgreSQL the leader holds a
//! session advisory lock on a connection of its own: if the process dies,
//! PostgreSQL ends the session and the lock with it, and another process
//! takes over at its next try (every second). On SQLite a lease in the
//! relay row serves, renewed every pass and taken over when stale.
//!
//! A commit wakes the relay at once: an in-process signal when the relay of
//! the committing process leads, else a NOTIFY sent after the commit (never
//! inside it: see `store::postgres`); a one-second poll is only the fallback.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use sqlx::postgres::PgListener;
use sqlx::{Connection, PgConnection};
use tokio::sync::watch;

use crate::metrics::RelayMetrics;
use crate::outbox::{self, OutboxRow};
use crate::store::postgres_channel;
use crate::store::{Database, RelaySignals};
use crate::stream::{self, StreamError, StreamSettings, Target};

/// The advisory lock key of the relay (ASCII "BATONRLY").
const RELAY_LOCK: i64 = 0x4241_544F_4E52_4C59;
/// Rows per pass.
pub const BATCH: i64 = 512;
/// Fallback poll, and the pace of leadership attempts and heartbeats.
const TICK: Duration = Duration::from_secs(1);
/// A leader whose heartbeat is older than this may be replaced (a SQLite
/// lease taken over; a PostgreSQL leader's session ended).
const LEASE: Duration = Duration::from_secs(5);

/// Where relayed events go.
#[derive(Debug, Clone)]
pub enum Sink {
    /// NATS JetStream (`BATON_NATS_URL` set).
    JetStream(Arc<Target>),
    /// The local event log in the same database.
    Log,
}

/// Why a relay pass failed (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The database failed.
    #[error("outbox database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The stream could not be set up.
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// JetStream did not acknowledge a message.
    #[error("publish failed: {0}")]
    Publish(String),
}

enum Leadership {
    Postgres(PgConnection),
    Sqlite,
}

/// The relay of one process.
#[derive(Debug, Clone)]
pub struct Relay {
    db: Database,
    sink: Sink,
    signals: RelaySignals,
    owner: String,
    metrics: Arc<RelayMetrics>,
    appended: Option<Arc<watch::Sender<u64>>>,
}

impl Relay {
    /// A relay of `db`'s outbox to `sink`, woken by `signals` after commits
    /// in this process (`BatonRepository::relay_signals`).
    pub fn new(
        db: Database,
        sink: Sink,
        signals: RelaySignals,
        metrics: Arc<RelayMetrics>,
    ) -> Self {
        let owner = format!(
            "{}:{}:{}",
            std::env::var("HOSTNAME").unwrap_or_else(|_| "baton".to_owned()),
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        Self {
            db,
            sink,
            signals,
            owner,
            metrics,
            appended: None,
        }
    }

    /// Signals `appended` after each append to the local log, so feeds in
    /// this process wake at once.
    pub fn signalling(mut self, appended: Arc<watch::Sender<u64>>) -> Self {
        self.appended = Some(appended);
        self
    }

    /// This relay's owner name, as `baton outbox status` shows it.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Relays until `shutdown` turns true, leading whenever it can.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            let Some(leadership) = self.lead(&mut shutdown).await else {
                return;
            };
            tracing::info!(owner = %self.owner, "outbox relay is leading");
            self.metrics.leader.store(1, Ordering::Relaxed);
            self.signals.leading.store(true, Ordering::Relaxed);
            let stopped = self.relay_while_leading(leadership, &mut shutdown).await;
            self.signals.leading.store(false, Ordering::Relaxed);
            self.metrics.leader.store(0, Ordering::Relaxed);
            self.resign().await;
            if stopped {
                tracing::info!(owner = %self.owner, "outbox relay stopped");
                return;
            }
            tracing::warn!(owner = %self.owner, "outbox relay lost its leadership");
        }
    }

    async fn lead(&self, shutdown: &mut watch::Receiver<bool>) -> Option<Leadership> {
        loop {
            if *shutdown.borrow() {
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

    async fn try_lead(&self) -> Result<Option<Leadership>, sqlx::Error> {
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
    async fn unseat_silent_leader(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
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
    async fn still_leading(&self, leadership: &mut Leadership) -> bool {
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

    async fn resign(&self) {
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

    /// Relays until leadership is lost (false) or shutdown (true).
    async fn relay_while_leading(
        &self,
        mut leadership: Leadership,
        shutdown: &mut watch::Receiver<bool>,
    ) -> bool {
        let mut listener = match &self.db {
            Database::Postgres(pool) => match PgListener::connect_with(pool).await {
                Ok(mut listener) => match listener.listen(postgres_channel()).await {
                    Ok(()) => Some(listener),
                    Err(error) => {
                        tracing::warn!(%error, "cannot LISTEN; polling instead");
                        None
                    }
                },
                Err(error) => {
                    tracing::warn!(%error, "cannot LISTEN; polling instead");
                    None
                }
            },
            Database::Sqlite(_) => None,
        };
        // Create or verify the stream now, not at the first event, so that
        // feeds can subscribe to it at once; a failure is retried per pass.
        let mut stream_ready = false;
        if let Sink::JetStream(target) = &self.sink {
            match stream::ensure_stream(&target.context, &target.settings).await {
                Ok(_) => stream_ready = true,
                Err(error) => tracing::warn!(%error, "cannot set up the stream yet; retrying"),
            }
        }
        let mut failures: u32 = 0;
        let mut last_beat = tokio::time::Instant::now();
        loop {
            if *shutdown.borrow() {
                return true;
            }
            // Drain everything that is ready, renewing leadership as it goes
            // so a long drain never lets a lease lapse.
            loop {
                match self.pass(&mut stream_ready).await {
                    Ok(n) if n >= BATCH as usize => {
                        if last_beat.elapsed() >= TICK {
                            if !self.still_leading(&mut leadership).await {
                                return false;
                            }
                            last_beat = tokio::time::Instant::now();
                        }
                        continue;
                    }
                    Ok(_) => {
                        failures = 0;
                        break;
                    }
                    Err(error) => {
                        failures = failures.saturating_add(1);
                        self.metrics.errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(%error, failures, "outbox relay pass failed; retrying");
                        break;
                    }
                }
            }
            if last_beat.elapsed() >= TICK || failures > 0 {
                if !self.still_leading(&mut leadership).await {
                    return false;
                }
                self.count_depth().await;
                last_beat = tokio::time::Instant::now();
            }
            let pause = if failures > 0 {
                Duration::from_millis(100 * u64::from(failures.min(20)))
            } else {
                TICK
            };
            tokio::select! {
                notification = async {
                    match listener.as_mut() {
                        Some(l) => l.recv().await.map(|_| ()),
                        None => std::future::pending().await,
                    }
                }, if failures == 0 => {
                    if let Err(error) = notification {
                        tracing::warn!(%error, "LISTEN connection failed; polling instead");
                        listener = None;
                    }
                }
                _ = self.signals.committed.notified(), if failures == 0 => {}
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    async fn count_depth(&self) {
        if let Ok(status) = outbox::status(&self.db).await {
            self.metrics
                .outbox_depth
                .store(status.depth, Ordering::Relaxed);
        }
    }

    /// One pass: the oldest ready rows to the sink. Returns how many.
    async fn pass(&self, stream_ready: &mut bool) -> Result<usize, RelayError> {
        let rows = outbox::ready(&self.db, BATCH).await?;
        if rows.is_empty() {
            return Ok(0);
        }
        match &self.sink {
            Sink::Log => {
                outbox::move_to_log(&self.db, &rows).await?;
                self.record(&rows, 0);
                if let Some(appended) = &self.appended {
                    appended.send_modify(|n| *n = n.wrapping_add(1));
                }
                Ok(rows.len())
            }
            Sink::JetStream(target) => {
                let Target { context, settings } = target.as_ref();
                if !*stream_ready {
                    stream::ensure_stream(context, settings).await?;
                    *stream_ready = true;
                }
                let (acked, duplicates, failure) = publish(context, settings, &rows).await;
                outbox::acknowledge(&self.db, &rows[..acked]).await?;
                self.record(&rows[..acked], duplicates);
                match failure {
                    Some(reason) => Err(RelayError::Publish(reason)),
                    None => Ok(acked),
                }
            }
        }
    }

    fn record(&self, rows: &[OutboxRow], duplicates: u64) {
        let now = chrono::Utc::now();
        for row in rows {
            let latency = (now - row.committed_at).to_std().unwrap_or_default();
            self.metrics.commit_to_publish.observe(latency);
        }
        self.metrics
            .published
            .fetch_add(rows.len() as u64, Ordering::Relaxed);
        self.metrics
            .duplicates
            .fetch_add(duplicates, Ordering::Relaxed);
    }
}

/// Publishes rows in order, many in flight, and returns how many leading
/// rows were acknowledged, how many of those were duplicates, and the first
/// failure. Rows go out in waves in which no aggregate appears twice, and a
/// wave's acknowledgements are awaited before the next wave is sent: if a
/// connection breaks mid-wave and later messages of the wave are stored
/// while an earlier one is lost, none of them belongs to the same aggregate,
/// so re-sending the lost one cannot put an aggregate's events out of order.
/// Rows after a failure are sent again on the next pass; JetStream drops any
/// it already has.
async fn publish(
    context: &jetstream::Context,
    settings: &StreamSettings,
    rows: &[OutboxRow],
) -> (usize, u64, Option<String>) {
    let mut acked = 0;
    let mut duplicates = 0;
    let mut start = 0;
    while start < rows.len() {
        let mut in_wave = std::collections::HashSet::new();
        let end = rows[start..]
            .iter()
            .position(|r| !in_wave.insert((&r.aggregate_type, &r.aggregate_id)))
            .map_or(rows.len(), |n| start + n);
        let mut pending = Vec::with_capacity(end - start);
        let mut failure = None;
        for row in &rows[start..end] {
            let subject = stream::subject(
                &settings.subject_prefix,
                &row.aggregate_type,
                &row.aggregate_id,
            );
            let payload = match serde_json::to_vec(&row.payload) {
                Ok(bytes) => bytes,
                Err(error) => {
                    failure = Some(error.to_string());
                    break;
                }
            };
            let message = jetstream::message::PublishMessage::build()
                .payload(payload.into())
                .headers(stream::message_headers(row));
            match context.send_publish(subject, message).await {
                Ok(ack) => pending.push(ack),
                Err(error) => {
                    failure = Some(error.to_string());
                    break;
                }
            }
        }
        for ack in pending {
            match ack.await {
                Ok(ack) => {
                    acked += 1;
                    duplicates += u64::from(ack.duplicate);
                }
                Err(error) => {
                    failure.get_or_insert(error.to_string());
                    break;
                }
            }
        }
        if failure.is_some() {
            return (acked, duplicates, failure);
        }
        start = end;
    }
    (acked, duplicates, None)
}
