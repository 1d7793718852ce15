//! Reading and clearing the transactional outbox, for the relay and for
//! `baton outbox status`.
//!
//! PostgreSQL hands out outbox positions at insert time, not at commit, so a
//! transaction still in flight can hold a lower position than one already
//! committed. A reader that remembered "the highest position seen" would
//! skip it for ever. The relay therefore keeps no cursor: each pass takes the
//! lowest *visible* rows in position order and deletes them once the sink
//! has them; a row of a transaction still in flight is invisible now and is
//! simply taken by a later pass.
//!
//! Order: a commit that had to wait for another (the next event of the same
//! aggregate, or a reservation key the other held) inserts its outbox row
//! only after the other committed, so it has the higher position, and it
//! cannot be visible while the other is not. Such pairs are always relayed
//! in commit order. (An earlier version also required the row's transaction
//! id to be below the snapshot's xmin; that let a waiting transaction that
//! had taken an xid early overtake the one it waited for, and let any long
//! transaction stall the relay.)

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::store::Database;

/// The PostgreSQL channel the relay notifies after appending to the log.
pub const LOG_CHANNEL: &str = "baton_event_log";

/// One committed event waiting for the relay (as PostgreSQL returns it).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct OutboxRow {
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// Sequence within the aggregate.
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    /// The event as stored (`Recorded<E>`).
    pub payload: Value,
    /// When its transaction wrote it.
    pub committed_at: DateTime<Utc>,
}

/// A row as SQLite returns it: the payload and the time as text.
#[derive(sqlx::FromRow)]
struct SqliteRow {
    position: i64,
    aggregate_type: String,
    aggregate_id: String,
    sequence: i64,
    event_type: String,
    event_version: String,
    payload: String,
    committed_at: String,
}

