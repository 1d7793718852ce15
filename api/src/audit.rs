//! The access log: every read of patient-identifiable data, written before
//! the data is sent (a read that cannot be logged is not served), into
//! append-only tables of the event store's database.

use chrono::{DateTime, Utc};
use infra::store::Database;
use serde::Serialize;

use crate::error::ApiError;
use crate::extract::Caller;

/// One logged access, as `GET /api/v1/audit` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Access {
    /// When.
    pub at: DateTime<Utc>,
    /// Who (the token's `sub`).
    pub actor: String,
    /// Their name.
    pub actor_name: String,
    /// Their role.
    pub role: String,
    /// What they did (`read_spell`, `read_ward_board`, ...).
    pub action: String,
    /// What they read (a path).
    pub resource: String,
    /// From where.
    pub client: Option<String>,
    /// The request's id.
    pub request_id: Option<String>,
}

/// Logs that `caller` was shown these patients by `action` on `resource`.
pub async fn record(
    db: &Database,
    caller: &Caller,
    action: &str,
    resource: &str,
    nhs_numbers: &[String],
) -> Result<(), ApiError> {
    let p = &caller.principal;
    let role = p.role.to_string();
    let failed = |e: sqlx::Error| {
        if infra::store::is_unavailable(&e) {
            ApiError::Unavailable("the access log is unavailable; try again shortly".into())
        } else {
            ApiError::internal(e)
        }
    };
    let entry = Entry {
        at: Utc::now(),
        actor: &p.sub,
        actor_name: &p.name,
        role: &role,
        action,
        resource,
        client: caller.client.as_deref(),
        request_id: caller.request_id.as_deref(),
    };
    // The access and its patients in one transaction; the patients in one
    // statement where PostgreSQL can take them as an array.
    match db {
        Database::Postgres(pool) => {
            let mut tx = pool.begin().await.map_err(failed)?;
            let id = entry.insert(&mut *tx).await.map_err(failed)?;
            if !nhs_numbers.is_empty() {
                sqlx::query(
                    "INSERT INTO access_log_patients (access_id, nhs_number) \
                     SELECT $1, unnest($2::text[])",
                )
                .bind(id)
                .bind(nhs_numbers)
                .execute(&mut *tx)
                .await
                .map_err(failed)?;
            }
            tx.commit().await.map_err(failed)
        }
        Database::Sqlite(pool) => {
            let mut tx = infra::store::begin_sqlite_write(pool)
                .await
                .map_err(failed)?;
            let id = entry.insert(&mut *tx).await.map_err(failed)?;
            for nhs_number in nhs_numbers {
                sqlx::query(
                    "INSERT INTO access_log_patients (access_id, nhs_number) VALUES ($1, $2)",
                )
                .bind(id)
                .bind(nhs_number)
                .execute(&mut *tx)
                .await
                .map_err(failed)?;
            }
            tx.commit().await.map_err(failed)
        }
    }
}

/// One access, as it is written.
struct Entry<'a> {
    at: DateTime<Utc>,
    actor: &'a str,
    actor_name: &'a str,
    role: &'a str,
    action: &'a str,
    resource: &'a str,
    client: Option<&'a str>,
    request_id: Option<&'a str>,
}

impl Entry<'_> {
    /// Writes the access and answers its id. One text for both databases:
    /// the time is Baton's on both, as SQLite has no `now()` default.
    async fn insert<'e, DB>(
        &self,
        executor: impl sqlx::Executor<'e, Database = DB>,
    ) -> Result<i64, sqlx::Error>
    where
        DB: sqlx::Database,
        for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
        for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        for<'q> Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        for<'q> DateTime<Utc>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        for<'r> (i64,): sqlx::FromRow<'r, DB::Row>,
    {
        sqlx::query_scalar(
            "INSERT INTO access_log (at, actor, actor_name, role, action, resource, client, \
             request_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(self.at)
        .bind(self.actor)
        .bind(self.actor_name)
        .bind(self.role)
        .bind(self.action)
        .bind(self.resource)
        .bind(self.client)
        .bind(self.request_id)
        .fetch_one(executor)
        .await
    }
}

/// Who was shown this patient, newest first.
pub async fn accesses_to(
    db: &Database,
    nhs_number: &str,
    limit: i64,
) -> Result<Vec<Access>, ApiError> {
    type Row = (
        DateTime<Utc>,
        String,
        String,
        String,
        String,
        String,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = infra::on_either_database!(db, pool => {
        sqlx::query_as(
            "SELECT a.at, a.actor, a.actor_name, a.role, a.action, a.resource, a.client, \
             a.request_id FROM access_log_patients p JOIN access_log a ON a.id = p.access_id \
             WHERE p.nhs_number = $1 ORDER BY a.id DESC LIMIT $2",
        )
        .bind(nhs_number)
        .bind(limit)
        .fetch_all(pool)
        .await
        .map_err(ApiError::internal)?
    });
    Ok(rows
        .into_iter()
        .map(
            |(at, actor, actor_name, role, action, resource, client, request_id)| Access {
                at,
                actor,
                actor_name,
                role,
                action,
                resource,
                client,
                request_id,
            },
        )
        .collect())
}
