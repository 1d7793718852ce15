//! The boards, read from the fold at a given instant: ward, hospital,
//! system, team and care transfer hub. Field names follow the API contract
//! (the hub board is Baton's extension). The system board carries counts
//! only, never identities.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use domain::reference::{Hub, Team, Ward};
use domain::referral::ReferralStatus;
use domain::values::{
    days_between, local_date, HospitalCode, HubCode, Instant, Pathway, ServiceKind, TeamCode,
    WardCode,
};
use serde::Serialize;

use crate::flow::{Flow, ReferralFacts, SpellFacts};

/// The criteria-to-reside state shown on a bed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CriteriaToReside {
    /// No review recorded yet.
    NotReviewed,
    /// The latest review found the criteria met.
    Meets,
    /// The latest review found them no longer met (NCTR).
    DoesNotMeet,
}

/// The patient, for staff with a legitimate relationship.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PatientView {
    pub nhs_number: String,
    pub family_name: String,
    pub given_name: String,
    /// Date of birth.
    pub date_of_birth: NaiveDate,
}

/// An open delay on a bed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DelayView {
    /// Its id within the spell.
    pub delay_id: String,
    pub reason_code: String,
    pub reason: String,
    pub since: Instant,
}

/// A referral's state as a ward sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReferralBadge {
    pub referral_id: String,
    pub team: TeamCode,
    pub status: ReferralStatus,
    /// Unacknowledged past the team's SLA.
    pub sla_breached: bool,
}

/// One bed on the ward board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BedRow {
    pub bed: String,
    /// The spell in it, if any.
    pub spell_id: Option<String>,
    /// The patient (shown to the ward role only; the API removes it otherwise).
    pub patient: Option<PatientView>,
    pub admitted_at: Option<Instant>,
    /// Whole days since the admission date.
    pub days_in_hospital: Option<i64>,
    /// Expected date of discharge.
    pub expected_discharge_date: Option<NaiveDate>,
    /// The EDD has passed.
    pub edd_overdue: bool,
    /// Criteria to reside.
    pub criteria_to_reside: Option<CriteriaToReside>,
    /// Discharge ready date.
    pub discharge_ready_date: Option<NaiveDate>,
    /// Whole days since the discharge ready date.
    pub delay_days: Option<i64>,
    pub pathway: Option<Pathway>,
    pub open_delays: Vec<DelayView>,
    /// Referrals not yet ended.
    pub referrals: Vec<ReferralBadge>,
}

/// Totals of a ward board.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WardTotals {
    pub beds: u32,
    pub occupied: u32,
    pub free: u32,
    /// Patients with no criteria to reside.
    pub nctr: u32,
}

/// The ward bed-flow board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WardBoard {
    pub ward: WardCode,
    pub hospital: HospitalCode,
    pub totals: WardTotals,
    /// One row per bed.
    pub beds: Vec<BedRow>,
}

/// A ward's line on the hospital board (and the shape of its totals).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct FlowTotals {
    pub beds: u32,
    pub occupied: u32,
    pub free: u32,
    /// No criteria to reside.
    pub nctr: u32,
    /// Whole days lost: sum over open spells with a DRD of days since it.
    pub delay_days: i64,
    pub discharges_today: u32,
    /// Open spells whose EDD is today.
    pub edd_today: u32,
    /// Open spells whose EDD has passed.
    pub edd_overdue: u32,
}

impl FlowTotals {
    fn add(&mut self, other: &FlowTotals) {
        self.beds += other.beds;
        self.occupied += other.occupied;
        self.free += other.free;
        self.nctr += other.nctr;
        self.delay_days += other.delay_days;
        self.discharges_today += other.discharges_today;
        self.edd_today += other.edd_today;
        self.edd_overdue += other.edd_overdue;
    }
}

/// A ward line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WardLine {
    pub ward: WardCode,
    #[serde(flatten)]
    pub totals: FlowTotals,
}

/// The hospital flow board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HospitalBoard {
    pub hospital: HospitalCode,
    pub totals: FlowTotals,
    pub wards: Vec<WardLine>,
    /// Open delays by reason code.
    pub delays_by_reason: BTreeMap<String, u32>,
    /// Open spells by pathway.
    pub pathways: BTreeMap<Pathway, u32>,
}

/// A hospital line on the system board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HospitalLine {
    pub hospital: HospitalCode,
    #[serde(flatten)]
    pub totals: FlowTotals,
}

