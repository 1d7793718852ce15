//! The one fold every board reads: open spells by ward and bed, what each
//! board row needs about them, and referrals by team. It holds facts only
//! (dates and instants); ages, "overdue" and delay days are computed when a
//! board is read, against the clock passed in, so a fold never goes stale at
//! midnight and tests fix the time by passing it.
//!
//! Each event is applied at most once per aggregate and sequence, so a
//! redelivered event changes nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDate;
use domain::reference::DelayReasonRef;
use domain::referral::{ReferralEvent, ReferralStatus};
use domain::spell::{Patient, Placement, SpellEvent};
use domain::values::{
    local_date, DelayId, HospitalCode, Instant, Pathway, ServiceKind, TeamCode, Text, WardCode,
};
use serde::{Deserialize, Serialize};

use crate::envelope::{Change, Envelope};

/// An open delay on a spell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenDelay {
    pub reason: DelayReasonRef,
    pub since: Instant,
}

/// What the boards know of a spell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpellFacts {
    pub patient: Patient,
    /// The current (or last) bed.
    pub placement: Placement,
    pub admitted_at: Instant,
    /// Expected date of discharge.
    pub expected_discharge_date: Option<NaiveDate>,
    /// Whether any criteria-to-reside review was recorded.
    pub reviewed: bool,
    /// Start of the current period of not meeting the criteria to reside.
    pub discharge_ready_date: Option<NaiveDate>,
    pub pathway: Option<Pathway>,
    /// Open delays by id.
    pub delays: BTreeMap<DelayId, OpenDelay>,
    /// When discharged, while the discharge stands.
    pub discharged_at: Option<Instant>,
}

/// What the boards know of a referral.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferralFacts {
    pub spell_id: String,
    /// The patient (minimum detail for the team).
    pub patient: Patient,
    /// Where the patient was when referred.
    pub placement: Placement,
    pub team: TeamCode,
    pub service: ServiceKind,
    pub pathway: Pathway,
    pub status: ReferralStatus,
    pub raised_at: Instant,
    /// When acknowledgement is due.
    pub respond_by: Instant,
    /// When acknowledged (explicitly or by answering).
    pub acknowledged_at: Option<Instant>,
    pub escalated_at: Option<Instant>,
    /// Planned start, once accepted.
    pub planned_start: Option<NaiveDate>,
    /// What the ward told the team (none in checkpoints written before it
    /// was kept: a rebuild fills it in).
    #[serde(default)]
    pub summary: Option<Text>,
    /// When its last event was recorded (none in checkpoints written
    /// before it was kept: a rebuild fills it in).
    #[serde(default)]
    pub updated_at: Option<Instant>,
}

/// A ward's running figures, so totals are read without walking its spells
/// (the system board covers every ward in England: 100,000 spells).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WardAggregate {
    pub occupied: u32,
    /// Open spells by discharge ready date (NCTR patients).
    pub ready_since: BTreeMap<NaiveDate, u32>,
    /// Open spells by expected date of discharge.
    pub expected: BTreeMap<NaiveDate, u32>,
}

