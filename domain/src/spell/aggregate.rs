//! The spell's state and its decisions. `decide` checks the spell's own
//! rules; rules that span spells (one patient per bed, one open spell per
//! NHS number) are declared by the events and enforced at commit, see
//! [`crate::reservation`].

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::commands::{Patient, SpellCommand};
use super::errors::SpellError;
use super::events::{Placement, SpellEvent};
use crate::decider::Decider;
use crate::reference::{DelayReasonRef, ReferenceData};
use crate::referral::ReferralSubject;
use crate::values::{
    days_between, is_in_future, local_date, BedLabel, DelayId, Destination, Instant, Pathway,
    SpellId, Text, VisitNumber, WardCode,
};

/// An inpatient spell: nothing until admitted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Spell(Option<Box<Stay>>);

/// Where a spell stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpellStatus {
    /// The patient is in hospital.
    Open,
    /// The patient has left.
    Discharged,
    /// The admission was entered in error.
    Cancelled,
}

/// A transfer in force (cancelled transfers are removed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    pub from: Placement,
    pub to: Placement,
    pub at: Instant,
}

/// A criteria-to-reside review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    /// When the review was made.
    pub at: Instant,
    /// Whether the patient met the criteria to reside.
    pub meets_criteria_to_reside: bool,
}

/// A recorded delay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delay {
    /// Its id within the spell.
    pub delay_id: DelayId,
    pub reason: DelayReasonRef,
    pub note: Option<Text>,
    /// When it began.
    pub at: Instant,
    /// When it ended, once resolved.
    pub resolved_at: Option<Instant>,
}

/// A discharge in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discharge {
    pub at: Instant,
    pub destination: Destination,
    /// The reported discharge ready date.
    pub discharge_ready_date: Option<NaiveDate>,
    pub delay_days: u32,
}

/// An admitted spell's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stay {
    /// The spell's id.
    pub spell_id: SpellId,
    /// Where it stands.
    pub status: SpellStatus,
    pub patient: Patient,
    pub admitted_at: Instant,
    /// The current (or last) bed.
    pub placement: Placement,
    /// Transfers in force, oldest first.
    pub transfers: Vec<Transfer>,
    /// Expected date of discharge.
    pub expected_discharge_date: Option<NaiveDate>,
    /// Reviews in order of when they were made.
    pub reviews: Vec<Review>,
    /// Start of the current period of not meeting the criteria to reside.
    pub discharge_ready_date: Option<NaiveDate>,
    pub pathway: Option<Pathway>,
    /// Delays in order of recording.
    pub delays: Vec<Delay>,
    /// The discharge, while in force.
    pub discharge: Option<Discharge>,
}

/// The discharge ready date implied by reviews in time order: the start of
/// the latest unbroken run of "does not meet", if the latest review is one.
fn discharge_ready_date(reviews: &[Review]) -> Option<NaiveDate> {
    let start = reviews
        .iter()
        .rev()
        .take_while(|r| !r.meets_criteria_to_reside)
        .last()?;
    Some(local_date(start.at))
}

/// Where a review made at `at` goes among reviews in time order (after any
/// made at the same instant, so recording order breaks ties).
fn review_position(reviews: &[Review], at: Instant) -> usize {
    reviews.partition_point(|r| r.at <= at)
}

impl Spell {
    /// The admitted spell's state, if admitted.
    pub fn stay(&self) -> Option<&Stay> {
        self.0.as_deref()
    }

    /// What a referral needs to know about this spell: only an open spell
    /// can be referred (the reservation re-checks it at commit).
    pub fn referral_subject(&self) -> Result<ReferralSubject, SpellError> {
        let stay = self.0.as_deref().ok_or(SpellError::UnknownSpell)?;
        match stay.status {
            SpellStatus::Open => Ok(ReferralSubject {
                spell_id: stay.spell_id.clone(),
                patient: stay.patient.clone(),
                placement: stay.placement.clone(),
            }),
            SpellStatus::Discharged => Err(SpellError::Discharged),
            SpellStatus::Cancelled => Err(SpellError::AdmissionCancelled),
        }
    }
}

/// The earliest date of birth a record can hold.
pub const EARLIEST_BIRTH: chrono::NaiveDate = match chrono::NaiveDate::from_ymd_opt(1880, 1, 1) {
    Some(date) => date,
    None => chrono::NaiveDate::MIN,
};
/// How far ahead an expected discharge date may be, in days from today.
pub const EDD_HORIZON_DAYS: i64 = 365;

/// What an admission records besides the ward it names.
struct Admission {
    spell_id: SpellId,
    patient: Patient,
    bed: BedLabel,
    admitted_at: Instant,
    visit_number: Option<VisitNumber>,
}

