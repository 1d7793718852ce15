//! Feeds the fold from the event feed and serves it.
//!
//! [`Boards`] is the shared read side: the fold with its feed position, a
//! broadcast of which boards each event changed (for live updates), and a
//! progress signal that consistency-token waits watch. [`Runner`] applies the
//! feed to it: events at or below the position are skipped (a redelivery
//! changes nothing), state is checkpointed as a snapshot in the event
//! store's database, and a restart resumes after the snapshot's position
//! instead of replaying all history. Every process runs its own runner, so
//! several Baton processes each serve correct boards from the same stream.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::commands::ConsistencyToken;
use crate::feed::{Feed, FeedError, FeedEvent};
use crate::snapshots::{self, Snapshot};
use crate::store::Database;
use domain::spell::{Placement, SpellEvent};
use domain::values::{HospitalCode, HubCode, TeamCode, WardCode};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch, Notify};

use projections::envelope::{decode, Change, Envelope};
use projections::flow::Flow;
use projections::watchdog::Freshness;

/// Most events the runner applies under one lock.
const READY_CHUNK: usize = 512;
/// A rebuild whose feed delivers nothing for this long fails instead of
/// waiting for ever (the live boards are kept).
const REBUILD_STALL: Duration = Duration::from_secs(30);
/// A subscription the feed has not set up within this long is abandoned
/// and tried again: the runner never waits on one for ever.
const SUBSCRIBE_WITHIN: Duration = Duration::from_secs(10);

/// The feed skipped positions: the boards stop before the gap and the
/// runner subscribes again from their position. Feed positions are dense
/// (a JetStream stream that denies deletes, or the local log), so a gap
/// means the feed lost its place; stepping over it would lose events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the feed jumped from position {after} to {next}")]
pub struct FeedGap {
    /// The boards' position.
    pub after: u64,
    /// The position the feed delivered next.
    pub next: u64,
}

/// A board, as live-update subscribers name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(tag = "board", content = "code", rename_all = "snake_case")]
pub enum BoardKey {
    /// A ward board.
    Ward(WardCode),
    /// A hospital board.
    Hospital(HospitalCode),
    /// A team board.
    Team(TeamCode),
    /// The system board.
    System,
    /// A care transfer hub's board. No change names it: it changes with
    /// the boards of its hospitals, which only reference data knows (a
    /// subscriber maps them, `api::routes::boards`).
    Hub(HubCode),
}

/// Which boards one event changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BoardChange {
    /// The feed position of the event.
    pub position: u64,
    /// The boards it changed.
    pub boards: BTreeSet<BoardKey>,
}

/// The fold and the feed position it includes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Feed position of the last event applied.
    pub position: u64,
    pub flow: Flow,
    /// The fold's shape when this state was built (checkpoints before
    /// versions were recorded read as 1).
    #[serde(default = "first_format")]
    pub format: u32,
}

impl Default for State {
    fn default() -> Self {
        Self {
            position: 0,
            flow: Flow::default(),
            format: STATE_FORMAT,
        }
    }
}

/// The fold's current shape. Bump it when the fold starts keeping something
/// it did not (as referral summaries, at 2): a checkpoint of another format
/// is not restored, and the boards are built from the feed instead, so no
/// board shows a field that only a rebuild would have filled in. At 3 it
/// began keeping users' access.
pub const STATE_FORMAT: u32 = 3;

fn first_format() -> u32 {
    1
}