impl SqliteRow {
    fn parse(self) -> Result<OutboxRow, sqlx::Error> {
        Ok(OutboxRow {
            payload: parse_json(&self.payload)?,
            committed_at: parse_time(&self.committed_at)?,
            position: self.position,
            aggregate_type: self.aggregate_type,
            aggregate_id: self.aggregate_id,
            sequence: self.sequence,
            event_type: self.event_type,
            event_version: self.event_version,
        })
    }
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, sqlx::Error> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn parse_json(text: &str) -> Result<Value, sqlx::Error> {
    serde_json::from_str(text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// The relay's read on PostgreSQL, which also removes the rows the sink
/// acknowledged since the last read (`$2`, their positions) and records the
/// progress by what it removed, so running it twice counts nothing twice:
/// one statement a pass instead of a read and a
/// delete (measured with `bench-pipeline`: at one writer the relay passes
/// about once per command, and its statements were a third of all). The
/// removal needs no WAL flush: if a crash loses it, the rows are relayed
/// again and JetStream drops them by message id. The read runs on the
/// statement's snapshot, which still holds the removed rows, so it skips
/// them by position.
///
/// The read takes the oldest rows first, then each one's event by primary
/// key. A plain join let the planner hash the whole events table on every
/// pass (measured with `bench-pipeline`: 2 ms a pass at one writer, 19 ms at
/// 64, and commit-to-stream p99 near 100 ms at 1,000 commands/s); the
/// `LIMIT 1` keeps the lateral lookup from being flattened into such a join.
/// Public so that a test can check the plan.
pub const POSTGRES_READY: &str =
    "WITH quick AS (SELECT set_config('synchronous_commit', 'off', true)), \
     gone AS (DELETE FROM outbox WHERE position = ANY($2) RETURNING position), \
     progress AS (UPDATE outbox_relay SET last_published_position = \
     GREATEST(last_published_position, (SELECT max(position) FROM gone)), \
     last_published_at = now(), \
     published_total = published_total + (SELECT count(*) FROM gone) \
     FROM quick WHERE id = 1 AND cardinality($2) > 0) \
     SELECT o.position, o.aggregate_type, o.aggregate_id, o.sequence, \
     e.event_type, e.event_version, e.payload, o.committed_at \
     FROM (SELECT * FROM outbox WHERE position <> ALL($2) ORDER BY position LIMIT $1) o \
     CROSS JOIN LATERAL (SELECT event_type, event_version, payload FROM events \
     WHERE aggregate_type = o.aggregate_type AND aggregate_id = o.aggregate_id \
     AND sequence = o.sequence LIMIT 1) e ORDER BY o.position";

/// The oldest rows ready to relay, in position order, after removing
/// `relayed`: rows the sink has acknowledged since the last call (see
/// [`POSTGRES_READY`]; pass none to only read).
pub async fn ready(
    db: &Database,
    limit: i64,
    relayed: &[OutboxRow],
) -> Result<Vec<OutboxRow>, sqlx::Error> {
    match db {
        Database::Postgres(pool) => {
            let positions: Vec<i64> = relayed.iter().map(|r| r.position).collect();
            sqlx::query_as(POSTGRES_READY)
                .bind(limit)
                .bind(&positions)
                .fetch_all(pool)
                .await
        }
        Database::Sqlite(pool) => {
            acknowledge(db, relayed).await?;
            let rows: Vec<SqliteRow> = sqlx::query_as(
                "SELECT o.position, o.aggregate_type, o.aggregate_id, o.sequence, e.event_type, \
                 e.event_version, e.payload, o.committed_at FROM outbox o JOIN events e \
                 ON e.aggregate_type = o.aggregate_type AND e.aggregate_id = o.aggregate_id \
                 AND e.sequence = o.sequence ORDER BY o.position LIMIT ?",
            )
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.into_iter().map(SqliteRow::parse).collect()
        }
    }
}

/// Removes rows JetStream has acknowledged and records the progress.
pub async fn acknowledge(db: &Database, rows: &[OutboxRow]) -> Result<(), sqlx::Error> {
    let Some(last) = rows.iter().map(|r| r.position).max() else {
        return Ok(());
    };
    let positions: Vec<i64> = rows.iter().map(|r| r.position).collect();
    let count = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    match db {
        Database::Postgres(pool) => {
            // One statement, one round trip (the relay runs this after every
            // pass). No need to wait for its WAL flush: if a crash loses it,
            // the rows are relayed again and JetStream drops them by message
            // id; waiting would only compete with commands' flushes. The
            // setting is local to the statement's own transaction.
            sqlx::query(
                "WITH quick AS (SELECT set_config('synchronous_commit', 'off', true)), \
                 gone AS (DELETE FROM outbox WHERE position = ANY($1)) \
                 UPDATE outbox_relay SET last_published_position = \
                 GREATEST(last_published_position, $2), last_published_at = now(), \
                 published_total = published_total + $3 FROM quick WHERE id = 1",
            )
            .bind(&positions)
            .bind(last)
            .bind(count)
            .execute(pool)
            .await?;
            Ok(())
        }
        Database::Sqlite(pool) => {
            let mut tx = crate::store::begin_sqlite_write(pool).await?;
            sqlite_forget(&mut tx, &positions).await?;
            tx.commit().await
        }
    }
}

/// Removes relayed rows from the SQLite outbox and records the progress,
/// in the caller's transaction.
async fn sqlite_forget(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    positions: &[i64],
) -> Result<(), sqlx::Error> {
    let list = serde_json::to_string(positions).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query("DELETE FROM outbox WHERE position IN (SELECT value FROM json_each(?))")
        .bind(list)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "UPDATE outbox_relay SET last_published_position = \
         MAX(last_published_position, ?), last_published_at = ?, \
         published_total = published_total + ? WHERE id = 1",
    )
    .bind(positions.iter().max().copied().unwrap_or(0))
    .bind(Utc::now().to_rfc3339())
    .bind(i64::try_from(positions.len()).unwrap_or(i64::MAX))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// One relayed row into the local event log (the same SQL on both
/// databases: sqlx's SQLite driver takes `$N` too). A row already there
/// (the relay crashed after its commit) is skipped, and takes no position.
const INSERT_LOG: &str = "INSERT INTO event_log (position, aggregate_type, aggregate_id, \
     sequence, outbox_position, committed_at) VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (aggregate_type, aggregate_id, sequence) DO NOTHING";

const NEXT_LOG_POSITION: &str = "SELECT COALESCE(MAX(position), 0) + 1 FROM event_log";

/// Appends relayed rows to the local event log in the open transaction
/// `$tx`, under the next gapless positions: the same statements on both
/// databases (sqlx's SQLite driver encodes a time as RFC 3339 text, the
/// form the SQLite log stores).
macro_rules! insert_into_log {
    ($tx:ident, $rows:expr) => {
        let mut next: i64 = sqlx::query_scalar(NEXT_LOG_POSITION)
            .fetch_one(&mut *$tx)
            .await?;
        for row in $rows {
            let inserted = sqlx::query(INSERT_LOG)
                .bind(next)
                .bind(&row.aggregate_type)
                .bind(&row.aggregate_id)
                .bind(row.sequence)
                .bind(row.position)
                .bind(row.committed_at)
                .execute(&mut *$tx)
                .await?;
            next += i64::try_from(inserted.rows_affected()).unwrap_or(0);
        }
    };
}

/// Moves rows into the local event log (the sink when no NATS is set), in
/// one transaction with their removal from the outbox, under gapless log
/// positions that only the relay (one at a time) assigns.
pub async fn move_to_log(db: &Database, rows: &[OutboxRow]) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    match db {
        Database::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            insert_into_log!(tx, rows);
            let positions: Vec<i64> = rows.iter().map(|r| r.position).collect();
            sqlx::query("DELETE FROM outbox WHERE position = ANY($1)")
                .bind(&positions)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE outbox_relay SET last_published_position = \
                 GREATEST(last_published_position, $1), last_published_at = now(), \
                 published_total = published_total + $2 WHERE id = 1",
            )
            .bind(positions.iter().max().copied().unwrap_or(0))
            .bind(i64::try_from(rows.len()).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(LOG_CHANNEL)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        }
        Database::Sqlite(pool) => {
            let mut tx = crate::store::begin_sqlite_write(pool).await?;
            insert_into_log!(tx, rows);
            let positions: Vec<i64> = rows.iter().map(|r| r.position).collect();
            sqlite_forget(&mut tx, &positions).await?;
            tx.commit().await
        }
    }
}

/// Vacuums the outbox (PostgreSQL; nothing to do on SQLite). The outbox
/// is a queue: each row is deleted moments after it is written, and the
/// relay's read walks the primary key from its low end, over every row
/// deleted since the last vacuum. Autovacuum visits a table at most once a
/// minute (`autovacuum_naptime`), by which time a busy outbox holds tens of
/// thousands of dead rows for every pass to step over, so the relay
/// vacuums it itself while rows flow (`relay`).
pub async fn vacuum(db: &Database) -> Result<(), sqlx::Error> {
    match db {
        // VACUUM cannot run in a transaction block: the simple protocol.
        Database::Postgres(pool) => sqlx::raw_sql("VACUUM outbox")
            .execute(pool)
            .await
            .map(|_| ()),
        Database::Sqlite(_) => Ok(()),
    }
}

/// What `baton outbox status` shows.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OutboxStatus {
    /// Rows waiting (and, for up to 20 ms, rows the sink has but the relay
    /// has not yet removed: see `POSTGRES_READY`).
    pub depth: i64,
    /// Age of the oldest waiting row, in seconds.
    pub oldest_age_seconds: Option<f64>,
    /// Highest outbox position relayed.
    pub last_published_position: i64,
    /// When the relay last removed rows it had handed on (within 20 ms of
    /// handing them on).
    pub last_published_at: Option<DateTime<Utc>>,
    /// Rows relayed since the database was created.
    pub published_total: i64,
    /// Which process relays now.
    pub relay_owner: Option<String>,
    pub relay_owner_since: Option<DateTime<Utc>>,
    /// Its last sign of life.
    pub relay_heartbeat_at: Option<DateTime<Utc>>,
}