/// Handover waits of one team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TeamWaits {
    pub team: TeamCode,
    /// Referrals waiting for the team's answer (requested, received, on-hold).
    pub waiting: u32,
    /// Of those, unacknowledged past the SLA.
    pub breached: u32,
    /// Accepted and waiting to start.
    pub accepted: u32,
}

/// The system flow board: counts only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SystemBoard {
    pub totals: FlowTotals,
    pub hospitals: Vec<HospitalLine>,
    pub teams: Vec<TeamWaits>,
}

/// A referral on the team board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TeamRow {
    pub id: String,
    pub status: ReferralStatus,
    pub spell_id: String,
    /// Minutes since raised.
    pub age_minutes: i64,
    /// Unacknowledged past the SLA.
    pub sla_breached: bool,
    /// Minutes left to acknowledge (negative once breached); none once answered.
    pub sla_minutes_left: Option<i64>,
    /// Escalated by the SLA clock.
    pub escalated: bool,
    /// Service asked for.
    pub service: ServiceKind,
    pub pathway: Pathway,
    /// Patient (minimum detail).
    pub patient: PatientView,
    /// Hospital and ward when referred.
    pub hospital: HospitalCode,
    pub ward: WardCode,
    /// Planned start, once accepted.
    pub planned_start: Option<NaiveDate>,
    /// What the ward told the team.
    pub summary: Option<String>,
    /// Whether the patient is still in hospital: a discharge or a cancelled
    /// admission since the referral changes what the team should do.
    pub patient_status: PatientStatus,
    /// When the patient was discharged, if so.
    pub discharged_at: Option<Instant>,
}

/// Where a referred patient stands now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PatientStatus {
    /// Still in hospital.
    InHospital,
    /// Discharged since the referral was raised.
    Discharged,
    /// The admission was cancelled (entered in error): the ward should
    /// withdraw the referral.
    AdmissionCancelled,
}

/// The team handover board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TeamBoard {
    pub team: TeamCode,
    /// Referrals by status (all time).
    pub counts: BTreeMap<ReferralStatus, u32>,
    /// Referrals not yet ended: breached and escalated first, then oldest first.
    pub referrals: Vec<TeamRow>,
}

/// A referral of a discharge-ready patient, as the hub sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HubReferral {
    pub referral_id: String,
    pub team: TeamCode,
    pub service: ServiceKind,
    pub pathway: Pathway,
    pub status: ReferralStatus,
    pub raised_at: Instant,
    /// Unacknowledged past the team's SLA.
    pub sla_breached: bool,
    pub escalated: bool,
}

/// A discharge-ready patient (no criteria to reside) of one of the hub's
/// hospitals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HubRow {
    /// The spell: the row's identity, for live changes.
    pub id: String,
    pub patient: PatientView,
    pub hospital: HospitalCode,
    pub ward: WardCode,
    pub bed: String,
    /// When the patient stopped meeting the criteria to reside.
    pub discharge_ready_date: Option<NaiveDate>,
    /// Whole days since then.
    pub delay_days: Option<i64>,
    pub pathway: Option<Pathway>,
    pub open_delays: Vec<DelayView>,
    /// Every referral of the spell, open ones first, newest first.
    pub referrals: Vec<HubReferral>,
}

/// A care transfer hub's board: its hospitals' discharge-ready patients,
/// longest waiting first, each with its referrals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HubBoard {
    pub hub: HubCode,
    pub hospitals: Vec<HospitalCode>,
    /// How many patients are listed.
    pub nctr: u32,
    pub patients: Vec<HubRow>,
}

fn open_delays(spell: &SpellFacts) -> Vec<DelayView> {
    spell
        .delays
        .iter()
        .map(|(delay_id, d)| DelayView {
            delay_id: delay_id.to_string(),
            reason_code: d.reason.code.to_string(),
            reason: d.reason.label.clone(),
            since: d.since,
        })
        .collect()
}

fn patient_view(spell: &SpellFacts) -> PatientView {
    patient_of(&spell.patient)
}

pub(crate) fn patient_of(p: &domain::spell::Patient) -> PatientView {
    PatientView {
        nhs_number: p.nhs_number.digits(),
        family_name: p.family_name.to_string(),
        given_name: p.given_name.to_string(),
        date_of_birth: p.date_of_birth,
    }
}

