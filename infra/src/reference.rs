//! Reference data kept in the event store's database and served from memory.
//!
//! Every command reads it (is this ward known, has it bed 12, what is this
//! team's SLA), so lookups must cost nothing: each process holds the whole
//! catalogue in memory behind an `Arc` swapped on change. Admins change it
//! rarely, through the API; a change is written to `reference_data` first
//! and swapped in here only once stored, so memory never holds what the
//! database does not. Other processes pick it up at their next reload
//! (`ReferenceStore::reload`, every few seconds under `baton serve`).
//!
//! Validation is the domain's ([`Catalogue`]'s `put_*`): the store tries the
//! change on a copy, and writes nothing that copy refused.

use std::sync::{Arc, RwLock};

use domain::reference::{
    Catalogue, DelayReasonRef, Hospital, Hub, ReferenceData, ReferenceError, Team, Ward,
};
use domain::values::{DelayReasonCode, HospitalCode, TeamCode, WardCode};
use serde::de::DeserializeOwned;

use crate::store::Database;

/// Why reference data could not be changed or loaded.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceStoreError {
    /// The domain refused the change (unknown hospital, no beds, ...).
    #[error(transparent)]
    Refused(#[from] ReferenceError),
    /// The database failed.
    #[error("reference data could not be stored: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored row could not be read back.
    #[error("stored reference data is unreadable: {0}")]
    Corrupt(#[from] serde_json::Error),
}

/// The catalogue of one process, backed by the database.
#[derive(Debug)]
pub struct ReferenceStore {
    db: Database,
    current: RwLock<Arc<Catalogue>>,
    /// Serialises this process's changes, so two admins' edits are each
    /// validated against the other's result.
    writing: tokio::sync::Mutex<()>,
    /// When a look-up last missed and re-read the database.
    missed_at: std::sync::Mutex<Option<std::time::Instant>>,
}

/// A look-up that misses re-reads the database at most this often.
const MISS_RELOAD_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// A change to the catalogue.
#[derive(Debug, Clone)]
pub enum Change {
    /// Add or rename a hospital.
    Hospital(Hospital),
    /// Add or change a ward.
    Ward(Ward),
    /// Add or change a team.
    Team(Team),
    /// Add or change a care transfer hub.
    Hub(Hub),
}

impl Change {
    fn kind(&self) -> &'static str {
        match self {
            Change::Hospital(_) => "hospital",
            Change::Ward(_) => "ward",
            Change::Team(_) => "team",
            Change::Hub(_) => "hub",
        }
    }

    fn code(&self) -> &str {
        match self {
            Change::Hospital(h) => h.code.as_str(),
            Change::Ward(w) => w.code.as_str(),
            Change::Team(t) => t.code.as_str(),
            Change::Hub(h) => h.code.as_str(),
        }
    }

    fn body(&self) -> Result<String, serde_json::Error> {
        match self {
            Change::Hospital(h) => serde_json::to_string(h),
            Change::Ward(w) => serde_json::to_string(w),
            Change::Team(t) => serde_json::to_string(t),
            Change::Hub(h) => serde_json::to_string(h),
        }
    }

    fn apply(self, catalogue: &mut Catalogue) -> Result<(), ReferenceError> {
        match self {
            Change::Hospital(h) => {
                catalogue.put_hospital(h);
                Ok(())
            }
            Change::Ward(w) => catalogue.put_ward(w),
            Change::Team(t) => catalogue.put_team(t),
            Change::Hub(h) => catalogue.put_hub(h),
        }
    }
}

impl ReferenceStore {
    /// Loads the stored catalogue (on top of the shipped delay reasons).
    pub async fn load(db: Database) -> Result<Arc<Self>, ReferenceStoreError> {
        let catalogue = read(&db).await?;
        Ok(Arc::new(Self {
            db,
            current: RwLock::new(Arc::new(catalogue)),
            writing: tokio::sync::Mutex::new(()),
            missed_at: std::sync::Mutex::new(None),
        }))
    }

