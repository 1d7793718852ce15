//! The event store: cqrs-es's `PersistedEventStore` over one repository that
//! reads with postgres-es or sqlite-es and writes each commit in a single
//! transaction: the events, the reservations they declare, and one outbox
//! row per event. Nothing is committed without its outbox row, and nothing
//! breaking a cross-aggregate rule is committed at all.

mod errors;
mod postgres;
mod rules;
mod sqlite;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlite_es::SqliteEventRepository;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use tokio::sync::Notify;

pub use errors::{classify, is_unavailable, CommitError, StoreFailure};

/// The PostgreSQL channel commits notify the relay on.
pub fn postgres_channel() -> &'static str {
    postgres::OUTBOX_CHANNEL
}
pub use rules::ReservationRules;

/// Why the store could not be opened or migrated.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or refused the connection.
    #[error("cannot open the database: {0}")]
    Connect(#[source] sqlx::Error),
    /// The schema could not be brought up to date.
    #[error("cannot migrate the database: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// The data directory could not be created.
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] sqlx::Error),
}

/// Runs `$body` on whichever pool `$db` holds, bound to `$pool`: one
/// query text for both databases where the SQL is the same (sqlx's SQLite
/// driver reads `$1`, `$2`, ... as PostgreSQL does), type-checked once per
/// driver.
#[macro_export]
macro_rules! on_either_database {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::store::Database::Postgres($pool) => $body,
            $crate::store::Database::Sqlite($pool) => $body,
        }
    };
}

/// Begins a SQLite transaction that will write, taking the write lock at
/// once (`BEGIN IMMEDIATE`). A deferred transaction that reads first and
/// then writes cannot wait for another writer in WAL mode: SQLite answers
/// "database is locked" at once instead of using the busy timeout, which
/// `baton demo` loading beside a running `serve` showed as relay warnings.
pub async fn begin_sqlite_write(
    pool: &sqlx::SqlitePool,
) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

/// How long a command waits for a database connection before it fails with
/// "unavailable": long enough for a busy pool, short enough that a ward PC
/// shows an error instead of a spinner when the database is down.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a pooled connection may sit idle before it is pinged on its way
/// out of the pool; see [`Database::postgres`].
pub const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(1);

/// The database behind the event store.
#[derive(Debug, Clone)]
pub enum Database {
    /// Production: PostgreSQL.
    Postgres(PgPool),
    /// The embedded default: one SQLite file.
    Sqlite(SqlitePool),
}

impl Database {
    /// Connects to PostgreSQL. The pool connects lazily, so Baton starts (and
    /// answers 503) while the database is down, and recovers by itself.
    ///
    /// sqlx pings every connection it hands out by default: a round trip
    /// per acquire, two per command. In a profile of `bench-http` those
    /// pings (Baton's and the bare pool's together) took nearly a fifth of
    /// the process's samples. A connection used within
    /// the last [`PING_WHEN_IDLE_FOR`] is handed out as it is; one idle for
    /// longer (say, across a database restart) is still pinged first.
    pub fn postgres(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(false)
            .before_acquire(|connection, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_WHEN_IDLE_FOR {
                        sqlx::Connection::ping(connection).await?;
                    }
                    Ok(true)
                })
            })
            .connect_lazy(url)
            .map_err(StoreError::Connect)?;
        Ok(Self::Postgres(pool))
    }

    /// Opens (creating if needed) the SQLite file `baton.sqlite` in `data_dir`.
    pub async fn sqlite(data_dir: &std::path::Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.display().to_string(),
            source,
        })?;
        let options = SqliteConnectOptions::new()
            .filename(data_dir.join("baton.sqlite"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(StoreError::Connect)?;
        Ok(Self::Sqlite(pool))
    }

    /// Applies the schema migrations (idempotent).
    ///
    /// On PostgreSQL sqlx serialises concurrent migrators with an advisory
    /// lock. On SQLite it takes none, so two processes starting together can
    /// both try to record the same migration; the loser simply tries again
    /// once the winner is done, and finds nothing left to do.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            Database::Postgres(pool) => sqlx::migrate!("./migrations/postgres")
                .run(pool)
                .await
                .map_err(StoreError::Migrate),
            Database::Sqlite(pool) => {
                let mut attempt = 0;
                loop {
                    match sqlx::migrate!("./migrations/sqlite").run(pool).await {
                        Ok(()) => return Ok(()),
                        Err(error) if attempt < 10 => {
                            attempt += 1;
                            tracing::debug!(%error, attempt, "SQLite migration raced another process");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Err(error) => return Err(StoreError::Migrate(error)),
                    }
                }
            }
        }
    }

    /// Where the data lives, for the start-up log (never a password).
    pub fn describe(&self) -> String {
        match self {
            Database::Postgres(pool) => {
                let options = pool.connect_options();
                format!(
                    "PostgreSQL database {} on {}:{}",
                    options.get_database().unwrap_or("(default)"),
                    options.get_host(),
                    options.get_port()
                )
            }
            Database::Sqlite(pool) => format!(
                "SQLite file {}",
                pool.connect_options().get_filename().display()
            ),
        }
    }
}