fn admit(
    admission: Admission,
    ward: &WardCode,
    now: Instant,
    refs: &dyn ReferenceData,
) -> Result<Vec<SpellEvent>, SpellError> {
    let Admission {
        spell_id,
        patient,
        bed,
        admitted_at,
        visit_number,
    } = admission;
    let placement = place(ward, bed, refs)?;
    if is_in_future(admitted_at, now) {
        return Err(SpellError::InFuture {
            field: "admitted_at",
        });
    }
    if patient.date_of_birth > local_date(admitted_at) {
        return Err(SpellError::BornAfterAdmission);
    }
    if patient.date_of_birth < EARLIEST_BIRTH {
        return Err(SpellError::BornTooLongAgo);
    }
    Ok(vec![SpellEvent::PatientAdmitted {
        spell_id,
        patient,
        placement,
        admitted_at,
        visit_number,
    }])
}

fn place(
    ward: &WardCode,
    bed: BedLabel,
    refs: &dyn ReferenceData,
) -> Result<Placement, SpellError> {
    let ward = refs.ward(ward).ok_or(SpellError::UnknownWard)?;
    if !ward.has_bed(&bed) {
        return Err(SpellError::UnknownBed);
    }
    Ok(Placement {
        hospital: ward.hospital,
        ward: ward.code,
        bed,
    })
}

impl Stay {
    /// Refuses clinical times in the future or before the admission.
    fn check_time(&self, field: &'static str, at: Instant, now: Instant) -> Result<(), SpellError> {
        if is_in_future(at, now) {
            return Err(SpellError::InFuture { field });
        }
        if at < self.admitted_at {
            return Err(SpellError::BeforeAdmission { field });
        }
        Ok(())
    }

    /// The latest clinical time recorded, and what it was.
    fn latest_time(&self) -> (Instant, &'static str) {
        let mut latest = (self.admitted_at, "admission");
        let candidates = self
            .transfers
            .iter()
            .map(|t| (t.at, "transfer"))
            .chain(self.reviews.iter().map(|r| (r.at, "criteria review")))
            .chain(self.delays.iter().map(|d| (d.at, "delay")))
            .chain(
                self.delays
                    .iter()
                    .filter_map(|d| d.resolved_at.map(|at| (at, "delay resolution"))),
            );
        for candidate in candidates {
            if candidate.0 > latest.0 {
                latest = candidate;
            }
        }
        latest
    }

    fn gate(&self, command: &SpellCommand) -> Result<(), SpellError> {
        use SpellCommand as C;
        match (self.status, command) {
            (_, C::AdmitPatient { .. }) => Err(SpellError::AlreadyAdmitted),
            (SpellStatus::Cancelled, _) => Err(SpellError::AdmissionCancelled),
            (SpellStatus::Discharged, C::CancelDischarge { .. }) => Ok(()),
            // The PAS corrects a patient's identity after discharge too.
            (SpellStatus::Discharged, C::CorrectPatientDetails { .. }) => Ok(()),
            (SpellStatus::Discharged, C::DischargePatient { .. }) => {
                Err(SpellError::AlreadyDischarged)
            }
            (SpellStatus::Discharged, C::CancelAdmission { .. }) => {
                Err(SpellError::CancelDischargeFirst)
            }
            (SpellStatus::Discharged, _) => Err(SpellError::Discharged),
            (SpellStatus::Open, C::CancelDischarge { .. }) => Err(SpellError::NotDischarged),
            (SpellStatus::Open, _) => Ok(()),
        }
    }

