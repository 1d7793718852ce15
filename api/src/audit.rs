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
    match db {
        Database::Postgres(pool) => {
            let mut tx = pool.begin().await.map_err(failed)?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO access_log (actor, actor_name, role, action, resource, client, \
                 request_id) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            )
            .bind(&p.sub)
            .bind(&p.name)
            .bind(&role)
            .bind(action)
            .bind(resource)
            .bind(&caller.client)
            .bind(&caller.request_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(failed)?;
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
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO access_log (at, actor, actor_name, role, action, resource, client, \
                 request_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            )
            .bind(Utc::now().to_rfc3339())
            .bind(&p.sub)
            .bind(&p.name)
            .bind(&role)
            .bind(action)
            .bind(resource)
            .bind(&caller.client)
            .bind(&caller.request_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(failed)?;
            for nhs_number in nhs_numbers {
                sqlx::query(
                    "INSERT INTO access_log_patients (access_id, nhs_number) VALUES (?, ?)",
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

/// Who was shown this patient, newest first.
pub async fn accesses_to(
    db: &Database,
    nhs_number: &str,
    limit: i64,
) -> Result<Vec<Access>, ApiError> {
    type Row = (
        String,
        String,
        String,
        String,
        String,
        String,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = match db {
        Database::Postgres(pool) => sqlx::query_as(
            "SELECT to_char(a.at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), \
             a.actor, a.actor_name, a.role, a.action, a.resource, a.client, a.request_id \
             FROM access_log_patients p JOIN access_log a ON a.id = p.access_id \
             WHERE p.nhs_number = $1 ORDER BY a.id DESC LIMIT $2",
        )
        .bind(nhs_number)
        .bind(limit)
        .fetch_all(pool)
        .await
        .map_err(ApiError::internal)?,
        Database::Sqlite(pool) => sqlx::query_as(
            "SELECT a.at, a.actor, a.actor_name, a.role, a.action, a.resource, a.client, \
             a.request_id FROM access_log_patients p JOIN access_log a ON a.id = p.access_id \
             WHERE p.nhs_number = ? ORDER BY a.id DESC LIMIT ?",
        )
        .bind(nhs_number)
        .bind(limit)
        .fetch_all(pool)
        .await
        .map_err(ApiError::internal)?,
    };
    Ok(rows
        .into_iter()
        .map(
            |(at, actor, actor_name, role, action, resource, client, request_id)| Access {
                at: DateTime::parse_from_rfc3339(&at)
                    .map(|t| t.with_timezone(&Utc))
                    .unwrap_or_default(),
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
