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
//! relay row serves, taken over when stale. Either way a heartbeat task of
//! its own renews leadership every second, whatever the sink is doing, so
//! a leader that cannot reach NATS keeps its lease.
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
/// A relay woken within this long of its last pass is busy: it lingers.
const BUSY: Duration = Duration::from_millis(5);
/// How long a busy relay waits for more rows before a pass.
const LINGER: Duration = Duration::from_millis(1);
/// A relay lingers after a pass that found at least this many rows, if it
/// is woken again within `BUSY`. Even one writer commits faster than a pass
/// per commit can keep up with cheaply: without lingering after single-row
/// passes, one writer ran 11-15% slower than bare postgres-es; with it,
/// +5% and +2% in two one-writer runs of `bench-pipeline` and -7% in the
/// full run in docs/benchmarks.md (Baton's CPU per command fell from about
/// 1,400 µs to about 1,100 µs), at the price of a millisecond or
/// two of commit-to-stream latency (p50 about 2 ms to about 3.5 ms at a
/// paced 1,000 commands/s).
const LINGER_AFTER: usize = 1;
/// Rows the sink has acknowledged are removed from the outbox by the next
/// pass's read (`outbox::POSTGRES_READY`); when no commit wakes the relay
/// sooner, a pass runs after this long to remove them.
const REMOVE_WITHIN: Duration = Duration::from_millis(20);
/// A heartbeat renewal that takes longer than this counts as failed: the
/// relay stops leading before a follower would unseat it (`LEASE`).
const RENEW_WITHIN: Duration = Duration::from_secs(3);
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

/// A leadership kept alive by its heartbeat task.
struct Lease {
    /// Turns true when a renewal failed: stop relaying.
    lost: watch::Receiver<bool>,
    /// Ends the heartbeat task (and with it the leadership's connection).
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
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