/// Why a rebuild failed.
#[derive(Debug, thiserror::Error)]
pub enum BoardsError {
    /// The feed failed.
    #[error(transparent)]
    Feed(#[from] FeedError),
    /// A snapshot could not be read or written.
    #[error("snapshot encoding: {0}")]
    Encoding(#[from] serde_json::Error),
    /// The feed skipped positions.
    #[error(transparent)]
    Gap(#[from] FeedGap),
    /// The feed delivered nothing for `REBUILD_STALL` before the head.
    #[error("the feed stopped delivering at position {position} of {head}")]
    Stalled {
        /// How far the rebuild got.
        position: u64,
        /// The head it was replaying to.
        head: u64,
    },
}

/// The live boards of one process.
#[derive(Debug)]
pub struct Boards {
    state: RwLock<State>,
    changes: broadcast::Sender<BoardChange>,
    progress: watch::Sender<u64>,
    applied: AtomicU64,
    freshness: watch::Sender<Freshness>,
    resubscribed: AtomicU64,
    gaps: AtomicU64,
    alarms: AtomicU64,
}

fn placements(event: &SpellEvent) -> Vec<&Placement> {
    match event {
        SpellEvent::PatientAdmitted { placement, .. }
        | SpellEvent::AdmissionCancelled { placement, .. }
        | SpellEvent::DischargeCancelled { placement, .. }
        | SpellEvent::PatientDetailsCorrected { placement, .. } => vec![placement],
        SpellEvent::PatientTransferred { from, to, .. } => vec![from, to],
        SpellEvent::TransferCancelled { from, back_to, .. } => vec![from, back_to],
        SpellEvent::PatientDischarged { from, .. } => vec![from],
        _ => Vec::new(),
    }
}

fn touch(keys: &mut BTreeSet<BoardKey>, placement: &Placement) {
    keys.insert(BoardKey::Ward(placement.ward.clone()));
    keys.insert(BoardKey::Hospital(placement.hospital.clone()));
}

impl Boards {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            state: RwLock::new(State::default()),
            changes: broadcast::channel(1024).0,
            progress: watch::channel(0).0,
            applied: AtomicU64::new(0),
            freshness: watch::channel(Freshness::default()).0,
            resubscribed: AtomicU64::new(0),
            gaps: AtomicU64::new(0),
            alarms: AtomicU64::new(0),
        })
    }

    /// How current the boards are, as the watchdog last found them.
    pub fn freshness(&self) -> Freshness {
        self.freshness.borrow().clone()
    }

    /// Changes of [`Boards::freshness`].
    pub fn watch_freshness(&self) -> watch::Receiver<Freshness> {
        self.freshness.subscribe()
    }

    /// Records what the watchdog found.
    pub fn set_freshness(&self, freshness: Freshness) {
        self.freshness.send_if_modified(|f| {
            let changed = *f != freshness;
            *f = freshness;
            changed
        });
    }

    /// Times the runner subscribed again because the feed had stopped
    /// delivering or skipped positions.
    pub fn resubscribed_count(&self) -> u64 {
        self.resubscribed.load(Ordering::Relaxed)
    }

    /// Gaps the feed delivered (each answered by subscribing again).
    pub fn gap_count(&self) -> u64 {
        self.gaps.load(Ordering::Relaxed)
    }

    /// Times the watchdog raised the alarm (boards not up to date).
    pub fn alarm_count(&self) -> u64 {
        self.alarms.load(Ordering::Relaxed)
    }

    pub(crate) fn count_alarm(&self) {
        self.alarms.fetch_add(1, Ordering::Relaxed);
    }