    /// The catalogue as it is now: a cheap, consistent snapshot.
    pub fn snapshot(&self) -> Arc<Catalogue> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn swap(&self, catalogue: Catalogue) {
        let next = Arc::new(catalogue);
        match self.current.write() {
            Ok(mut guard) => *guard = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
    }

    /// Re-reads the database: changes made by other processes appear.
    pub async fn reload(&self) -> Result<(), ReferenceStoreError> {
        let _writing = self.writing.lock().await;
        let catalogue = read(&self.db).await?;
        self.swap(catalogue);
        Ok(())
    }

    /// The catalogue, re-read from the database first when `knows` finds
    /// what the caller needs missing from it (at most once a second): a ward
    /// or team another process (`baton demo`, an admin on another node)
    /// added moments ago is found at once, not at the next reload.
    pub async fn snapshot_knowing(&self, knows: impl Fn(&Catalogue) -> bool) -> Arc<Catalogue> {
        let catalogue = self.snapshot();
        if knows(&catalogue) {
            return catalogue;
        }
        let due = {
            let mut missed = self.missed_at.lock().unwrap_or_else(|e| e.into_inner());
            let due = missed.is_none_or(|at| at.elapsed() >= MISS_RELOAD_EVERY);
            if due {
                *missed = Some(std::time::Instant::now());
            }
            due
        };
        if due {
            if let Err(error) = self.reload().await {
                tracing::debug!(%error, "could not re-read reference data after a miss");
            }
        }
        self.snapshot()
    }

    /// Validates and stores a change, then serves it.
    pub async fn put(&self, change: Change, by: &str) -> Result<(), ReferenceStoreError> {
        let _writing = self.writing.lock().await;
        // Validate against the freshest data, including other processes'.
        let mut next = read(&self.db).await?;
        change.clone().apply(&mut next)?;
        let (kind, code, body) = (change.kind(), change.code(), change.body()?);
        match &self.db {
            Database::Postgres(pool) => {
                sqlx::query(
                    "INSERT INTO reference_data (kind, code, body, updated_by) \
                     VALUES ($1, $2, $3::json, $4) ON CONFLICT (kind, code) DO UPDATE \
                     SET body = excluded.body, updated_by = excluded.updated_by, \
                     updated_at = now()",
                )
                .bind(kind)
                .bind(code)
                .bind(&body)
                .bind(by)
                .execute(pool)
                .await?;
            }
            Database::Sqlite(pool) => {
                sqlx::query(
                    "INSERT INTO reference_data (kind, code, body, updated_by, updated_at) \
                     VALUES (?, ?, ?, ?, ?) ON CONFLICT (kind, code) DO UPDATE \
                     SET body = excluded.body, updated_by = excluded.updated_by, \
                     updated_at = excluded.updated_at",
                )
                .bind(kind)
                .bind(code)
                .bind(&body)
                .bind(by)
                .bind(chrono::Utc::now().to_rfc3339())
                .execute(pool)
                .await?;
            }
        }
        self.swap(next);
        Ok(())
    }
}

/// Reads every stored row, hospitals before the wards and hubs that name
/// them.
async fn read(db: &Database) -> Result<Catalogue, ReferenceStoreError> {
    let rows: Vec<(String, String)> = match db {
        Database::Postgres(pool) => {
            sqlx::query_as("SELECT kind, body::text FROM reference_data ORDER BY code")
                .fetch_all(pool)
                .await?
        }
        Database::Sqlite(pool) => {
            sqlx::query_as("SELECT kind, body FROM reference_data ORDER BY code")
                .fetch_all(pool)
                .await?
        }
    };
    let mut catalogue = Catalogue::with_sitrep_reasons()?;
    for wanted in ["hospital", "ward", "team", "hub"] {
        for (kind, body) in rows.iter().filter(|(kind, _)| kind == wanted) {
            let change = match kind.as_str() {
                "hospital" => Change::Hospital(parse(body)?),
                "ward" => Change::Ward(parse(body)?),
                "team" => Change::Team(parse(body)?),
                _ => Change::Hub(parse(body)?),
            };
            if let Err(error) = change.apply(&mut catalogue) {
                // Stored rows were valid when written; keep serving the rest.
                tracing::warn!(%error, kind = %kind, "skipping a stored reference row");
            }
        }
    }
    Ok(catalogue)
}

fn parse<T: DeserializeOwned>(body: &str) -> Result<T, serde_json::Error> {
    serde_json::from_str(body)
}

impl ReferenceData for ReferenceStore {
    fn ward(&self, code: &WardCode) -> Option<Ward> {
        self.snapshot().ward(code)
    }

    fn team(&self, code: &TeamCode) -> Option<Team> {
        self.snapshot().team(code)
    }

    fn delay_reason(&self, code: &DelayReasonCode) -> Option<DelayReasonRef> {
        self.snapshot().delay_reason(code)
    }
}

/// A hospital's code, for callers that only hold a ward.
pub fn hospital_of(catalogue: &Catalogue, ward: &WardCode) -> Option<HospitalCode> {
    catalogue.ward(ward).map(|w| w.hospital)
}
