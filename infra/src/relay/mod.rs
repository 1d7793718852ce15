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

mod chain;
mod leadership;

pub use chain::{Chain, Published};

use chain::publish;
use leadership::{until_lost, Leadership};

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::watch;

use crate::metrics::RelayMetrics;
use crate::outbox::{self, OutboxRow};
use crate::store::postgres_channel;
use crate::store::{Database, RelaySignals};
use crate::stream::{self, StreamError, Target};

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
