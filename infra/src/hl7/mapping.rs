//! The PAS's locations as Baton's wards and beds: reference data an admin
//! edits. A bed mapped on its own wins; then its point of care mapped to a
//! ward (its bed as sent); then a point of care that is a Baton ward code
//! and a bed that is a bed label, as they are.

use serde::{Deserialize, Serialize};

use crate::store::Database;

/// One mapping row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocationMapping {
    /// PV1-3.1 as the PAS sends it.
    pub point_of_care: String,
    /// PV1-3.3; empty for the whole point of care.
    #[serde(default)]
    pub pas_bed: String,
    /// Baton's ward.
    pub ward: String,
    /// Baton's bed label; none to keep the PAS's bed.
    #[serde(default)]
    pub bed: Option<String>,
}

/// Baton's ward and bed for a PAS location among `rows`, by the rules
/// above (not yet checked against the reference data).
pub fn resolve(rows: &[LocationMapping], point_of_care: &str, pas_bed: &str) -> (String, String) {
    let here = |m: &&LocationMapping| m.point_of_care == point_of_care;
    let exact = rows
        .iter()
        .filter(here)
        .find(|m| !m.pas_bed.is_empty() && m.pas_bed == pas_bed);
    let ward_level = rows.iter().filter(here).find(|m| m.pas_bed.is_empty());
    match exact.or(ward_level) {
        Some(m) => (
            m.ward.clone(),
            m.bed.clone().unwrap_or_else(|| pas_bed.to_owned()),
        ),
        None => (point_of_care.to_owned(), pas_bed.to_owned()),
    }
}

/// Every mapping, by point of care and bed.
pub async fn list(db: &Database) -> Result<Vec<LocationMapping>, sqlx::Error> {
    let rows: Vec<(String, String, String, Option<String>)> = crate::on_either_database!(db, pool => {
        sqlx::query_as(
            "SELECT point_of_care, pas_bed, ward, bed FROM hl7_locations \
             ORDER BY point_of_care, pas_bed",
        )
        .fetch_all(pool)
        .await?
    });
    Ok(rows
        .into_iter()
        .map(|(point_of_care, pas_bed, ward, bed)| LocationMapping {
            point_of_care,
            pas_bed,
            ward,
            bed,
        })
        .collect())
}

/// Sets (or replaces) a mapping.
pub async fn put(db: &Database, mapping: &LocationMapping, by: &str) -> Result<(), sqlx::Error> {
    crate::on_either_database!(db, pool => {
        sqlx::query(
            "INSERT INTO hl7_locations (point_of_care, pas_bed, ward, bed, updated_by, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (point_of_care, pas_bed) DO UPDATE \
             SET ward = excluded.ward, bed = excluded.bed, updated_by = excluded.updated_by, \
             updated_at = excluded.updated_at",
        )
        .bind(&mapping.point_of_care)
        .bind(&mapping.pas_bed)
        .bind(&mapping.ward)
        .bind(&mapping.bed)
        .bind(by)
        .bind(chrono::Utc::now())
        .execute(pool)
        .await?;
    });
    Ok(())
}

/// Removes a mapping (false when there was none).
pub async fn delete(
    db: &Database,
    point_of_care: &str,
    pas_bed: &str,
) -> Result<bool, sqlx::Error> {
    let done = crate::on_either_database!(db, pool => {
        sqlx::query("DELETE FROM hl7_locations WHERE point_of_care = $1 AND pas_bed = $2")
            .bind(point_of_care)
            .bind(pas_bed)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(done > 0)
}