    fn decide(
        &self,
        command: SpellCommand,
        now: Instant,
        refs: &dyn ReferenceData,
    ) -> Result<Vec<SpellEvent>, SpellError> {
        self.gate(&command)?;
        let event = match command {
            SpellCommand::AdmitPatient { .. } => return Err(SpellError::AlreadyAdmitted),
            SpellCommand::TransferPatient { ward, bed, at } => {
                let to = place(&ward, bed, refs)?;
                if to.hospital != self.placement.hospital {
                    return Err(SpellError::TransferToAnotherHospital);
                }
                if to == self.placement {
                    return Err(SpellError::AlreadyInThatBed);
                }
                self.check_time("at", at, now)?;
                if self.transfers.last().is_some_and(|t| at < t.at) {
                    return Err(SpellError::OutOfOrder {
                        field: "at",
                        earlier: "transfer",
                    });
                }
                SpellEvent::PatientTransferred {
                    from: self.placement.clone(),
                    to,
                    at,
                }
            }
            SpellCommand::SetExpectedDischargeDate { date } => {
                if date < local_date(self.admitted_at) {
                    return Err(SpellError::BeforeAdmission { field: "date" });
                }
                if date > local_date(now) + chrono::Duration::days(EDD_HORIZON_DAYS) {
                    return Err(SpellError::TooFarAhead { field: "date" });
                }
                if self.expected_discharge_date == Some(date) {
                    return Ok(Vec::new());
                }
                SpellEvent::ExpectedDischargeDateSet {
                    date,
                    previous: self.expected_discharge_date,
                }
            }
            SpellCommand::RecordCriteriaReview {
                meets_criteria_to_reside,
                at,
            } => {
                self.check_time("at", at, now)?;
                let mut reviews = self.reviews.clone();
                reviews.insert(
                    review_position(&reviews, at),
                    Review {
                        at,
                        meets_criteria_to_reside,
                    },
                );
                SpellEvent::CriteriaToResideReviewed {
                    meets_criteria_to_reside,
                    at,
                    discharge_ready_date: discharge_ready_date(&reviews),
                }
            }
            SpellCommand::SetDischargePathway { pathway } => {
                if self.pathway == Some(pathway) {
                    return Ok(Vec::new());
                }
                SpellEvent::DischargePathwaySet {
                    pathway,
                    previous: self.pathway,
                }
            }
            SpellCommand::RecordDelay {
                reason_code,
                note,
                at,
            } => {
                let reason = refs
                    .delay_reason(&reason_code)
                    .ok_or(SpellError::UnknownDelayReason)?;
                self.check_time("at", at, now)?;
                let already_open = self
                    .delays
                    .iter()
                    .any(|d| d.resolved_at.is_none() && d.reason.code == reason.code);
                if already_open {
                    return Err(SpellError::DelayAlreadyOpen);
                }
                let delay_id = DelayId::parse(format!("D{}", self.delays.len() + 1))
                    .map_err(|_| SpellError::UnknownDelay)?;
                SpellEvent::DelayRecorded {
                    delay_id,
                    reason,
                    note,
                    at,
                }
            }
            SpellCommand::ResolveDelay { delay_id, at } => {
                let delay = self
                    .delays
                    .iter()
                    .find(|d| d.delay_id == delay_id)
                    .ok_or(SpellError::UnknownDelay)?;
                if delay.resolved_at.is_some() {
                    return Err(SpellError::DelayAlreadyResolved);
                }
                if is_in_future(at, now) {
                    return Err(SpellError::InFuture { field: "at" });
                }
                if at < delay.at {
                    return Err(SpellError::OutOfOrder {
                        field: "at",
                        earlier: "start of the delay",
                    });
                }
                SpellEvent::DelayResolved {
                    delay_id,
                    reason: delay.reason.clone(),
                    at,
                }
            }
            SpellCommand::DischargePatient { at, destination } => {
                self.check_time("at", at, now)?;
                let (latest, what) = self.latest_time();
                if at < latest {
                    return Err(SpellError::OutOfOrder {
                        field: "at",
                        earlier: what,
                    });
                }
                let (discharge_ready_date, delay_days) = self.reported_delay(at);
                SpellEvent::PatientDischarged {
                    at,
                    destination,
                    from: self.placement.clone(),
                    nhs_number: self.patient.nhs_number.clone(),
                    discharge_ready_date,
                    delay_days,
                }
            }
            SpellCommand::CancelAdmission { reason } => SpellEvent::AdmissionCancelled {
                reason,
                placement: self.placement.clone(),
                nhs_number: self.patient.nhs_number.clone(),
            },
            SpellCommand::CancelTransfer { reason } => {
                let last = self
                    .transfers
                    .last()
                    .ok_or(SpellError::NoTransferToCancel)?;
                SpellEvent::TransferCancelled {
                    reason,
                    from: self.placement.clone(),
                    back_to: last.from.clone(),
                    transfer_at: last.at,
                }
            }
            SpellCommand::CancelDischarge { reason } => {
                let discharge = self.discharge.as_ref().ok_or(SpellError::NotDischarged)?;
                SpellEvent::DischargeCancelled {
                    reason,
                    placement: self.placement.clone(),
                    nhs_number: self.patient.nhs_number.clone(),
                    discharge_at: discharge.at,
                }
            }
            SpellCommand::CorrectPatientDetails { patient } => {
                if patient == self.patient {
                    return Ok(Vec::new());
                }
                if patient.date_of_birth > local_date(self.admitted_at) {
                    return Err(SpellError::BornAfterAdmission);
                }
                if patient.date_of_birth < EARLIEST_BIRTH {
                    return Err(SpellError::BornTooLongAgo);
                }
                SpellEvent::PatientDetailsCorrected {
                    patient,
                    previous: self.patient.clone(),
                    placement: self.placement.clone(),
                    open: self.status == SpellStatus::Open,
                }
            }
        };
        Ok(vec![event])
    }

