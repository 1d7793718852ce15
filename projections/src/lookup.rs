//! Finding a patient again: a search by NHS number or name, and a ward's
//! recent discharges. A discharge (or an admission, or a transfer) made in
//! error is corrected from these, so they include discharged spells, which
//! the fold keeps (see docs/architecture.md, Boards). Pure reads of the fold
//! at an explicit instant, like the boards.

use domain::values::{HospitalCode, Instant, WardCode};
use serde::Serialize;

use crate::boards::{patient_of, PatientView};
use crate::flow::{Flow, SpellFacts};

/// Most results a search answers.
pub const SEARCH_LIMIT: usize = 50;
/// Shortest name fragment searched for (an NHS number needs all ten digits
/// or at least this many of them).
pub const SHORTEST_QUERY: usize = 2;

/// Where a spell stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpellStatus {
    /// Admitted and not discharged.
    InHospital,
    /// Discharged (a discharge can still be cancelled).
    Discharged,
}

/// One spell found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpellRecord {
    pub spell_id: String,
    /// Its version (for `If-Match` on a correction).
    pub version: u64,
    #[serde(flatten)]
    pub patient: PatientView,
    /// In hospital or discharged.
    pub status: SpellStatus,
    pub hospital: String,
    /// Ward (the last one, for a discharged spell).
    pub ward: String,
    pub bed: String,
    pub admitted_at: Instant,
    /// Discharged, if so.
    pub discharged_at: Option<Instant>,
}

fn record(flow: &Flow, id: &str, spell: &SpellFacts) -> SpellRecord {
    SpellRecord {
        spell_id: id.to_owned(),
        version: flow.applied("spell", id),
        patient: patient_of(&spell.patient),
        status: if spell.discharged_at.is_some() {
            SpellStatus::Discharged
        } else {
            SpellStatus::InHospital
        },
        hospital: spell.placement.hospital.to_string(),
        ward: spell.placement.ward.to_string(),
        bed: spell.placement.bed.to_string(),
        admitted_at: spell.admitted_at,
        discharged_at: spell.discharged_at,
    }
}

/// What a search looks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// Digits: an NHS number, or the start of one.
    NhsNumber(String),
    /// Letters: part of a family or given name, any case.
    Name(String),
}

impl Query {
    /// Reads what a user typed: digits (spaces ignored) are an NHS number,
    /// anything else part of a name. `None` when too short to search.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
            return (digits.len() >= SHORTEST_QUERY).then_some(Query::NhsNumber(digits));
        }
        (text.chars().count() >= SHORTEST_QUERY).then(|| Query::Name(text.to_lowercase()))
    }

    fn matches(&self, spell: &SpellFacts) -> bool {
        match self {
            Query::NhsNumber(digits) => spell.patient.nhs_number.digits().starts_with(digits),
            Query::Name(fragment) => {
                spell
                    .patient
                    .family_name
                    .as_str()
                    .to_lowercase()
                    .contains(fragment)
                    || spell
                        .patient
                        .given_name
                        .as_str()
                        .to_lowercase()
                        .contains(fragment)
            }
        }
    }
}

/// Spells of `hospitals` (a ward's one, or its trust's) whose patient
/// matches `query`, in hospital first, then the most recently admitted
/// first; at most [`SEARCH_LIMIT`].
pub fn search(flow: &Flow, hospitals: &[HospitalCode], query: &Query) -> Vec<SpellRecord> {
    let mut found: Vec<SpellRecord> = flow
        .spells()
        .filter(|(_, s)| hospitals.contains(&s.placement.hospital) && query.matches(s))
        .map(|(id, s)| record(flow, id, s))
        .collect();
    found.sort_by(|a, b| {
        (
            a.status != SpellStatus::InHospital,
            std::cmp::Reverse(a.admitted_at),
        )
            .cmp(&(
                b.status != SpellStatus::InHospital,
                std::cmp::Reverse(b.admitted_at),
            ))
    });
    found.truncate(SEARCH_LIMIT);
    found
}

/// Spells discharged from `ward` at or after `since`, newest first.
pub fn recent_discharges(flow: &Flow, ward: &WardCode, since: Instant) -> Vec<SpellRecord> {
    let mut found: Vec<SpellRecord> = flow
        .spells()
        .filter(|(_, s)| &s.placement.ward == ward && s.discharged_at.is_some_and(|at| at >= since))
        .map(|(id, s)| record(flow, id, s))
        .collect();
    found.sort_by_key(|r| std::cmp::Reverse(r.discharged_at));
    found
}