    /// Renews `leadership`'s heartbeat every `TICK` on a task of its own,
    /// until `stop` or until a renewal fails or takes longer than
    /// `RENEW_WITHIN`, when it reports the loss. The relay's passes can wait
    /// seconds on JetStream (a publish waits for its acknowledgement); with
    /// the heartbeat on the same task, a leader that was alive but could
    /// not reach NATS let its lease lapse and was unseated every few
    /// seconds. Dropping the leadership at the end closes its connection,
    /// which releases the advisory lock.
    fn keep_leading(&self, mut leadership: Leadership) -> Lease {
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

    /// Relays until leadership is lost (false) or shutdown (true).
    async fn relay_while_leading(
        &self,
        leadership: Leadership,
        shutdown: &mut watch::Receiver<bool>,
    ) -> bool {
        let mut lease = self.keep_leading(leadership);
        let stopped = self.relay_under(&mut lease.lost, shutdown).await;
        let _ = lease.stop.send(true);
        if let Err(error) = lease.task.await {
            tracing::warn!(%error, "the relay's heartbeat task ended abnormally");
        }
        stopped
    }

    /// The relay's loop while `lost` stays false.
    async fn relay_under(
        &self,
        lost: &mut watch::Receiver<bool>,
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
        // Each leadership starts unsure of the stream's end.
        let mut chain = Chain::default();
        // Acknowledged by the sink, still in the outbox until the next pass.
        let mut relayed = Vec::new();
        // The outbox is vacuumed once a second while rows flow, one vacuum
        // at a time, off the relay's path (see `outbox::vacuum`).
        let vacuuming = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut published_at_vacuum = self.metrics.published.load(Ordering::Relaxed);
        let mut failures: u32 = 0;
        let mut last_pass = tokio::time::Instant::now() - BUSY;
        let mut last_rows = 0usize;
        let mut last_beat = tokio::time::Instant::now();
        loop {
            // A sender gone counts as its signal: a dropped pipeline is a
            // shutdown, and a heartbeat task that ended without a word (it
            // panicked, and its connection, with the lock, is gone) is a
            // lost leadership. Either way, waiting on it would spin.
            if *shutdown.borrow() || shutdown.has_changed().is_err() {
                self.remove(&relayed).await;
                return true;
            }
            if *lost.borrow() || lost.has_changed().is_err() {
                self.remove(&relayed).await;
                return false;
            }
            // Under a steady stream of commits (the last pass was moments ago
            // and found rows), wait a moment for more
            // before a pass, so each pass carries several rows instead of one:
            // a pass costs the database as much as a small command. Otherwise
            // go at once, so latency stays low.
            if last_rows >= LINGER_AFTER && last_pass.elapsed() < BUSY {
                tokio::time::sleep(LINGER).await;
            }
            // Drain everything that is ready. A pass stuck on JetStream is
            // abandoned when leadership is lost: its rows stay in the outbox
            // and the next leader sends them (JetStream drops copies).
            loop {
                let pass = tokio::select! {
                    pass = self.pass(&mut stream_ready, &mut chain, &mut relayed) => Some(pass),
                    () = until_lost(lost) => None,
                };
                let Some(pass) = pass else {
                    self.remove(&relayed).await;
                    return false;
                };
                match pass {
                    Ok(n) if n >= BATCH as usize => continue,
                    Ok(n) => {
                        failures = 0;
                        last_pass = tokio::time::Instant::now();
                        last_rows = n;
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
            if last_beat.elapsed() >= TICK {
                self.count_depth().await;
                let published = self.metrics.published.load(Ordering::Relaxed);
                if published != published_at_vacuum {
                    published_at_vacuum = published;
                    self.vacuum_in_background(&vacuuming);
                }
                last_beat = tokio::time::Instant::now();
            }
            let pause = if failures > 0 {
                Duration::from_millis(100 * u64::from(failures.min(20)))
            } else if !relayed.is_empty() {
                REMOVE_WITHIN
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
                _ = lost.changed() => {}
            }
        }
    }

    fn vacuum_in_background(&self, vacuuming: &Arc<std::sync::atomic::AtomicBool>) {
        if vacuuming.swap(true, Ordering::AcqRel) {
            return;
        }
        let (db, vacuuming) = (self.db.clone(), vacuuming.clone());
        tokio::spawn(async move {
            if let Err(error) = outbox::vacuum(&db).await {
                tracing::debug!(%error, "could not vacuum the outbox");
            }
            vacuuming.store(false, Ordering::Release);
        });
    }

    async fn count_depth(&self) {
        if let Ok(status) = outbox::status(&self.db).await {
            self.metrics
                .outbox_depth
                .store(status.depth, Ordering::Relaxed);
        }
    }

    /// Removes rows the sink acknowledged, when the relay stops leading
    /// (best effort: rows left behind are relayed again and dropped by
    /// JetStream as copies).
    async fn remove(&self, relayed: &[OutboxRow]) {
        if let Err(error) = outbox::acknowledge(&self.db, relayed).await {
            tracing::debug!(%error, "could not remove relayed outbox rows");
        }
    }

    /// One pass: removes `relayed` from the outbox and sends the oldest
    /// ready rows to the sink, leaving those it acknowledged in `relayed`.
    /// Returns how many rows it sent.
    async fn pass(
        &self,
        stream_ready: &mut bool,
        chain: &mut Chain,
        relayed: &mut Vec<OutboxRow>,
    ) -> Result<usize, RelayError> {
        let rows = outbox::ready(&self.db, BATCH, relayed).await?;
        relayed.clear();
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
                let published = publish(context, settings, &rows, chain).await;
                let acked = published.acked;
                relayed.extend_from_slice(&rows[..acked]);
                self.record(&rows[..acked], published.duplicates);
                match published.failure {
                    Some(reason) => Err(RelayError::Publish(reason)),
                    // A refused chain is re-sent at once: report a full
                    // pass so the drain loop goes round again.
                    None if published.resync => {
                        self.metrics.resyncs.fetch_add(1, Ordering::Relaxed);
                        Ok(rows.len().max(BATCH as usize))
                    }
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

/// Returns once `lost` turns true, or its sender (the heartbeat task) is
/// gone: its connection, and with it the lock, went with it.
async fn until_lost(lost: &mut watch::Receiver<bool>) {
    let _ = lost.wait_for(|lost| *lost).await;
}

/// What the relay knows of the stream's end: the sequence and message id of
/// the last message it stored, when it is sure of them.
///
/// Rows go out pipelined, every message expecting its predecessor with two
/// headers: `Nats-Expected-Last-Sequence` (the sequence the one before it
/// will get) and `Nats-Expected-Last-Msg-Id` (the one before it's id).
/// JetStream then stores a chain or nothing: if message k is lost or refused
/// while k+1 gets through, k+1 (and everything after it) is refused instead
/// of being stored ahead of k. So order holds for every aggregate, and
/// indeed for the whole stream, with no round trip per message. A refused
/// chain is simply sent again from the first row not acknowledged.
///
/// The sequence alone is not enough: if another publisher stores one message
/// just before a chain, message 1 is refused but message 2's expected
/// sequence is then exactly right, and it would be stored ahead of message 1.
/// Message ids are unique, so the id check refuses it; the sequence check
/// keeps the chain safe even on a server that only tracks the last id of
/// messages that carry one.
///
/// After any failure, and when a relay starts leading, the end is unknown
/// (earlier sends may have been stored without their acknowledgements
/// reaching us). Then rows go one at a time, with no expectation, until one
/// is stored afresh: one message in flight cannot overtake another, and
/// JetStream's de-duplication (by `Nats-Msg-Id`, checked before expectations)
/// answers those already stored. The fresh acknowledgement re-anchors the
/// chain. A deposed leader still publishing breaks the chain too, which
/// sends both to this careful mode. There each relay sends a row only once
/// the one before it is stored, so two relays can only interleave copies of
/// the same rows in the same order, and de-duplication drops the copies.
#[derive(Debug, Default, Clone)]
pub struct Chain {
    last: Option<Anchor>,
}

impl Chain {
    /// Whether the chain is anchored (the next rows go pipelined).
    pub fn is_anchored(&self) -> bool {
        self.last.is_some()
    }

    /// Publishes rows in order, pipelined when anchored.
    pub async fn publish(
        &mut self,
        context: &jetstream::Context,
        settings: &StreamSettings,
        rows: &[OutboxRow],
    ) -> Published {
        publish(context, settings, rows, self).await
    }
}

/// The last message the relay itself stored.
#[derive(Debug, Clone)]
struct Anchor {
    sequence: u64,
    message_id: String,
}

#[derive(Debug, Default)]
pub struct Published {
    /// Leading rows acknowledged.
    pub acked: usize,
    /// Of those, how many JetStream already had.
    pub duplicates: u64,
    /// The first failure, if any.
    pub failure: Option<String>,
    /// The chain was refused (not a fault: send again at once).
    pub resync: bool,
}

/// Publishes rows in order; see [`Chain`].
async fn publish(
    context: &jetstream::Context,
    settings: &StreamSettings,
    rows: &[OutboxRow],
    chain: &mut Chain,
) -> Published {
    let mut out = Published::default();
    // Careful mode: one at a time until the chain is anchored.
    while chain.last.is_none() && out.acked < rows.len() {
        let row = &rows[out.acked];
        let ack = match send(context, settings, row, None).await {
            Ok(pending) => pending.await.map_err(|e| e.to_string()),
            Err(error) => Err(error),
        };
        match ack {
            Ok(ack) if is_in_process(&ack) => {
                out.failure = Some(IN_PROCESS.to_owned());
                return out;
            }
            Ok(ack) => {
                out.acked += 1;
                if ack.duplicate {
                    out.duplicates += 1;
                } else {
                    chain.last = Some(Anchor {
                        sequence: ack.sequence,
                        message_id: stream::row_message_id(row),
                    });
                }
            }
            Err(error) => {
                out.failure = Some(error);
                return out;
            }
        }
    }
    let Some(anchor) = chain.last.clone() else {
        return out;
    };
    // Pipelined: everything in flight, each expecting its predecessor.
    let mut pending = Vec::with_capacity(rows.len() - out.acked);
    let mut expected = anchor;
    for row in &rows[out.acked..] {
        let message_id = stream::row_message_id(row);
        match send(context, settings, row, Some(&expected)).await {
            Ok(ack) => pending.push((ack, message_id.clone())),
            Err(error) => {
                out.failure = Some(error);
                break;
            }
        }
        expected = Anchor {
            sequence: expected.sequence + 1,
            message_id,
        };
    }
    for (ack, message_id) in pending {
        match ack.await {
            Ok(ack) if !ack.duplicate => {
                out.acked += 1;
                chain.last = Some(Anchor {
                    sequence: ack.sequence,
                    message_id,
                });
            }
            Ok(ack) if is_in_process(&ack) => {
                chain.last = None;
                out.failure.get_or_insert(IN_PROCESS.to_owned());
                break;
            }
            Ok(_) => {
                // Stored before (by another relay, or by this one when its
                // acknowledgement to the database failed): the chain's
                // arithmetic no longer holds, so the rest will be refused;
                // re-anchor.
                out.acked += 1;
                out.duplicates += 1;
                chain.last = None;
                out.resync = true;
                break;
            }
            Err(error) => {
                chain.last = None;
                use jetstream::context::PublishErrorKind::{WrongLastMessageId, WrongLastSequence};
                if matches!(error.kind(), WrongLastSequence | WrongLastMessageId) {
                    out.resync = true;
                } else {
                    out.failure.get_or_insert(error.to_string());
                }
                break;
            }
        }
    }
    if out.failure.is_some() {
        chain.last = None;
    }
    out
}

const IN_PROCESS: &str =
    "JetStream answered a duplicate with no sequence (a message id still in process); retrying";

/// A "duplicate" with no stream sequence: some nats-server versions answer
/// so for a message id they recorded but did not store (a clustered stream
/// refusing an expectation). Counting it as stored would delete an outbox
/// row whose event never reached the stream, so it is treated as a failure
/// and the row is sent again later.
fn is_in_process(ack: &jetstream::publish::PublishAck) -> bool {
    ack.duplicate && ack.sequence == 0
}

async fn send(
    context: &jetstream::Context,
    settings: &StreamSettings,
    row: &OutboxRow,
    expected_last: Option<&Anchor>,
) -> Result<jetstream::context::PublishAckFuture, String> {
    let subject = stream::subject(
        &settings.subject_prefix,
        &row.aggregate_type,
        &row.aggregate_id,
    );
    let payload = serde_json::to_vec(&row.payload).map_err(|e| e.to_string())?;
    let mut message = jetstream::message::PublishMessage::build()
        .payload(payload.into())
        .headers(stream::message_headers(row));
    if let Some(last) = expected_last {
        message = message
            .expected_last_sequence(last.sequence)
            .expected_last_message_id(&last.message_id);
    }
    context
        .send_publish(subject, message)
        .await
        .map_err(|e| e.to_string())
}