    /// The discharge ready date and delay days reported for a discharge at
    /// `at` (NHS England DRD guidance): none for a stay of no night; else the
    /// start of the final period of not meeting the criteria to reside, or
    /// the discharge date itself when the patient was never recorded so
    /// (ready the day they left: no delay).
    fn reported_delay(&self, at: Instant) -> (Option<NaiveDate>, u32) {
        let discharge_date = local_date(at);
        if discharge_date <= local_date(self.admitted_at) {
            return (None, 0);
        }
        let drd = self.discharge_ready_date.unwrap_or(discharge_date);
        let days = u32::try_from(days_between(drd, discharge_date).max(0)).unwrap_or(u32::MAX);
        (Some(drd), days)
    }

    fn evolve(&mut self, event: &SpellEvent) {
        match event {
            SpellEvent::PatientAdmitted { .. } => {}
            SpellEvent::PatientTransferred { from, to, at } => {
                self.transfers.push(Transfer {
                    from: from.clone(),
                    to: to.clone(),
                    at: *at,
                });
                self.placement = to.clone();
            }
            SpellEvent::ExpectedDischargeDateSet { date, .. } => {
                self.expected_discharge_date = Some(*date);
            }
            SpellEvent::CriteriaToResideReviewed {
                meets_criteria_to_reside,
                at,
                discharge_ready_date,
            } => {
                let position = review_position(&self.reviews, *at);
                self.reviews.insert(
                    position,
                    Review {
                        at: *at,
                        meets_criteria_to_reside: *meets_criteria_to_reside,
                    },
                );
                self.discharge_ready_date = *discharge_ready_date;
            }
            SpellEvent::DischargePathwaySet { pathway, .. } => self.pathway = Some(*pathway),
            SpellEvent::DelayRecorded {
                delay_id,
                reason,
                note,
                at,
            } => self.delays.push(Delay {
                delay_id: delay_id.clone(),
                reason: reason.clone(),
                note: note.clone(),
                at: *at,
                resolved_at: None,
            }),
            SpellEvent::DelayResolved { delay_id, at, .. } => {
                if let Some(delay) = self.delays.iter_mut().find(|d| &d.delay_id == delay_id) {
                    delay.resolved_at = Some(*at);
                }
            }
            SpellEvent::PatientDischarged {
                at,
                destination,
                discharge_ready_date,
                delay_days,
                ..
            } => {
                self.status = SpellStatus::Discharged;
                self.discharge = Some(Discharge {
                    at: *at,
                    destination: *destination,
                    discharge_ready_date: *discharge_ready_date,
                    delay_days: *delay_days,
                });
            }
            SpellEvent::AdmissionCancelled { .. } => self.status = SpellStatus::Cancelled,
            SpellEvent::TransferCancelled { back_to, .. } => {
                self.transfers.pop();
                self.placement = back_to.clone();
            }
            SpellEvent::DischargeCancelled { .. } => {
                self.status = SpellStatus::Open;
                self.discharge = None;
            }
            SpellEvent::PatientDetailsCorrected { patient, .. } => self.patient = patient.clone(),
        }
    }
}

impl Decider for Spell {
    const TYPE: &'static str = "spell";
    type Command = SpellCommand;
    type Event = SpellEvent;
    type Error = SpellError;
    type Services = dyn ReferenceData;

    fn decide(
        &self,
        command: SpellCommand,
        now: Instant,
        refs: &dyn ReferenceData,
    ) -> Result<Vec<SpellEvent>, SpellError> {
        match (self.0.as_deref(), command) {
            (
                None,
                SpellCommand::AdmitPatient {
                    spell_id,
                    patient,
                    ward,
                    bed,
                    admitted_at,
                    visit_number,
                },
            ) => admit(
                Admission {
                    spell_id,
                    patient,
                    bed,
                    admitted_at,
                    visit_number,
                },
                &ward,
                now,
                refs,
            ),
            (None, _) => Err(SpellError::UnknownSpell),
            (Some(stay), command) => stay.decide(command, now, refs),
        }
    }

    fn evolve(&mut self, event: &SpellEvent) {
        match (&mut self.0, event) {
            (
                None,
                SpellEvent::PatientAdmitted {
                    spell_id,
                    patient,
                    placement,
                    admitted_at,
                    ..
                },
            ) => {
                self.0 = Some(Box::new(Stay {
                    spell_id: spell_id.clone(),
                    status: SpellStatus::Open,
                    patient: patient.clone(),
                    admitted_at: *admitted_at,
                    placement: placement.clone(),
                    transfers: Vec::new(),
                    expected_discharge_date: None,
                    reviews: Vec::new(),
                    discharge_ready_date: None,
                    pathway: None,
                    delays: Vec::new(),
                    discharge: None,
                }));
            }
            (Some(stay), event) => stay.evolve(event),
            // An event other than an admission on an empty spell cannot have
            // been decided by this aggregate; folding ignores it.
            (None, _) => {}
        }
    }
}