enum Reader {
    Postgres(PostgresEventRepository),
    Sqlite(SqliteEventRepository),
}

/// How commits reach the relay of the same process: a wake-up after each
/// commit, and whether that relay is the leader (if not, commits also NOTIFY
/// the leader in another process).
#[derive(Debug, Clone, Default)]
pub struct RelaySignals {
    /// Notified after every commit in this process.
    pub committed: Arc<Notify>,
    /// True while this process's relay leads.
    pub leading: Arc<AtomicBool>,
}

/// The repository behind every aggregate's event store.
#[derive(Clone)]
pub struct BatonRepository {
    db: Database,
    reader: Arc<Reader>,
    rules: ReservationRules,
    signals: RelaySignals,
}

impl std::fmt::Debug for BatonRepository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatonRepository")
            .field("db", &self.db.describe())
            .field("rules", &self.rules)
            .finish()
    }
}

impl BatonRepository {
    /// A repository over `db` enforcing `rules`.
    pub fn new(db: Database, rules: ReservationRules) -> Self {
        let reader = match &db {
            Database::Postgres(pool) => {
                Reader::Postgres(PostgresEventRepository::new(pool.clone()))
            }
            Database::Sqlite(pool) => Reader::Sqlite(SqliteEventRepository::new(pool.clone())),
        };
        Self {
            db,
            reader: Arc::new(reader),
            rules,
            signals: RelaySignals::default(),
        }
    }

    /// What this process's relay listens to.
    pub fn relay_signals(&self) -> RelaySignals {
        self.signals.clone()
    }

    pub fn database(&self) -> &Database {
        &self.db
    }
}

impl BatonRepository {
    /// Commits `events` (with their reservations, outbox rows and any
    /// idempotency key) in one transaction, saying exactly why when it
    /// cannot.
    pub async fn commit(&self, events: &[SerializedEvent]) -> Result<(), CommitError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut changes = self.rules.changes(events)?;
        // A commit of several aggregates (two patients swapping beds, ADT
        // A17) releases every key before claiming any: each claims the bed
        // the other releases. Within one aggregate the events' own order
        // holds (a spell moving twice in one commit would otherwise end up
        // holding the bed it passed through).
        let first = events.first().map(|e| (&e.aggregate_type, &e.aggregate_id));
        if events
            .iter()
            .any(|e| Some((&e.aggregate_type, &e.aggregate_id)) != first)
        {
            changes.sort_by_key(|change| {
                !matches!(
                    change,
                    domain::reservation::ReservationChange::Release { .. }
                        | domain::reservation::ReservationChange::ReleaseAll { .. }
                )
            });
        }
        match &self.db {
            Database::Postgres(pool) => {
                postgres::commit(pool, events, &changes).await?;
                if !self.signals.leading.load(Ordering::Relaxed) {
                    postgres::wake_relay(pool).await;
                }
            }
            Database::Sqlite(pool) => sqlite::commit(pool, events, &changes).await?,
        }
        // A stored permit: the relay sees it even if it is busy right now.
        self.signals.committed.notify_one();
        Ok(())
    }
}