fn is_waiting(status: ReferralStatus) -> bool {
    matches!(
        status,
        ReferralStatus::Requested | ReferralStatus::Received | ReferralStatus::OnHold
    )
}

/// Unacknowledged past its SLA.
pub fn sla_breached(referral: &ReferralFacts, now: Instant) -> bool {
    referral.status == ReferralStatus::Requested && now >= referral.respond_by
}

fn delay_days(spell: &SpellFacts, today: NaiveDate) -> Option<i64> {
    spell
        .discharge_ready_date
        .map(|drd| days_between(drd, today).max(0))
}

fn criteria(spell: &SpellFacts) -> CriteriaToReside {
    match (spell.reviewed, spell.discharge_ready_date) {
        (_, Some(_)) => CriteriaToReside::DoesNotMeet,
        (true, None) => CriteriaToReside::Meets,
        (false, None) => CriteriaToReside::NotReviewed,
    }
}

/// One day's figures, for the charts of the last 30 days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DayFigures {
    /// The English date.
    pub date: NaiveDate,
    /// Patients in hospital at the end of the day with no criteria to reside.
    pub nctr: u32,
    /// Their whole days since the discharge ready date, that day.
    pub delay_days: i64,
    /// Discharges that day.
    pub discharges: u32,
}

impl Flow {
    /// Figures per day for the `days` days up to `now`'s date, for one
    /// hospital or all. Computed from each spell's current facts (its
    /// discharge ready date and discharge), so corrections show as if the
    /// corrected event never happened; a DRD that was cleared and set again
    /// counts from its latest start.
    pub fn daily(
        &self,
        hospital: Option<&HospitalCode>,
        days: u32,
        now: Instant,
    ) -> Vec<DayFigures> {
        let end = local_date(now);
        let start = end - chrono::Duration::days(i64::from(days.max(1)) - 1);
        let mut out: Vec<DayFigures> = (0..i64::from(days.max(1)))
            .map(|i| DayFigures {
                date: start + chrono::Duration::days(i),
                nctr: 0,
                delay_days: 0,
                discharges: 0,
            })
            .collect();
        let index = |date: NaiveDate| usize::try_from(days_between(start, date)).ok();
        for (_, spell) in self.spells() {
            if hospital.is_some_and(|h| &spell.placement.hospital != h) {
                continue;
            }
            let left = spell.discharged_at.map(local_date);
            if let Some(i) = left.and_then(index) {
                if let Some(day) = out.get_mut(i) {
                    day.discharges += 1;
                }
            }
            let Some(ready) = spell.discharge_ready_date else {
                continue;
            };
            for day in out.iter_mut() {
                let in_hospital = left.is_none_or(|left| left > day.date);
                if ready <= day.date && in_hospital {
                    day.nctr += 1;
                    day.delay_days += days_between(ready, day.date);
                }
            }
        }
        out
    }

    /// The ward board at `now`. `ward` is the reference entry (for its beds).
    pub fn ward_board(&self, ward: &Ward, now: Instant) -> WardBoard {
        let today = local_date(now);
        let occupied: BTreeMap<&str, (&str, &SpellFacts)> = self
            .ward_beds(&ward.code)
            .map(|(bed, id, spell)| (bed, (id, spell)))
            .collect();
        let mut labels: Vec<String> = ward.bed_labels().map(|b| b.to_string()).collect();
        // A bed the reference data no longer lists still shows its patient.
        for bed in occupied.keys() {
            if !labels.iter().any(|l| l == bed) {
                labels.push((*bed).to_owned());
            }
        }
        let mut nctr = 0;
        let rows = labels
            .into_iter()
            .map(|bed| match occupied.get(bed.as_str()) {
                None => BedRow {
                    bed,
                    spell_id: None,
                    patient: None,
                    admitted_at: None,
                    days_in_hospital: None,
                    expected_discharge_date: None,
                    edd_overdue: false,
                    criteria_to_reside: None,
                    discharge_ready_date: None,
                    delay_days: None,
                    pathway: None,
                    open_delays: Vec::new(),
                    referrals: Vec::new(),
                },
                Some((id, spell)) => {
                    let ctr = criteria(spell);
                    if ctr == CriteriaToReside::DoesNotMeet {
                        nctr += 1;
                    }
                    BedRow {
                        bed,
                        spell_id: Some((*id).to_owned()),
                        patient: Some(patient_view(spell)),
                        admitted_at: Some(spell.admitted_at),
                        days_in_hospital: Some(
                            days_between(local_date(spell.admitted_at), today).max(0),
                        ),
                        expected_discharge_date: spell.expected_discharge_date,
                        edd_overdue: spell.expected_discharge_date.is_some_and(|d| d < today),
                        criteria_to_reside: Some(ctr),
                        discharge_ready_date: spell.discharge_ready_date,
                        delay_days: delay_days(spell, today),
                        pathway: spell.pathway,
                        open_delays: open_delays(spell),
                        referrals: self
                            .referrals_of(id)
                            .filter(|(_, r)| !r.status.is_final())
                            .map(|(rid, r)| ReferralBadge {
                                referral_id: rid.to_owned(),
                                team: r.team.clone(),
                                status: r.status,
                                sla_breached: sla_breached(r, now),
                            })
                            .collect(),
                    }
                }
            })
            .collect::<Vec<_>>();
        let beds = u32::try_from(rows.len()).unwrap_or(u32::MAX);
        let occupied = u32::try_from(occupied.len()).unwrap_or(u32::MAX);
        WardBoard {
            ward: ward.code.clone(),
            hospital: ward.hospital.clone(),
            totals: WardTotals {
                beds,
                occupied,
                free: beds.saturating_sub(occupied),
                nctr,
            },
            beds: rows,
        }
    }

