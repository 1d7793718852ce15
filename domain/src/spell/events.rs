//! What happened to a spell. Past-tense names; `event_type()` strings are a
//! public contract and never change. Each event carries what the boards need
//! (hospital, ward, bed, dates) so that projections never look anything up.

use std::borrow::Cow;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::aggregate::Spell;
use super::commands::Patient;
use crate::decider::{Decider, DomainEvent};
use crate::reference::DelayReasonRef;
use crate::reservation::{KeyFamily, Ledger, ReservationChange, ReservationKey};
use crate::upcast::{self, ReadError};
use crate::values::{
    BedLabel, DelayId, Destination, HospitalCode, Instant, NhsNumber, Pathway, SpellId, Text,
    VisitNumber, WardCode,
};

/// Where a patient is: hospital, ward and bed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    pub hospital: HospitalCode,
    pub ward: WardCode,
    pub bed: BedLabel,
}

impl Placement {
    fn bed_key(&self) -> ReservationKey {
        ReservationKey::Bed {
            ward: self.ward.clone(),
            bed: self.bed.clone(),
        }
    }
}

/// An event of a spell.
// Built once per command and serialised; boxing the large variant would
// only add noise to every match.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum SpellEvent {
    /// The patient was admitted.
    PatientAdmitted {
        /// The spell's id.
        spell_id: SpellId,
        patient: Patient,
        placement: Placement,
        admitted_at: Instant,
        /// The PAS's visit number (PV1-19) of the spell, when it came from
        /// the PAS. Version 2 of this event; version 1 had no such field and
        /// is read as `None` (see `upcast` below). The key is required in a
        /// version-2 payload, so only the upcast can supply its absence.
        #[serde(deserialize_with = "Option::deserialize")]
        visit_number: Option<VisitNumber>,
    },
    /// The patient moved within the hospital.
    PatientTransferred {
        from: Placement,
        to: Placement,
        at: Instant,
    },
    /// The expected date of discharge was set or revised.
    ExpectedDischargeDateSet {
        /// The new date.
        date: NaiveDate,
        /// The date it replaces.
        previous: Option<NaiveDate>,
    },
    /// A criteria-to-reside review was recorded.
    CriteriaToResideReviewed {
        /// Whether the patient meets the criteria to reside.
        meets_criteria_to_reside: bool,
        /// When the review was made.
        at: Instant,
        /// The discharge ready date in force after this review.
        discharge_ready_date: Option<NaiveDate>,
    },
    /// The discharge pathway was set or changed.
    DischargePathwaySet {
        pathway: Pathway,
        /// The pathway it replaces.
        previous: Option<Pathway>,
    },
    /// A delay was recorded.
    DelayRecorded {
        /// The delay's id within the spell.
        delay_id: DelayId,
        reason: DelayReasonRef,
        note: Option<Text>,
        /// When it began.
        at: Instant,
    },
    /// A delay was resolved.
    DelayResolved {
        delay_id: DelayId,
        /// Its reason, so boards can count without looking back.
        reason: DelayReasonRef,
        /// When it ended.
        at: Instant,
    },
    /// The patient was discharged.
    PatientDischarged {
        at: Instant,
        destination: Destination,
        /// The bed left.
        from: Placement,
        /// The patient, whose open-spell reservation is released.
        nhs_number: NhsNumber,
        /// The reported discharge ready date (start of the final period of
        /// not meeting the criteria to reside; none for same-day stays).
        discharge_ready_date: Option<NaiveDate>,
        /// Discharge date minus discharge ready date, in whole days.
        delay_days: u32,
    },
    /// The admission was entered in error.
    AdmissionCancelled {
        reason: Text,
        /// The bed it occupied.
        placement: Placement,
        /// The patient, whose open-spell reservation is released.
        nhs_number: NhsNumber,
    },
    /// The latest transfer was entered in error; the patient is back.
    TransferCancelled {
        reason: Text,
        /// The placement the cancelled transfer led to.
        from: Placement,
        /// The placement restored.
        back_to: Placement,
        /// When the cancelled transfer had happened.
        transfer_at: Instant,
    },
    /// The discharge was entered in error; the spell is open again.
    DischargeCancelled {
        reason: Text,
        /// The bed the patient is back in.
        placement: Placement,
        /// The patient, whose open-spell reservation is taken again.
        nhs_number: NhsNumber,
        /// When the cancelled discharge had happened.
        discharge_at: Instant,
    },
    /// The patient's details were corrected (ADT A08).
    PatientDetailsCorrected {
        /// The details now.
        patient: Patient,
        /// The details they replace.
        previous: Patient,
        /// The patient's current (or last) bed, for the boards.
        placement: Placement,
        /// Whether the spell is open, so the patient's open-spell
        /// reservation moves with a corrected NHS number.
        open: bool,
    },
}

