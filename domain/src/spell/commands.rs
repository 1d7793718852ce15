//! What ward staff (or a patient administration system feed) ask of a spell.
//! Names are imperative; each maps to one HL7 v2 ADT trigger or ward action.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::values::{
    BedLabel, DelayId, DelayReasonCode, Destination, Instant, NhsNumber, Pathway, PersonName,
    SpellId, Text, VisitNumber, WardCode,
};

/// The patient as the admitting ward records them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Patient {
    /// NHS number (valid by construction).
    pub nhs_number: NhsNumber,
    pub family_name: PersonName,
    pub given_name: PersonName,
    /// Date of birth.
    pub date_of_birth: NaiveDate,
}

/// A command to a spell.
// Built once per command and serialised; boxing the large variant would
// only add noise to every match.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum SpellCommand {
    /// ADT A01: the patient is admitted to a bed.
    AdmitPatient {
        /// The new spell's id, chosen by the caller so retries are idempotent.
        spell_id: SpellId,
        /// Who is admitted.
        patient: Patient,
        /// To which ward.
        ward: WardCode,
        /// To which bed.
        bed: BedLabel,
        admitted_at: Instant,
        /// The PAS's visit number (PV1-19), when the admission comes from
        /// its feed; none when a ward enters it.
        visit_number: Option<VisitNumber>,
    },
    /// ADT A02: the patient moves ward or bed within the hospital.
    TransferPatient {
        /// The new ward.
        ward: WardCode,
        /// The new bed.
        bed: BedLabel,
        at: Instant,
    },
    /// The ward round sets or revises the expected date of discharge.
    SetExpectedDischargeDate {
        /// The expected date.
        date: NaiveDate,
    },
    /// The daily criteria-to-reside review.
    RecordCriteriaReview {
        /// Whether the patient still meets the criteria to reside.
        meets_criteria_to_reside: bool,
        /// When the review was made.
        at: Instant,
    },
    /// Sets or changes the discharge pathway.
    SetDischargePathway { pathway: Pathway },
    /// Records why a discharge-ready patient is still here.
    RecordDelay {
        /// The reason's code in the current list.
        reason_code: DelayReasonCode,
        note: Option<Text>,
        /// When the delay began.
        at: Instant,
    },
    /// Records that a delay no longer holds.
    ResolveDelay {
        delay_id: DelayId,
        /// When it ended.
        at: Instant,
    },
    /// ADT A03: the patient leaves hospital.
    DischargePatient {
        at: Instant,
        destination: Destination,
    },
    /// ADT A11: the admission was entered in error.
    CancelAdmission { reason: Text },
    /// ADT A12: the latest transfer was entered in error.
    CancelTransfer { reason: Text },
    /// ADT A13: the discharge was entered in error; the spell is open again.
    CancelDischarge { reason: Text },
    /// ADT A08: the patient's details as the PAS now records them (a
    /// correction of identity: NHS number, names, date of birth).
    CorrectPatientDetails { patient: Patient },
}