    /// A ward's figures at `now`, from its running figures.
    pub fn ward_totals(&self, ward: &Ward, now: Instant) -> FlowTotals {
        let today = local_date(now);
        let mut t = FlowTotals {
            beds: u32::from(ward.beds),
            discharges_today: self.discharges_on(&ward.code, today),
            ..FlowTotals::default()
        };
        if let Some(aggregate) = self.aggregate(&ward.code) {
            t.occupied = aggregate.occupied;
            for (drd, count) in &aggregate.ready_since {
                t.nctr += count;
                t.delay_days += days_between(*drd, today).max(0) * i64::from(*count);
            }
            t.edd_today = aggregate.expected.get(&today).copied().unwrap_or(0);
            t.edd_overdue = aggregate.expected.range(..today).map(|(_, n)| n).sum();
        }
        t.beds = t.beds.max(t.occupied);
        t.free = t.beds - t.occupied;
        t
    }

    /// The hospital board at `now`, over the hospital's `wards`.
    pub fn hospital_board(
        &self,
        hospital: &HospitalCode,
        wards: &[Ward],
        now: Instant,
    ) -> HospitalBoard {
        let mut totals = FlowTotals::default();
        let mut lines = Vec::new();
        let mut delays_by_reason = BTreeMap::new();
        let mut pathways: BTreeMap<Pathway, u32> =
            Pathway::ALL.into_iter().map(|p| (p, 0)).collect();
        for ward in wards.iter().filter(|w| &w.hospital == hospital) {
            let t = self.ward_totals(ward, now);
            totals.add(&t);
            lines.push(WardLine {
                ward: ward.code.clone(),
                totals: t,
            });
            for (_, _, spell) in self.ward_beds(&ward.code) {
                for delay in spell.delays.values() {
                    *delays_by_reason
                        .entry(delay.reason.code.to_string())
                        .or_insert(0) += 1;
                }
                if let Some(p) = spell.pathway {
                    *pathways.entry(p).or_insert(0) += 1;
                }
            }
        }
        HospitalBoard {
            hospital: hospital.clone(),
            totals,
            wards: lines,
            delays_by_reason,
            pathways,
        }
    }

    /// The system board at `now`: hospitals from `wards`, teams from `teams`.
    pub fn system_board(&self, wards: &[Ward], teams: &[Team], now: Instant) -> SystemBoard {
        let mut per_hospital: BTreeMap<HospitalCode, FlowTotals> = BTreeMap::new();
        for ward in wards {
            per_hospital
                .entry(ward.hospital.clone())
                .or_default()
                .add(&self.ward_totals(ward, now));
        }
        let mut totals = FlowTotals::default();
        for t in per_hospital.values() {
            totals.add(t);
        }
        let team_waits = teams
            .iter()
            .map(|team| {
                let mut waits = TeamWaits {
                    team: team.code.clone(),
                    waiting: 0,
                    breached: 0,
                    accepted: 0,
                };
                for (_, r) in self.referrals_for(&team.code) {
                    if is_waiting(r.status) {
                        waits.waiting += 1;
                    }
                    if sla_breached(r, now) {
                        waits.breached += 1;
                    }
                    if r.status == ReferralStatus::Accepted {
                        waits.accepted += 1;
                    }
                }
                waits
            })
            .collect();
        SystemBoard {
            totals,
            hospitals: per_hospital
                .into_iter()
                .map(|(hospital, totals)| HospitalLine { hospital, totals })
                .collect(),
            teams: team_waits,
        }
    }

