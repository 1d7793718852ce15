//! Storage of checkpointed read-model state, in the event store's database.
//! The state is opaque JSON here; the projections crate owns its shape.

use crate::store::Database;

/// A stored snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The feed position the state includes.
    pub position: u64,
    /// The state, as JSON.
    pub state: String,
}

/// The newest snapshot of `feed`, if any.
pub async fn load(db: &Database, feed: &str) -> Result<Option<Snapshot>, sqlx::Error> {
    let row: Option<(i64, String)> = match db {
        Database::Postgres(pool) => {
            sqlx::query_as("SELECT position, state FROM projection_snapshots WHERE feed = $1")
                .bind(feed)
                .fetch_optional(pool)
                .await?
        }
        Database::Sqlite(pool) => {
            sqlx::query_as("SELECT position, state FROM projection_snapshots WHERE feed = ?")
                .bind(feed)
                .fetch_optional(pool)
                .await?
        }
    };
    Ok(row.map(|(position, state)| Snapshot {
        position: u64::try_from(position).unwrap_or(0),
        state,
    }))
}

/// Stores a snapshot unless a newer one is there already. With `replace`,
/// stores it whatever is there (a rebuild's fresh state).
pub async fn store(
    db: &Database,
    feed: &str,
    snapshot: &Snapshot,
    replace: bool,
) -> Result<(), sqlx::Error> {
    let position = i64::try_from(snapshot.position).unwrap_or(i64::MAX);
    match db {
        Database::Postgres(pool) => {
            sqlx::query(
                "INSERT INTO projection_snapshots (feed, position, state) VALUES ($1, $2, $3) \
                 ON CONFLICT (feed) DO UPDATE SET position = EXCLUDED.position, \
                 state = EXCLUDED.state, taken_at = now() \
                 WHERE $4 OR projection_snapshots.position < EXCLUDED.position",
            )
            .bind(feed)
            .bind(position)
            .bind(&snapshot.state)
            .bind(replace)
            .execute(pool)
            .await?;
        }
        Database::Sqlite(pool) => {
            sqlx::query(
                "INSERT INTO projection_snapshots (feed, position, state, taken_at) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (feed) DO UPDATE SET \
                 position = excluded.position, state = excluded.state, \
                 taken_at = excluded.taken_at \
                 WHERE ?5 OR projection_snapshots.position < excluded.position",
            )
            .bind(feed)
            .bind(position)
            .bind(&snapshot.state)
            .bind(chrono::Utc::now().to_rfc3339())
            .bind(replace)
            .execute(pool)
            .await?;
        }
    }
    Ok(())
}
