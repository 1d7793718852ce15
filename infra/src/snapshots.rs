//! Storage of checkpointed read-model state, in the event store's database.
//! The state is opaque JSON here; the projections crate owns its shape.
//!
//! A rebuild bumps the snapshot's generation. Runners watch it and reload
//! when it changes; their own checkpoints apply only on top of the
//! generation they started from, so a runner still holding the state a
//! rebuild was meant to replace can never write it back over the rebuild.

use crate::store::Database;

/// A stored snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The feed position the state includes.
    pub position: u64,
    /// The state, as JSON.
    pub state: String,
    /// How many rebuilds the feed's snapshot has seen.
    pub generation: u64,
}

/// How a snapshot is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// A runner's checkpoint: kept only if newer and of the same generation.
    Checkpoint,
    /// A rebuild: replaces whatever is there and starts a new generation.
    Rebuild,
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or_default()
}

/// The newest snapshot of `feed`, if any.
pub async fn load(db: &Database, feed: &str) -> Result<Option<Snapshot>, sqlx::Error> {
    let row: Option<(i64, String, i64)> = match db {
        Database::Postgres(pool) => {
            sqlx::query_as(
                "SELECT position, state, generation FROM projection_snapshots WHERE feed = $1",
            )
            .bind(feed)
            .fetch_optional(pool)
            .await?
        }
        Database::Sqlite(pool) => {
            sqlx::query_as(
                "SELECT position, state, generation FROM projection_snapshots WHERE feed = ?",
            )
            .bind(feed)
            .fetch_optional(pool)
            .await?
        }
    };
    Ok(row.map(|(position, state, generation)| Snapshot {
        position: to_u64(position),
        state,
        generation: to_u64(generation),
    }))
}

/// The generation of `feed`'s snapshot (0 when there is none): cheap to poll.
pub async fn generation(db: &Database, feed: &str) -> Result<u64, sqlx::Error> {
    let generation: Option<i64> = match db {
        Database::Postgres(pool) => {
            sqlx::query_scalar("SELECT generation FROM projection_snapshots WHERE feed = $1")
                .bind(feed)
                .fetch_optional(pool)
                .await?
        }
        Database::Sqlite(pool) => {
            sqlx::query_scalar("SELECT generation FROM projection_snapshots WHERE feed = ?")
                .bind(feed)
                .fetch_optional(pool)
                .await?
        }
    };
    Ok(generation.map(to_u64).unwrap_or(0))
}

/// Stores a snapshot as `write` says. A checkpoint's `snapshot.generation`
/// is the generation its state was built on.
pub async fn store(
    db: &Database,
    feed: &str,
    snapshot: &Snapshot,
    write: Write,
) -> Result<(), sqlx::Error> {
    let position = i64::try_from(snapshot.position).unwrap_or(i64::MAX);
    let generation = i64::try_from(snapshot.generation).unwrap_or(i64::MAX);
    let rebuild = write == Write::Rebuild;
    match db {
        Database::Postgres(pool) => {
            sqlx::query(
                "INSERT INTO projection_snapshots (feed, position, state, generation) \
                 VALUES ($1, $2, $3, CASE WHEN $5 THEN 1 ELSE $4 END) \
                 ON CONFLICT (feed) DO UPDATE SET position = EXCLUDED.position, \
                 state = EXCLUDED.state, taken_at = now(), \
                 generation = projection_snapshots.generation + CASE WHEN $5 THEN 1 ELSE 0 END \
                 WHERE $5 OR (projection_snapshots.position < EXCLUDED.position \
                 AND projection_snapshots.generation = $4)",
            )
            .bind(feed)
            .bind(position)
            .bind(&snapshot.state)
            .bind(generation)
            .bind(rebuild)
            .execute(pool)
            .await?;
        }
        Database::Sqlite(pool) => {
            sqlx::query(
                "INSERT INTO projection_snapshots (feed, position, state, generation, taken_at) \
                 VALUES (?1, ?2, ?3, CASE WHEN ?5 THEN 1 ELSE ?4 END, ?6) \
                 ON CONFLICT (feed) DO UPDATE SET position = excluded.position, \
                 state = excluded.state, taken_at = excluded.taken_at, \
                 generation = projection_snapshots.generation + CASE WHEN ?5 THEN 1 ELSE 0 END \
                 WHERE ?5 OR (projection_snapshots.position < excluded.position \
                 AND projection_snapshots.generation = ?4)",
            )
            .bind(feed)
            .bind(position)
            .bind(&snapshot.state)
            .bind(generation)
            .bind(rebuild)
            .bind(chrono::Utc::now().to_rfc3339())
            .execute(pool)
            .await?;
        }
    }
    Ok(())
}