fn bump(map: &mut BTreeMap<NaiveDate, u32>, date: NaiveDate, by: i64) {
    let count = map.entry(date).or_default();
    *count = u32::try_from((i64::from(*count) + by).max(0)).unwrap_or(0);
    if *count == 0 {
        map.remove(&date);
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Flow {
    /// Spells whose admission stands (open or discharged).
    spells: HashMap<String, SpellFacts>,
    /// Open spells by ward, then bed.
    beds: BTreeMap<WardCode, BTreeMap<String, String>>,
    /// Discharges that stand, by ward and English date.
    discharges: BTreeMap<WardCode, BTreeMap<NaiveDate, u32>>,
    /// Referrals by id.
    referrals: HashMap<String, ReferralFacts>,
    /// Referral ids by team.
    by_team: BTreeMap<TeamCode, BTreeSet<String>>,
    /// Referral ids by spell.
    by_spell: HashMap<String, BTreeSet<String>>,
    /// The last sequence applied per aggregate, keyed `type/id`.
    applied: HashMap<String, u64>,
    /// Running figures per ward, kept equal to what walking its spells gives.
    aggregates: BTreeMap<WardCode, WardAggregate>,
    /// Users' access as granted or revoked in Baton.
    #[serde(default)]
    access: crate::access::AccessList,
}

impl Flow {
    /// Applies one event; returns false (and changes nothing) when that
    /// aggregate's event at that sequence, or a later one, was applied already.
    pub fn apply(&mut self, envelope: &Envelope) -> bool {
        let key = format!("{}/{}", envelope.aggregate_type(), envelope.aggregate_id);
        if self
            .applied
            .get(&key)
            .is_some_and(|last| *last >= envelope.sequence)
        {
            return false;
        }
        self.applied.insert(key, envelope.sequence);
        match &envelope.change {
            Change::Spell(event) => self.apply_spell(&envelope.aggregate_id, event),
            Change::Referral(event) => {
                self.apply_referral(&envelope.aggregate_id, event);
                if let Some(referral) = self.referrals.get_mut(&envelope.aggregate_id) {
                    referral.updated_at = Some(envelope.recorded_at);
                }
            }
            Change::Access(event) => {
                self.access
                    .apply(envelope.sequence, &envelope.by, envelope.recorded_at, event)
            }
        }
        true
    }

    /// Users' access as granted or revoked in Baton.
    pub fn access(&self) -> &crate::access::AccessList {
        &self.access
    }

    /// The last sequence applied for an aggregate (0 if none).
    pub fn applied(&self, aggregate_type: &str, aggregate_id: &str) -> u64 {
        self.applied
            .get(&format!("{aggregate_type}/{aggregate_id}"))
            .copied()
            .unwrap_or(0)
    }

    fn seat(&mut self, id: &str, placement: &Placement) {
        self.beds
            .entry(placement.ward.clone())
            .or_default()
            .insert(placement.bed.to_string(), id.to_owned());
    }

    fn unseat(&mut self, id: &str, placement: &Placement) {
        if let Some(ward) = self.beds.get_mut(&placement.ward) {
            if ward
                .get(placement.bed.as_str())
                .is_some_and(|holder| holder == id)
            {
                ward.remove(placement.bed.as_str());
            }
            if ward.is_empty() {
                self.beds.remove(&placement.ward);
            }
        }
    }

    fn count_discharge(&mut self, ward: &WardCode, at: Instant, by: i64) {
        let date = local_date(at);
        let per_ward = self.discharges.entry(ward.clone()).or_default();
        let count = per_ward.entry(date).or_default();
        *count = u32::try_from((i64::from(*count) + by).max(0)).unwrap_or(0);
        if *count == 0 {
            per_ward.remove(&date);
        }
        if per_ward.is_empty() {
            self.discharges.remove(ward);
        }
    }

    /// Adds (`by` = 1) or removes (-1) an open spell's share of its ward's
    /// running figures. Every spell event is applied between a removal and
    /// an addition, so the figures follow whatever the event changed.
    fn account(&mut self, id: &str, by: i64) {
        let Some(spell) = self.spells.get(id) else {
            return;
        };
        if spell.discharged_at.is_some() {
            return;
        }
        let ward = spell.placement.ward.clone();
        let ready = spell.discharge_ready_date;
        let expected = spell.expected_discharge_date;
        let aggregate = self.aggregates.entry(ward.clone()).or_default();
        aggregate.occupied =
            u32::try_from((i64::from(aggregate.occupied) + by).max(0)).unwrap_or(0);
        if let Some(date) = ready {
            bump(&mut aggregate.ready_since, date, by);
        }
        if let Some(date) = expected {
            bump(&mut aggregate.expected, date, by);
        }
        if aggregate.occupied == 0
            && aggregate.ready_since.is_empty()
            && aggregate.expected.is_empty()
        {
            self.aggregates.remove(&ward);
        }
    }

    fn apply_spell(&mut self, id: &str, event: &SpellEvent) {
        self.account(id, -1);
        self.change_spell(id, event);
        self.account(id, 1);
    }

    fn change_spell(&mut self, id: &str, event: &SpellEvent) {
        match event {
            SpellEvent::PatientAdmitted {
                patient,
                placement,
                admitted_at,
                ..
            } => {
                self.spells.insert(
                    id.to_owned(),
                    SpellFacts {
                        patient: patient.clone(),
                        placement: placement.clone(),
                        admitted_at: *admitted_at,
                        expected_discharge_date: None,
                        reviewed: false,
                        discharge_ready_date: None,
                        pathway: None,
                        delays: BTreeMap::new(),
                        discharged_at: None,
                    },
                );
                self.seat(id, placement);
            }
            SpellEvent::PatientTransferred { from, to, .. }
            | SpellEvent::TransferCancelled {
                from, back_to: to, ..
            } => {
                self.unseat(id, from);
                self.seat(id, to);
                if let Some(spell) = self.spells.get_mut(id) {
                    spell.placement = to.clone();
                }
            }
            SpellEvent::ExpectedDischargeDateSet { date, .. } => {
                if let Some(spell) = self.spells.get_mut(id) {
                    spell.expected_discharge_date = Some(*date);
                }
            }
            SpellEvent::CriteriaToResideReviewed {
                discharge_ready_date,
                ..
            } => {
                if let Some(spell) = self.spells.get_mut(id) {
                    spell.reviewed = true;
                    spell.discharge_ready_date = *discharge_ready_date;
                }
            }
            SpellEvent::DischargePathwaySet { pathway, .. } => {
                if let Some(spell) = self.spells.get_mut(id) {
                    spell.pathway = Some(*pathway);
                }
            }
            SpellEvent::DelayRecorded {
                delay_id,
                reason,
                at,
                ..
            } => {
                if let Some(spell) = self.spells.get_mut(id) {
                    spell.delays.insert(
                        delay_id.clone(),
                        OpenDelay {
                            reason: reason.clone(),
                            since: *at,
                        },
                    );
                }
            }
            SpellEvent::DelayResolved { delay_id, .. } => {
                if let Some(spell) = self.spells.get_mut(id) {
                    spell.delays.remove(delay_id);
                }
            }
            SpellEvent::PatientDischarged { at, from, .. } => {
                self.unseat(id, from);
                self.count_discharge(&from.ward, *at, 1);
                if let Some(spell) = self.spells.get_mut(id) {
                    spell.discharged_at = Some(*at);
                }
            }
            SpellEvent::AdmissionCancelled { placement, .. } => {
                self.unseat(id, placement);
                self.spells.remove(id);
            }
            SpellEvent::DischargeCancelled {
                placement,
                discharge_at,
                ..
            } => {
                self.count_discharge(&placement.ward, *discharge_at, -1);
                self.seat(id, placement);
                if let Some(spell) = self.spells.get_mut(id) {
                    spell.discharged_at = None;
                }
            }
            // Every board shows the corrected patient: the spell's row and
            // each referral of the spell (the team and hub boards).
            SpellEvent::PatientDetailsCorrected { patient, .. } => {
                if let Some(spell) = self.spells.get_mut(id) {
                    spell.patient = patient.clone();
                }
                for referral in self.by_spell.get(id).into_iter().flatten() {
                    if let Some(facts) = self.referrals.get_mut(referral) {
                        facts.patient = patient.clone();
                    }
                }
            }
        }
    }

    fn apply_referral(&mut self, id: &str, event: &ReferralEvent) {
        use ReferralStatus as S;
        if let ReferralEvent::ReferralRaised {
            subject,
            team,
            service,
            pathway,
            raised_at,
            respond_by,
            summary,
            ..
        } = event
        {
            self.referrals.insert(
                id.to_owned(),
                ReferralFacts {
                    spell_id: subject.spell_id.to_string(),
                    patient: subject.patient.clone(),
                    placement: subject.placement.clone(),
                    team: team.clone(),
                    service: *service,
                    pathway: *pathway,
                    status: S::Requested,
                    raised_at: *raised_at,
                    respond_by: *respond_by,
                    acknowledged_at: None,
                    escalated_at: None,
                    planned_start: None,
                    summary: Some(summary.clone()),
                    updated_at: None,
                },
            );
            self.by_team
                .entry(team.clone())
                .or_default()
                .insert(id.to_owned());
            self.by_spell
                .entry(subject.spell_id.to_string())
                .or_default()
                .insert(id.to_owned());
            return;
        }
        let Some(referral) = self.referrals.get_mut(id) else {
            return;
        };
        let mut acknowledge = |at: &Instant| {
            referral.acknowledged_at.get_or_insert(*at);
        };
        match event {
            ReferralEvent::ReferralRaised { .. } => {}
            ReferralEvent::ReferralAcknowledged { at } => {
                acknowledge(at);
                referral.status = S::Received;
            }
            ReferralEvent::ReferralAccepted { planned_start, at } => {
                acknowledge(at);
                referral.status = S::Accepted;
                referral.planned_start = Some(*planned_start);
            }
            ReferralEvent::ReferralDeclined { at, .. } => {
                acknowledge(at);
                referral.status = S::Rejected;
            }
            ReferralEvent::InformationRequested { at, .. } => {
                acknowledge(at);
                referral.status = S::OnHold;
            }
            ReferralEvent::InformationProvided { .. } => referral.status = S::Received,
            ReferralEvent::ReferralWithdrawn { .. } => referral.status = S::Cancelled,
            ReferralEvent::CareStarted { .. } => referral.status = S::Completed,
            ReferralEvent::ReferralEscalated { at, .. } => referral.escalated_at = Some(*at),
        }
    }

    /// Open spells on a ward, by bed label.
    pub fn ward_beds(&self, ward: &WardCode) -> impl Iterator<Item = (&str, &str, &SpellFacts)> {
        self.beds
            .get(ward)
            .into_iter()
            .flat_map(|beds| beds.iter())
            .filter_map(|(bed, id)| self.spells.get(id).map(|s| (bed.as_str(), id.as_str(), s)))
    }

    /// A spell whose admission stands (open or discharged).
    pub fn spell(&self, id: &str) -> Option<&SpellFacts> {
        self.spells.get(id)
    }

    /// Every spell whose admission stands (open or discharged), by id.
    pub fn spells(&self) -> impl Iterator<Item = (&str, &SpellFacts)> {
        self.spells.iter().map(|(id, s)| (id.as_str(), s))
    }

    /// A ward's running figures.
    pub fn aggregate(&self, ward: &WardCode) -> Option<&WardAggregate> {
        self.aggregates.get(ward)
    }

    /// Discharges on a ward on an English date.
    pub fn discharges_on(&self, ward: &WardCode, date: NaiveDate) -> u32 {
        self.discharges
            .get(ward)
            .and_then(|d| d.get(&date))
            .copied()
            .unwrap_or(0)
    }

    /// Wards with open spells or discharges, with the hospital of each.
    pub fn wards_seen(&self) -> BTreeMap<WardCode, HospitalCode> {
        let mut wards = BTreeMap::new();
        for spell in self.spells.values() {
            wards
                .entry(spell.placement.ward.clone())
                .or_insert_with(|| spell.placement.hospital.clone());
        }
        wards
    }

    /// A spell's referrals.
    pub fn referrals_of(&self, spell_id: &str) -> impl Iterator<Item = (&str, &ReferralFacts)> {
        self.by_spell
            .get(spell_id)
            .into_iter()
            .flat_map(|ids| ids.iter())
            .filter_map(|id| self.referrals.get(id).map(|r| (id.as_str(), r)))
    }

    /// A team's referrals.
    pub fn referrals_for(&self, team: &TeamCode) -> impl Iterator<Item = (&str, &ReferralFacts)> {
        self.by_team
            .get(team)
            .into_iter()
            .flat_map(|ids| ids.iter())
            .filter_map(|id| self.referrals.get(id).map(|r| (id.as_str(), r)))
    }

    /// Teams with referrals.
    pub fn teams_seen(&self) -> impl Iterator<Item = &TeamCode> {
        self.by_team.keys()
    }

    /// A spell's current (or last) placement.
    pub fn placement_of(&self, spell_id: &str) -> Option<&Placement> {
        self.spells.get(spell_id).map(|s| &s.placement)
    }

    /// A referral's facts.
    pub fn referral(&self, id: &str) -> Option<&ReferralFacts> {
        self.referrals.get(id)
    }

    /// Every referral, for the SLA clock.
    pub fn referrals(&self) -> impl Iterator<Item = (&str, &ReferralFacts)> {
        self.referrals.iter().map(|(id, r)| (id.as_str(), r))
    }
}