    fn read_state<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        // A panic while applying cannot leave a half-applied event (apply
        // does not panic); a poisoned lock still holds a whole state.
        let guard = self.state.read().unwrap_or_else(|e| e.into_inner());
        f(&guard)
    }

    /// Reads the fold.
    pub fn read<R>(&self, f: impl FnOnce(&Flow) -> R) -> R {
        self.read_state(|s| f(&s.flow))
    }

    /// The feed position the boards include.
    pub fn position(&self) -> u64 {
        self.read_state(|s| s.position)
    }

    /// Events applied by this process since it started (for tests and metrics).
    pub fn applied_count(&self) -> u64 {
        self.applied.load(Ordering::Relaxed)
    }

    /// Announcements of board changes.
    pub fn subscribe(&self) -> broadcast::Receiver<BoardChange> {
        self.changes.subscribe()
    }

    /// True once the boards include the command behind `token`.
    pub fn includes(&self, token: &ConsistencyToken) -> bool {
        self.read(|f| f.applied(&token.aggregate_type, &token.aggregate_id)) >= token.version
    }

    /// Waits until the boards include `token`, or `within` passes (false).
    pub async fn wait_for(&self, token: &ConsistencyToken, within: Duration) -> bool {
        let mut progress = self.progress.subscribe();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            progress.borrow_and_update();
            if self.includes(token) {
                return true;
            }
            if tokio::time::timeout_at(deadline, progress.changed())
                .await
                .is_err()
            {
                return self.includes(token);
            }
        }
    }

    /// Applies one feed event. One at or below the boards' position is a
    /// redelivery and changes nothing; an undecodable one is logged and
    /// skipped (its position counts as applied); one past the next position
    /// is a gap and is not applied.
    pub fn apply(&self, event: &FeedEvent) -> Result<(), FeedGap> {
        self.apply_all(std::slice::from_ref(event))
    }

    /// Applies feed events in order, as [`Boards::apply`] would one by one,
    /// but under one write lock and with one progress announcement: a
    /// runner catching up applies what the feed has ready in one go. At a
    /// gap it stops, keeping what came before it.
    pub fn apply_all(&self, events: &[FeedEvent]) -> Result<(), FeedGap> {
        let decoded: Vec<Option<Envelope>> = events
            .iter()
            .map(|event| {
                match decode(
                    &event.aggregate_type,
                    &event.aggregate_id,
                    event.sequence,
                    &event.event_type,
                    &event.event_version,
                    &event.payload,
                ) {
                    Ok(envelope) => envelope,
                    Err(error) => {
                        tracing::error!(%error, position = event.position, "skipping an event the boards cannot read");
                        None
                    }
                }
            })
            .collect();
        let mut changes = Vec::new();
        let mut applied = 0;
        let mut gap = None;
        let position = {
            let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
            for (event, envelope) in events.iter().zip(decoded) {
                if event.position <= state.position {
                    continue;
                }
                if event.position > state.position + 1 {
                    gap = Some(FeedGap {
                        after: state.position,
                        next: event.position,
                    });
                    break;
                }
                state.position = event.position;
                applied += 1;
                let Some(envelope) = envelope else { continue };
                let mut keys = BTreeSet::new();
                Self::keys_before(&state.flow, &envelope, &mut keys);
                if state.flow.apply(&envelope) {
                    Self::keys_after(&state.flow, &envelope, &mut keys);
                    keys.insert(BoardKey::System);
                    changes.push(BoardChange {
                        position: event.position,
                        boards: keys,
                    });
                }
            }
            state.position
        };
        if applied > 0 {
            self.applied.fetch_add(applied, Ordering::Relaxed);
            self.progress.send_modify(|p| *p = position);
            for change in changes {
                // Nobody listening is fine.
                let _ = self.changes.send(change);
            }
        }
        match gap {
            Some(gap) => {
                self.gaps.fetch_add(1, Ordering::Relaxed);
                Err(gap)
            }
            None => Ok(()),
        }
    }

    fn keys_before(flow: &Flow, envelope: &Envelope, keys: &mut BTreeSet<BoardKey>) {
        match &envelope.change {
            Change::Spell(event) => {
                for placement in placements(event) {
                    touch(keys, placement);
                }
                if let Some(placement) = flow.placement_of(&envelope.aggregate_id) {
                    touch(keys, placement);
                }
            }
            // No board shows access; the sign-in check reads it.
            Change::Access(_) => {}
            Change::Referral(_) => {
                if let Some(referral) = flow.referral(&envelope.aggregate_id) {
                    keys.insert(BoardKey::Team(referral.team.clone()));
                    if let Some(placement) = flow.placement_of(&referral.spell_id) {
                        touch(keys, placement);
                    }
                }
            }
        }
    }

    fn keys_after(flow: &Flow, envelope: &Envelope, keys: &mut BTreeSet<BoardKey>) {
        if let Change::Referral(_) = envelope.change {
            Self::keys_before(flow, envelope, keys);
        }
    }

    /// A snapshot of the current state, built on rebuild `generation`.
    pub fn snapshot(&self, generation: u64) -> Result<Snapshot, serde_json::Error> {
        self.read_state(|s| {
            Ok(Snapshot {
                position: s.position,
                state: serde_json::to_string(s)?,
                generation,
            })
        })
    }

    /// Replaces the state (a restore or a rebuild) and announces every board.
    pub fn replace(&self, state: State) {
        let position = state.position;
        *self.state.write().unwrap_or_else(|e| e.into_inner()) = state;
        self.progress.send_modify(|p| *p = position);
        let _ = self.changes.send(BoardChange {
            position,
            boards: BTreeSet::from([BoardKey::System]),
        });
    }
}

