//! The held-message queue: every message the feed did not apply (answered
//! `AE` or `AR`), with why, from whom and when, until an admin retries it
//! and it applies. A retransmission of a held message (same sending
//! facility and control id) replaces its row rather than adding one.

use serde::Serialize;

use crate::store::Database;

/// A held message as admins see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldMessage {
    pub id: i64,
    pub received_at: chrono::DateTime<chrono::Utc>,
    /// MSH-3.
    pub sending_application: String,
    /// MSH-4.
    pub sending_facility: String,
    /// MSH-10 (empty when the message had none).
    pub control_id: String,
    /// MSH-9.2 (empty when unreadable).
    pub trigger: String,
    /// `AE` or `AR`.
    pub ack_code: String,
    /// The HL7 table 0357 code, or Baton's rule name when a rule refused.
    pub error_code: String,
    pub reason: String,
    /// The message as received.
    pub message: String,
}

/// What to hold.
#[derive(Debug, Clone)]
pub struct ToHold<'a> {
    pub sending_application: &'a str,
    pub sending_facility: &'a str,
    pub control_id: &'a str,
    pub trigger: &'a str,
    pub ack_code: &'a str,
    pub error_code: &'a str,
    pub reason: &'a str,
    pub message: &'a str,
}

type Row = (
    i64,
    chrono::DateTime<chrono::Utc>,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
);

fn from_row(row: Row) -> HeldMessage {
    let (
        id,
        received_at,
        sending_application,
        sending_facility,
        control_id,
        trigger,
        ack_code,
        error_code,
        reason,
        message,
    ) = row;
    HeldMessage {
        id,
        received_at,
        sending_application,
        sending_facility,
        control_id,
        trigger,
        ack_code,
        error_code,
        reason,
        message,
    }
}

const COLUMNS: &str = "id, received_at, sending_application, sending_facility, control_id, \
                       trigger, ack_code, error_code, reason, message";

/// Holds a message, replacing an earlier copy of it (same facility and
/// control id); answers its row's id.
pub async fn hold(db: &Database, held: &ToHold<'_>) -> Result<i64, sqlx::Error> {
    let now = chrono::Utc::now();
    crate::on_either_database!(db, pool => {
        let mut tx = pool.begin().await?;
        if !held.control_id.is_empty() {
            sqlx::query(
                "DELETE FROM hl7_held_messages WHERE sending_facility = $1 AND control_id = $2",
            )
            .bind(held.sending_facility)
            .bind(held.control_id)
            .execute(&mut *tx)
            .await?;
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO hl7_held_messages (received_at, sending_application, sending_facility, \
             control_id, trigger, ack_code, error_code, reason, message) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(now)
        .bind(held.sending_application)
        .bind(held.sending_facility)
        .bind(held.control_id)
        .bind(held.trigger)
        .bind(held.ack_code)
        .bind(held.error_code)
        .bind(held.reason)
        .bind(held.message)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    })
}

/// Every held message, oldest first.
pub async fn list(db: &Database) -> Result<Vec<HeldMessage>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM hl7_held_messages ORDER BY id");
    let rows: Vec<Row> = crate::on_either_database!(db, pool => {
        sqlx::query_as(&sql).fetch_all(pool).await?
    });
    Ok(rows.into_iter().map(from_row).collect())
}

/// One held message.
pub async fn get(db: &Database, id: i64) -> Result<Option<HeldMessage>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM hl7_held_messages WHERE id = $1");
    let row: Option<Row> = crate::on_either_database!(db, pool => {
        sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?
    });
    Ok(row.map(from_row))
}

/// Removes a held message once applied (false when it was not there).
pub async fn release(db: &Database, id: i64) -> Result<bool, sqlx::Error> {
    let done = crate::on_either_database!(db, pool => {
        sqlx::query("DELETE FROM hl7_held_messages WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(done > 0)
}

/// Whether any message is held (what lets the feed skip
/// [`release_applied`] for every message while none is).
pub async fn any(db: &Database) -> Result<bool, sqlx::Error> {
    let one: Option<i32> = crate::on_either_database!(db, pool => {
        sqlx::query_scalar("SELECT 1 FROM hl7_held_messages LIMIT 1")
            .fetch_optional(pool)
            .await?
    });
    Ok(one.is_some())
}

/// Removes the held copies of a message that has now been applied (a
/// retransmission that succeeded after the cause was fixed).
pub async fn release_applied(
    db: &Database,
    facility: &str,
    control_id: &str,
) -> Result<(), sqlx::Error> {
    crate::on_either_database!(db, pool => {
        sqlx::query(
            "DELETE FROM hl7_held_messages WHERE sending_facility = $1 AND control_id = $2",
        )
        .bind(facility)
        .bind(control_id)
        .execute(pool)
        .await?;
    });
    Ok(())
}
