//! Go-live: a census of a hospital's current inpatients, the CSV every PAS
//! can export, brings their open spells in at once, before the ADT feed
//! takes over. Each row becomes the admission an A01 for that visit would
//! have made: the same spell id (from the sending facility and the visit
//! number, so the feed's later messages find it), the same location
//! mapping, the same rules; the actor is the census, named by the admin who
//! ran it.
//!
//! Idempotent: a visit whose spell is open already is left as it is, and
//! each admission is committed under an idempotency key (`census:<facility>`,
//! the visit number), so a census sent twice, or again after a crash
//! part-way, admits nobody twice. A dry run reports what an import would do
//! without changing anything: the domain's own decision on each row, beds
//! and patients already taken (by Baton's reservations) or claimed twice
//! in the file.

use std::collections::HashMap;

use chrono::NaiveDate;
use domain::reservation::ReservationKey;
use domain::spell::{Patient, Spell, SpellCommand};
use domain::values::{Instant, NhsNumber, PersonName, SpellId, VisitNumber};
use domain::{Actor, Decider, Issued};
use serde::Serialize;

use super::adt::{self, PasLocation};
use super::feed::{refusal, spell_id, AdtFeed, NotApplied};
use crate::commands::{CommandError, CommandOptions};
use crate::idempotency::Idempotency;

/// The columns a census has, in any order; others are ignored.
pub const COLUMNS: [&str; 8] = [
    "visit_number",
    "nhs_number",
    "family_name",
    "given_name",
    "date_of_birth",
    "point_of_care",
    "bed",
    "admitted_at",
];

/// The most rows one census takes (the largest English hospital has about
/// 2,000 beds).
pub const MAX_ROWS: usize = 5_000;

/// What became, or would become, of one row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Admitted now (or, in a dry run, would be).
    Admit {
        spell_id: String,
        ward: String,
        bed: String,
    },
    /// The visit's spell is open already: left as it is.
    AlreadyOpen { spell_id: String },
    /// Not admitted, and why: the column (when one is to blame), Baton's
    /// rule, and words.
    Refused {
        field: Option<String>,
        rule: String,
        message: String,
    },
}

/// One row's line in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// The row's line in the file (the header is line 1).
    pub line: u64,
    pub visit_number: String,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// What a census did, or would do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub dry_run: bool,
    /// Rows admitted (or that would be).
    pub admitted: usize,
    pub already_open: usize,
    pub refused: usize,
    pub rows: Vec<Row>,
}