/// Replays the feed from the start, up to its head now, into fresh state.
pub async fn rebuild(feed: &Feed) -> Result<State, BoardsError> {
    let head = feed.head().await?;
    let fresh = Boards::new();
    if head > 0 {
        let mut events = feed.subscribe(0).await?;
        loop {
            let next = tokio::time::timeout(REBUILD_STALL, events.next())
                .await
                .map_err(|_| BoardsError::Stalled {
                    position: fresh.position(),
                    head,
                })?;
            let Some(event) = next else { break };
            let event = event?;
            let position = event.position;
            fresh.apply(&event)?;
            if position >= head {
                break;
            }
        }
    }
    let state = fresh.read_state(Clone::clone);
    Ok(state)
}

/// How long the runner waits before subscribing again after its feed
/// failed, ended or skipped: a fault that persists costs a subscription a
/// second, not a busy loop of them.
const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(1);

/// Waits [`RESUBSCRIBE_AFTER`]; false if shutdown came first.
async fn pause(shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        () = tokio::time::sleep(RESUBSCRIBE_AFTER) => !*shutdown.borrow(),
        _ = shutdown.changed() => false,
    }
}

/// Applies the feed to the boards of this process.
#[derive(Debug)]
pub struct Runner {
    boards: Arc<Boards>,
    feed: Feed,
    db: Database,
    snapshot_every: Duration,
    rebuild: Arc<Notify>,
    resubscribe: Arc<Notify>,
}

impl Runner {
    /// A runner of `feed` into `boards`, checkpointing into `db`.
    pub fn new(boards: Arc<Boards>, feed: Feed, db: Database) -> Self {
        Self {
            boards,
            feed,
            db,
            snapshot_every: Duration::from_secs(30),
            rebuild: Arc::new(Notify::new()),
            resubscribe: Arc::new(Notify::new()),
        }
    }

    /// Checkpoints this often while events flow (default 30 s).
    pub fn snapshot_every(mut self, every: Duration) -> Self {
        self.snapshot_every = every;
        self
    }

    /// Notify this to replay the feed into fresh state and swap it in.
    pub fn rebuild_trigger(&self) -> Arc<Notify> {
        self.rebuild.clone()
    }

    /// Loads the stored snapshot into the boards; returns its generation.
    async fn restore(&self) -> u64 {
        match snapshots::load(&self.db, &self.feed.identity()).await {
            Ok(Some(snapshot)) => match serde_json::from_str::<State>(&snapshot.state) {
                Ok(state) if state.format != STATE_FORMAT => {
                    tracing::info!(
                        format = state.format,
                        current = STATE_FORMAT,
                        "the checkpoint was written by another version of the boards; replaying the feed"
                    );
                    snapshot.generation
                }
                Ok(state) => {
                    tracing::info!(
                        position = state.position,
                        generation = snapshot.generation,
                        "boards restored from checkpoint"
                    );
                    self.boards.replace(state);
                    snapshot.generation
                }
                Err(error) => {
                    tracing::warn!(%error, "unreadable checkpoint; replaying the feed");
                    snapshot.generation
                }
            },
            Ok(None) => {
                tracing::info!("no checkpoint; building the boards from the feed");
                0
            }
            Err(error) => {
                tracing::warn!(%error, "cannot read the checkpoint; replaying the feed");
                0
            }
        }
    }

    /// Stores a checkpoint of the boards, built on rebuild `generation`.
    pub async fn checkpoint(&self, generation: u64) {
        match self.boards.snapshot(generation) {
            Ok(snapshot) => {
                let write = snapshots::Write::Checkpoint;
                if let Err(error) =
                    snapshots::store(&self.db, &self.feed.identity(), &snapshot, write).await
                {
                    tracing::warn!(%error, "could not store a checkpoint");
                }
            }
            Err(error) => tracing::warn!(%error, "could not encode a checkpoint"),
        }
    }

    /// True when a rebuild stored a newer generation than `generation`.
    async fn rebuilt_since(&self, generation: u64) -> bool {
        snapshots::generation(&self.db, &self.feed.identity())
            .await
            .is_ok_and(|stored| stored > generation)
    }

    /// Notify this to drop the feed's subscription and subscribe again from
    /// the boards' position (the watchdog does, when the feed stops).
    pub fn resubscribe_trigger(&self) -> Arc<Notify> {
        self.resubscribe.clone()
    }