impl DomainEvent for SpellEvent {
    fn event_type(&self) -> &'static str {
        match self {
            SpellEvent::PatientAdmitted { .. } => "PatientAdmitted",
            SpellEvent::PatientTransferred { .. } => "PatientTransferred",
            SpellEvent::ExpectedDischargeDateSet { .. } => "ExpectedDischargeDateSet",
            SpellEvent::CriteriaToResideReviewed { .. } => "CriteriaToResideReviewed",
            SpellEvent::DischargePathwaySet { .. } => "DischargePathwaySet",
            SpellEvent::DelayRecorded { .. } => "DelayRecorded",
            SpellEvent::DelayResolved { .. } => "DelayResolved",
            SpellEvent::PatientDischarged { .. } => "PatientDischarged",
            SpellEvent::AdmissionCancelled { .. } => "AdmissionCancelled",
            SpellEvent::TransferCancelled { .. } => "TransferCancelled",
            SpellEvent::DischargeCancelled { .. } => "DischargeCancelled",
            SpellEvent::PatientDetailsCorrected { .. } => "PatientDetailsCorrected",
        }
    }

    fn event_version(&self) -> &'static str {
        match self {
            SpellEvent::PatientAdmitted { .. } => "2",
            _ => "1",
        }
    }

    /// Versions of spell events: `PatientAdmitted` 1 (until issue 14) had
    /// no `visit_number` and is brought to 2 by stating its absence; every
    /// other type has only version 1.
    fn upcast<'a>(
        event_type: &str,
        version: &str,
        payload: Cow<'a, serde_json::Value>,
    ) -> Result<Cow<'a, serde_json::Value>, ReadError> {
        match (event_type, version) {
            ("PatientAdmitted", "1") => Ok(Cow::Owned(upcast::with_field(
                payload.into_owned(),
                "PatientAdmitted",
                "visit_number",
                serde_json::Value::Null,
            ))),
            _ => upcast::only_version(
                Self::current_version(event_type),
                event_type,
                version,
                payload,
            ),
        }
    }

    fn current_version(event_type: &str) -> &'static str {
        match event_type {
            "PatientAdmitted" => "2",
            _ => "1",
        }
    }

    fn reservations(&self, aggregate_id: &str) -> Vec<ReservationChange> {
        let holder = Ledger::holder_name(Spell::TYPE, aggregate_id);
        let open = || {
            SpellId::parse(aggregate_id)
                .ok()
                .map(|spell| ReservationKey::OpenSpell { spell })
        };
        let claim = |key| ReservationChange::Claim {
            key,
            holder: holder.clone(),
        };
        let release = |key| ReservationChange::Release {
            key,
            holder: holder.clone(),
        };
        let patient = |nhs_number: &NhsNumber| ReservationKey::PatientInHospital {
            nhs_number: nhs_number.clone(),
        };
        match self {
            SpellEvent::PatientAdmitted {
                patient: p,
                placement,
                ..
            } => [
                Some(placement.bed_key()),
                Some(patient(&p.nhs_number)),
                open(),
            ]
            .into_iter()
            .flatten()
            .map(claim)
            .collect(),
            SpellEvent::DischargeCancelled {
                placement,
                nhs_number,
                ..
            } => [Some(placement.bed_key()), Some(patient(nhs_number)), open()]
                .into_iter()
                .flatten()
                .map(claim)
                .collect(),
            SpellEvent::PatientTransferred { from, to, .. }
            | SpellEvent::TransferCancelled {
                from, back_to: to, ..
            } => vec![release(from.bed_key()), claim(to.bed_key())],
            SpellEvent::PatientDischarged {
                from: placement,
                nhs_number,
                ..
            } => [Some(placement.bed_key()), Some(patient(nhs_number)), open()]
                .into_iter()
                .flatten()
                .map(release)
                .collect(),
            // Referrals go on after a discharge (that is what they are for),
            // but an admission that never was must not leave teams working.
            SpellEvent::AdmissionCancelled {
                placement,
                nhs_number,
                ..
            } => [Some(placement.bed_key()), Some(patient(nhs_number)), open()]
                .into_iter()
                .flatten()
                .map(release)
                .chain(SpellId::parse(aggregate_id).ok().map(|spell| {
                    ReservationChange::RequireNone {
                        family: KeyFamily::ActiveReferralsOf { spell },
                    }
                }))
                .collect(),
            // A corrected NHS number moves the open-spell reservation: the
            // corrected number may not have another open spell.
            SpellEvent::PatientDetailsCorrected {
                patient: now,
                previous,
                open: true,
                ..
            } if now.nhs_number != previous.nhs_number => vec![
                release(patient(&previous.nhs_number)),
                claim(patient(&now.nhs_number)),
            ],
            SpellEvent::PatientDetailsCorrected { .. }
            | SpellEvent::ExpectedDischargeDateSet { .. }
            | SpellEvent::CriteriaToResideReviewed { .. }
            | SpellEvent::DischargePathwaySet { .. }
            | SpellEvent::DelayRecorded { .. }
            | SpellEvent::DelayResolved { .. } => Vec::new(),
        }
    }
}