/// A census that cannot be read at all, or a store that cannot be reached.
#[derive(Debug, thiserror::Error)]
pub enum CensusError {
    #[error("the file is not CSV with a header row: {0}")]
    NotCsv(String),
    #[error("the header lacks the columns {0:?}")]
    MissingColumns(Vec<&'static str>),
    #[error("a census takes at most {MAX_ROWS} rows")]
    TooManyRows,
    #[error("the event store or the database is unavailable")]
    Unavailable,
}

/// One row, read.
struct Admission {
    visit: VisitNumber,
    patient: Patient,
    location: PasLocation,
    at: Instant,
}

fn refused(field: Option<&str>, rule: &str, message: impl Into<String>) -> Outcome {
    Outcome::Refused {
        field: field.map(str::to_owned),
        rule: rule.to_owned(),
        message: message.into(),
    }
}

/// A feed refusal (`rule: words`) as a row's outcome.
fn from_ack(error: &super::AckError) -> Outcome {
    match error.text.split_once(": ") {
        Some((rule, words)) => refused(None, rule, words),
        None => refused(None, "refused", error.text.clone()),
    }
}

fn read_row(cells: &HashMap<&str, &str>) -> Result<Admission, Outcome> {
    let cell = |name: &'static str| {
        let value = cells.get(name).map_or("", |v| v.trim());
        if value.is_empty() {
            Err(refused(Some(name), "missing_value", "this column is empty"))
        } else {
            Ok(value)
        }
    };
    let invalid = |name: &str, why: String| refused(Some(name), "invalid_value", why);
    let visit = VisitNumber::parse(cell("visit_number")?)
        .map_err(|e| invalid("visit_number", e.to_string()))?;
    let nhs_number =
        NhsNumber::parse(cell("nhs_number")?).map_err(|e| invalid("nhs_number", e.to_string()))?;
    let family_name = PersonName::parse(cell("family_name")?)
        .map_err(|e| invalid("family_name", e.to_string()))?;
    let given_name =
        PersonName::parse(cell("given_name")?).map_err(|e| invalid("given_name", e.to_string()))?;
    let date_of_birth = NaiveDate::parse_from_str(cell("date_of_birth")?, "%Y-%m-%d")
        .map_err(|_| invalid("date_of_birth", "a date, YYYY-MM-DD".to_owned()))?;
    let at_text = cell("admitted_at")?;
    let at = chrono::DateTime::parse_from_rfc3339(at_text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .ok()
        .or_else(|| adt::timestamp(at_text))
        .ok_or_else(|| {
            invalid(
                "admitted_at",
                "a time: RFC 3339 (2026-12-01T09:30:00Z) or HL7 (202612010930)".to_owned(),
            )
        })?;
    Ok(Admission {
        visit,
        patient: Patient {
            nhs_number,
            family_name,
            given_name,
            date_of_birth,
        },
        location: PasLocation {
            point_of_care: cell("point_of_care")?.to_owned(),
            bed: cell("bed")?.to_owned(),
        },
        at,
    })
}

impl AdtFeed {
    /// Reads a census from `facility` (the PAS's MSH-4, as its ADT messages
    /// will send it) and admits every row not open already, or, with
    /// `dry_run`, reports what that would do.
    pub async fn census(
        &self,
        facility: &str,
        csv: &[u8],
        dry_run: bool,
        by: Actor,
        now: Instant,
    ) -> Result<Report, CensusError> {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .flexible(true)
            .from_reader(csv);
        let headers = reader
            .headers()
            .map_err(|e| CensusError::NotCsv(e.to_string()))?
            .clone();
        let missing: Vec<&'static str> = COLUMNS
            .into_iter()
            .filter(|c| !headers.iter().any(|h| h.eq_ignore_ascii_case(c)))
            .collect();
        if !missing.is_empty() {
            return Err(CensusError::MissingColumns(missing));
        }
        let mut records = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| CensusError::NotCsv(e.to_string()))?;
            if records.len() == MAX_ROWS {
                return Err(CensusError::TooManyRows);
            }
            records.push(record);
        }
        let mut report = Report {
            dry_run,
            admitted: 0,
            already_open: 0,
            refused: 0,
            rows: Vec::with_capacity(records.len()),
        };
        // Beds, patients and visits claimed by earlier rows of this file.
        let mut claimed: HashMap<String, String> = HashMap::new();
        for record in &records {
            let cells: HashMap<&str, &str> = headers
                .iter()
                .zip(record.iter())
                .filter_map(|(h, v)| {
                    COLUMNS
                        .iter()
                        .find(|c| h.eq_ignore_ascii_case(c))
                        .map(|c| (*c, v))
                })
                .collect();
            let line = record.position().map_or(0, |p| p.line());
            let visit_number = cells
                .get("visit_number")
                .map_or("", |v| v.trim())
                .to_owned();
            let outcome = match read_row(&cells) {
                Err(outcome) => outcome,
                Ok(row) => {
                    self.one(facility, row, dry_run, &by, now, &mut claimed)
                        .await?
                }
            };
            match outcome {
                Outcome::Admit { .. } => report.admitted += 1,
                Outcome::AlreadyOpen { .. } => report.already_open += 1,
                Outcome::Refused { .. } => report.refused += 1,
            }
            report.rows.push(Row {
                line,
                visit_number,
                outcome,
            });
        }
        Ok(report)
    }

    async fn one(
        &self,
        facility: &str,
        row: Admission,
        dry_run: bool,
        by: &Actor,
        now: Instant,
        claimed: &mut HashMap<String, String>,
    ) -> Result<Outcome, CensusError> {
        let Ok(id) = spell_id(facility, &row.visit) else {
            return Ok(refused(
                Some("visit_number"),
                "invalid_value",
                "no spell id",
            ));
        };
        let (ward, bed) = match self.place(&row.location).await {
            Ok(place) => place,
            Err(NotApplied::Error(error)) => return Ok(from_ack(&error)),
            Err(NotApplied::Unavailable) => return Err(CensusError::Unavailable),
        };
        match self.bus.load_spell(&id).await {
            Ok((spell, _)) if spell.stay().is_some() => {
                return Ok(Outcome::AlreadyOpen {
                    spell_id: id.to_string(),
                })
            }
            Ok(_) => {}
            Err(CommandError::Unavailable(_)) => return Err(CensusError::Unavailable),
            Err(error) => {
                tracing::error!(%error, "could not load a spell for the census");
                return Err(CensusError::Unavailable);
            }
        }
        let keys = [
            (
                ReservationKey::Bed {
                    ward: ward.clone(),
                    bed: bed.clone(),
                },
                "bed_occupied",
                "bed",
                "an earlier row of this census has this bed",
            ),
            (
                ReservationKey::PatientInHospital {
                    nhs_number: row.patient.nhs_number.clone(),
                },
                "patient_already_in_hospital",
                "nhs_number",
                "an earlier row of this census has this patient",
            ),
        ];
        for (key, rule, field, words) in &keys {
            if let Some(other) = claimed.get(&key.storage_key()) {
                if *other != id.to_string() {
                    return Ok(refused(Some(field), rule, *words));
                }
            }
        }
        let command = SpellCommand::AdmitPatient {
            spell_id: id.clone(),
            patient: row.patient,
            ward: ward.clone(),
            bed: bed.clone(),
            admitted_at: row.at,
            visit_number: Some(row.visit.clone()),
        };
        let outcome = if dry_run {
            self.would_admit(&id, command, now, &keys).await?
        } else {
            let options = CommandOptions {
                expected_version: None,
                idempotency: Some(Idempotency {
                    principal: format!("census:{facility}"),
                    key: row.visit.to_string(),
                    fingerprint: format!("census {facility} {}", row.visit),
                    extra: serde_json::json!({}),
                }),
                key_checked: false,
            };
            match self
                .bus
                .spell_with(&id, Issued::new(by.clone(), now, command), options)
                .await
            {
                Ok(_) => None,
                Err(error) => match refusal(error) {
                    NotApplied::Error(error) => Some(from_ack(&error)),
                    NotApplied::Unavailable => return Err(CensusError::Unavailable),
                },
            }
        };
        if let Some(refusal) = outcome {
            return Ok(refusal);
        }
        for (key, ..) in &keys {
            claimed.insert(key.storage_key(), id.to_string());
        }
        Ok(Outcome::Admit {
            spell_id: id.to_string(),
            ward: ward.to_string(),
            bed: bed.to_string(),
        })
    }

    /// The domain's decision on the admission, and the beds and patients
    /// Baton's reservations hold: a refusal, or none when it would admit.
    async fn would_admit(
        &self,
        id: &SpellId,
        command: SpellCommand,
        now: Instant,
        keys: &[(ReservationKey, &str, &str, &str)],
    ) -> Result<Option<Outcome>, CensusError> {
        let catalogue = self.reference.snapshot();
        if let Err(error) = Spell::default().decide(command, now, catalogue.as_ref()) {
            let rule: &'static str = (&error).into();
            return Ok(Some(refused(None, rule, error.to_string())));
        }
        for (key, rule, field, _) in keys {
            let holder = crate::store::reservation_holder(&self.db, &key.storage_key())
                .await
                .map_err(|error| {
                    tracing::warn!(%error, "could not read a reservation for the census");
                    CensusError::Unavailable
                })?;
            if holder.is_some_and(|holder| holder != id.as_str()) {
                let words = match *rule {
                    "bed_occupied" => "another patient is in this bed",
                    _ => "this patient is in hospital already",
                };
                return Ok(Some(refused(Some(field), rule, words)));
            }
        }
        Ok(None)
    }
}

/// The census as the actor of its admissions: the PAS that exported it,
/// and the admin who brought it in.
pub fn actor(facility: &str, admin_id: &str, admin_name: &str) -> Actor {
    Actor::new(
        format!("census:{facility}"),
        format!("PAS census at {facility} (imported by {admin_name}, {admin_id})"),
    )
}