    /// Runs until `shutdown` turns true, then checkpoints. A rebuild stored
    /// by another process (`baton projections rebuild`) is swapped in at the
    /// next checkpoint tick. The watchdog runs beside it on a task of its
    /// own, so a runner stuck on its feed is still watched.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let watchdog = tokio::spawn(crate::watchdog::watch(
            self.boards.clone(),
            self.feed.clone(),
            self.db.clone(),
            self.resubscribe.clone(),
            shutdown.clone(),
        ));
        self.follow(&mut shutdown).await;
        if let Err(error) = watchdog.await {
            tracing::warn!(%error, "the boards' watchdog ended abnormally");
        }
    }

    async fn follow(&self, shutdown: &mut watch::Receiver<bool>) {
        let mut generation = self.restore().await;
        let mut checkpointed = self.boards.position();
        let mut ticker = tokio::time::interval(self.snapshot_every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        'subscribe: loop {
            if *shutdown.borrow() {
                break;
            }
            let position = self.boards.position();
            let subscribed = tokio::select! {
                subscribed = tokio::time::timeout(SUBSCRIBE_WITHIN, self.feed.subscribe(position)) => subscribed,
                _ = shutdown.changed() => break 'subscribe,
            };
            let events = match subscribed {
                Ok(Ok(events)) => events,
                failed => {
                    match failed {
                        Ok(Err(error)) => {
                            tracing::warn!(%error, position, "cannot read the feed; retrying")
                        }
                        _ => tracing::warn!(
                            position,
                            "the feed did not answer a subscription; retrying"
                        ),
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue 'subscribe,
                        _ = shutdown.changed() => break 'subscribe,
                    }
                }
            };
            // Whatever the feed has ready is applied in one go.
            let mut events = events.ready_chunks(READY_CHUNK);
            loop {
                tokio::select! {
                    next = events.next() => match next {
                        Some(chunk) => {
                            let mut ok = Vec::with_capacity(chunk.len());
                            let mut failure = None;
                            for item in chunk {
                                match item {
                                    Ok(event) => ok.push(event),
                                    Err(error) => {
                                        failure = Some(error);
                                        break;
                                    }
                                }
                            }
                            if let Err(gap) = self.boards.apply_all(&ok) {
                                tracing::warn!(%gap, "the feed skipped events; subscribing again from the boards' position");
                                self.boards.resubscribed.fetch_add(1, Ordering::Relaxed);
                                if !pause(shutdown).await {
                                    break 'subscribe;
                                }
                                continue 'subscribe;
                            }
                            if let Some(error) = failure {
                                tracing::warn!(%error, "the feed failed; resubscribing");
                                if !pause(shutdown).await {
                                    break 'subscribe;
                                }
                                continue 'subscribe;
                            }
                        }
                        None => {
                            if !pause(shutdown).await {
                                break 'subscribe;
                            }
                            continue 'subscribe;
                        }
                    },
                    _ = ticker.tick() => {
                        if self.rebuilt_since(generation).await {
                            generation = self.restore().await;
                            checkpointed = self.boards.position();
                            tracing::info!(generation, "swapped in rebuilt boards");
                            continue 'subscribe;
                        }
                        if self.boards.position() > checkpointed {
                            self.checkpoint(generation).await;
                            checkpointed = self.boards.position();
                        }
                    }
                    () = self.rebuild.notified() => {
                        match rebuild(&self.feed).await {
                            Ok(state) => {
                                tracing::info!(position = state.position, "boards rebuilt from the feed");
                                self.boards.replace(state);
                                match self.boards.snapshot(generation) {
                                    Ok(snapshot) => {
                                        let write = snapshots::Write::Rebuild;
                                        match snapshots::store(&self.db, &self.feed.identity(), &snapshot, write).await {
                                            Ok(()) => generation += 1,
                                            Err(error) => tracing::warn!(%error, "could not store the rebuild"),
                                        }
                                    }
                                    Err(error) => tracing::warn!(%error, "could not encode the rebuild"),
                                }
                                checkpointed = self.boards.position();
                                continue 'subscribe;
                            }
                            Err(error) => tracing::error!(%error, "rebuild failed; keeping the live boards"),
                        }
                    }
                    () = self.resubscribe.notified() => {
                        self.boards.resubscribed.fetch_add(1, Ordering::Relaxed);
                        continue 'subscribe;
                    }
                    _ = shutdown.changed() => break 'subscribe,
                }
            }
        }
        if !self.rebuilt_since(generation).await {
            self.checkpoint(generation).await;
        }
    }
}