/// When the oldest row still waiting in the outbox was committed (none when
/// it is empty): the boards cannot include that commit yet. For up to 20 ms
/// a row the sink already has may still be counted (see `POSTGRES_READY`).
pub async fn oldest_waiting(db: &Database) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    match db {
        Database::Postgres(pool) => {
            sqlx::query_scalar("SELECT MIN(committed_at) FROM outbox")
                .fetch_one(pool)
                .await
        }
        Database::Sqlite(pool) => {
            let oldest: Option<String> = sqlx::query_scalar("SELECT MIN(committed_at) FROM outbox")
                .fetch_one(pool)
                .await?;
            oldest.map(|t| parse_time(&t)).transpose()
        }
    }
}

const DEPTH: &str = "SELECT COUNT(*), MIN(committed_at) FROM outbox";
const RELAY: &str = "SELECT owner, owner_since, heartbeat_at, last_published_position, \
                     last_published_at, published_total FROM outbox_relay WHERE id = 1";

/// The relay's row as a database returns it: PostgreSQL types the times,
/// SQLite stores them as text.
#[derive(sqlx::FromRow)]
struct RelayRow<T> {
    owner: Option<String>,
    owner_since: Option<T>,
    heartbeat_at: Option<T>,
    last_published_position: i64,
    last_published_at: Option<T>,
    published_total: i64,
}

impl<T> RelayRow<T> {
    fn status(
        self,
        (depth, oldest): (i64, Option<T>),
        time: impl Fn(T) -> Result<DateTime<Utc>, sqlx::Error>,
    ) -> Result<OutboxStatus, sqlx::Error> {
        let now = Utc::now();
        let time = |t: Option<T>| t.map(&time).transpose();
        Ok(OutboxStatus {
            depth,
            oldest_age_seconds: time(oldest)?.map(|t| (now - t).as_seconds_f64()),
            last_published_position: self.last_published_position,
            last_published_at: time(self.last_published_at)?,
            published_total: self.published_total,
            relay_owner: self.owner,
            relay_owner_since: time(self.owner_since)?,
            relay_heartbeat_at: time(self.heartbeat_at)?,
        })
    }
}

/// Reads the outbox's state.
pub async fn status(db: &Database) -> Result<OutboxStatus, sqlx::Error> {
    match db {
        Database::Postgres(pool) => {
            let depth: (i64, Option<DateTime<Utc>>) = sqlx::query_as(DEPTH).fetch_one(pool).await?;
            let relay: RelayRow<DateTime<Utc>> = sqlx::query_as(RELAY).fetch_one(pool).await?;
            relay.status(depth, Ok)
        }
        Database::Sqlite(pool) => {
            let depth: (i64, Option<String>) = sqlx::query_as(DEPTH).fetch_one(pool).await?;
            let relay: RelayRow<String> = sqlx::query_as(RELAY).fetch_one(pool).await?;
            relay.status(depth, |t| parse_time(&t))
        }
    }
}