    /// The hub board at `now`, over `wards` (those of the hub's hospitals
    /// are read; others are ignored).
    pub fn hub_board(&self, hub: &Hub, wards: &[Ward], now: Instant) -> HubBoard {
        let today = local_date(now);
        let mut rows = Vec::new();
        for ward in wards.iter().filter(|w| hub.hospitals.contains(&w.hospital)) {
            for (bed, id, spell) in self.ward_beds(&ward.code) {
                if spell.discharge_ready_date.is_none() {
                    continue;
                }
                let mut referrals: Vec<HubReferral> = self
                    .referrals_of(id)
                    .map(|(rid, r)| HubReferral {
                        referral_id: rid.to_owned(),
                        team: r.team.clone(),
                        service: r.service,
                        pathway: r.pathway,
                        status: r.status,
                        raised_at: r.raised_at,
                        sla_breached: sla_breached(r, now),
                        escalated: r.escalated_at.is_some(),
                    })
                    .collect();
                referrals.sort_by(|a, b| {
                    (a.status.is_final(), std::cmp::Reverse(a.raised_at))
                        .cmp(&(b.status.is_final(), std::cmp::Reverse(b.raised_at)))
                });
                rows.push(HubRow {
                    id: id.to_owned(),
                    patient: patient_view(spell),
                    hospital: spell.placement.hospital.clone(),
                    ward: spell.placement.ward.clone(),
                    bed: bed.to_owned(),
                    discharge_ready_date: spell.discharge_ready_date,
                    delay_days: delay_days(spell, today),
                    pathway: spell.pathway,
                    open_delays: open_delays(spell),
                    referrals,
                });
            }
        }
        rows.sort_by(|a, b| (a.discharge_ready_date, &a.id).cmp(&(b.discharge_ready_date, &b.id)));
        HubBoard {
            hub: hub.code.clone(),
            hospitals: hub.hospitals.iter().cloned().collect(),
            nctr: u32::try_from(rows.len()).unwrap_or(u32::MAX),
            patients: rows,
        }
    }

    /// The team board at `now`.
    pub fn team_board(&self, team: &TeamCode, now: Instant) -> TeamBoard {
        let mut counts: BTreeMap<ReferralStatus, u32> =
            ReferralStatus::ALL.into_iter().map(|s| (s, 0)).collect();
        let mut rows = Vec::new();
        for (id, r) in self.referrals_for(team) {
            *counts.entry(r.status).or_insert(0) += 1;
            if r.status.is_final() {
                continue;
            }
            let breached = sla_breached(r, now);
            let (patient_status, discharged_at) = match self.spell(&r.spell_id) {
                None => (PatientStatus::AdmissionCancelled, None),
                Some(s) => match s.discharged_at {
                    Some(at) => (PatientStatus::Discharged, Some(at)),
                    None => (PatientStatus::InHospital, None),
                },
            };
            rows.push(TeamRow {
                id: id.to_owned(),
                status: r.status,
                spell_id: r.spell_id.clone(),
                age_minutes: (now - r.raised_at).num_minutes().max(0),
                sla_breached: breached,
                sla_minutes_left: (r.status == ReferralStatus::Requested)
                    .then(|| (r.respond_by - now).num_minutes()),
                escalated: r.escalated_at.is_some(),
                service: r.service,
                pathway: r.pathway,
                patient: patient_of(&r.patient),
                hospital: r.placement.hospital.clone(),
                ward: r.placement.ward.clone(),
                planned_start: r.planned_start,
                summary: r.summary.as_ref().map(|t| t.as_str().to_owned()),
                patient_status,
                discharged_at,
            });
        }
        rows.sort_by(|a, b| {
            (b.sla_breached || b.escalated)
                .cmp(&(a.sla_breached || a.escalated))
                .then(b.age_minutes.cmp(&a.age_minutes))
                .then(a.id.cmp(&b.id))
        });
        TeamBoard {
            team: team.clone(),
            counts,
            referrals: rows,
        }
    }
}