/// Whether any key of a family (keys starting with `prefix`) is held, in
/// the commit's transaction. One text for both databases.
async fn family_held<'e, DB>(
    executor: impl sqlx::Executor<'e, Database = DB>,
    prefix: String,
) -> Result<bool, sqlx::Error>
where
    DB: sqlx::Database,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'r> (i32,): sqlx::FromRow<'r, DB::Row>,
{
    let held: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM reservations WHERE substr(key, 1, length($1)) = $1 LIMIT 1",
    )
    .bind(prefix)
    .fetch_optional(executor)
    .await?;
    Ok(held.is_some())
}

/// Which aggregate holds a reservation key now, if any (outside any
/// commit: what a dry run reports).
pub async fn reservation_holder(db: &Database, key: &str) -> Result<Option<String>, sqlx::Error> {
    Ok(crate::on_either_database!(db, pool => {
        sqlx::query_scalar("SELECT holder FROM reservations WHERE key = $1")
            .bind(key)
            .fetch_optional(pool)
            .await?
    }))
}

/// Loaded events through their enum's one upcast point
/// ([`domain::upcast`]) before cqrs-es deserialises them: cqrs-es's own
/// upcaster hook cannot fail, and an event of a version this build does not
/// know must stop the load, not be read as if it were current.
fn upcast_all<A: Aggregate>(
    events: Vec<SerializedEvent>,
) -> Result<Vec<SerializedEvent>, PersistenceError> {
    use domain::{referral::Referral, spell::Spell, Decider, DomainEvent};
    type Upcast =
        for<'a> fn(
            &str,
            &str,
            std::borrow::Cow<'a, serde_json::Value>,
        )
            -> Result<std::borrow::Cow<'a, serde_json::Value>, domain::upcast::ReadError>;
    let upcast: Upcast = match A::TYPE {
        Spell::TYPE => <domain::spell::SpellEvent as DomainEvent>::upcast,
        Referral::TYPE => <domain::referral::ReferralEvent as DomainEvent>::upcast,
        _ => return Ok(events),
    };
    events
        .into_iter()
        .map(|mut event| {
            let payload = std::mem::take(&mut event.payload);
            let current = upcast(
                &event.event_type,
                &event.event_version,
                std::borrow::Cow::Owned(payload),
            )
            .map_err(|e| PersistenceError::DeserializationError(Box::new(e)))?;
            event.payload = current.into_owned();
            Ok(event)
        })
        .collect()
}

impl PersistedEventRepository for BatonRepository {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let events = match self.reader.as_ref() {
            Reader::Postgres(r) => r.get_events::<A>(aggregate_id).await,
            Reader::Sqlite(r) => r.get_events::<A>(aggregate_id).await,
        }?;
        upcast_all::<A>(events)
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let events = match self.reader.as_ref() {
            Reader::Postgres(r) => r.get_last_events::<A>(aggregate_id, last_sequence).await,
            Reader::Sqlite(r) => r.get_last_events::<A>(aggregate_id, last_sequence).await,
        }?;
        upcast_all::<A>(events)
    }

    /// Baton keeps no snapshots: cqrs-es 0.5's snapshot path applies new
    /// events twice, and spells are short enough to replay.
    async fn get_snapshot<A: Aggregate>(
        &self,
        _aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        Ok(None)
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        _snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        Ok(self.commit(events).await?)
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        match self.reader.as_ref() {
            Reader::Postgres(r) => r.stream_events::<A>(aggregate_id).await,
            Reader::Sqlite(r) => r.stream_events::<A>(aggregate_id).await,
        }
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        match self.reader.as_ref() {
            Reader::Postgres(r) => r.stream_all_events::<A>().await,
            Reader::Sqlite(r) => r.stream_all_events::<A>().await,
        }
    }
}
