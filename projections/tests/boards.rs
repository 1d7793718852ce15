//! Fold tests with a fixed clock: every field of every board, and each
//! correction putting the boards back exactly as if the corrected event had
//! not happened.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use domain::reference::{DelayReasonRef, Team, Ward};
use domain::referral::{ReferralEvent, ReferralStatus, ReferralSubject};
use domain::spell::{Patient, Placement, SpellEvent};
use domain::values::{
    BedLabel, DelayId, DelayReasonCode, Destination, HospitalCode, Instant, NhsNumber, Pathway,
    PersonName, ReferralId, ServiceKind, SpellId, TeamCode, Text, WardCode,
};
use domain::{Actor, Recorded};
use projections::boards::CriteriaToReside;
use projections::envelope::DecodeError;
use projections::{decode, Change, Envelope, Flow};

fn t(s: &str) -> Instant {
    s.parse().unwrap()
}
fn d(s: &str) -> chrono::NaiveDate {
    s.parse().unwrap()
}

fn ward(code: &str, beds: u16) -> Ward {
    Ward {
        code: WardCode::parse(code).unwrap(),
        name: Text::parse(code).unwrap(),
        hospital: HospitalCode::parse("POOLE").unwrap(),
        beds,
    }
}

fn wards() -> Vec<Ward> {
    vec![ward("W1", 4), ward("W2", 3)]
}

fn teams() -> Vec<Team> {
    vec![Team {
        code: TeamCode::parse("REAB").unwrap(),
        name: Text::parse("Reablement").unwrap(),
        services: [ServiceKind::Reablement].into(),
        response_sla_minutes: 120,
    }]
}

fn place(w: &str, b: &str) -> Placement {
    Placement {
        hospital: HospitalCode::parse("POOLE").unwrap(),
        ward: WardCode::parse(w).unwrap(),
        bed: BedLabel::parse(b).unwrap(),
    }
}

fn patient(nhs: &str) -> Patient {
    Patient {
        nhs_number: NhsNumber::parse(nhs).unwrap(),
        family_name: PersonName::parse("Smith").unwrap(),
        given_name: PersonName::parse("Ada").unwrap(),
        date_of_birth: d("1940-02-03"),
    }
}

/// A little script of events, with sequences numbered per aggregate.
#[derive(Default)]
struct Script {
    events: Vec<Envelope>,
}

impl Script {
    fn spell(&mut self, id: &str, event: SpellEvent) -> &mut Self {
        self.push(id, Change::Spell(event))
    }
    fn referral(&mut self, id: &str, event: ReferralEvent) -> &mut Self {
        self.push(id, Change::Referral(event))
    }
    fn push(&mut self, id: &str, change: Change) -> &mut Self {
        let sequence = self.events.iter().filter(|e| e.aggregate_id == id).count() as u64 + 1;
        self.events.push(Envelope {
            aggregate_id: id.to_owned(),
            sequence,
            recorded_at: t("2026-03-01T00:00:00Z"),
            by: domain::Actor::new("nurse-1", "Nurse One"),
            change,
        });
        self
    }
    fn admit(&mut self, id: &str, nhs: &str, w: &str, b: &str, at: &str) -> &mut Self {
        self.spell(
            id,
            SpellEvent::PatientAdmitted {
                spell_id: SpellId::parse(id).unwrap(),
                patient: patient(nhs),
                placement: place(w, b),
                admitted_at: t(at),
                visit_number: None,
            },
        )
    }
    fn fold(&self) -> Flow {
        let mut flow = Flow::default();
        for e in &self.events {
            flow.apply(e);
        }
        flow
    }
}

const NOW: &str = "2026-03-05T10:00:00Z";

#[test]
fn an_empty_ward_shows_every_bed_free() {
    let board = Flow::default().ward_board(&ward("W1", 4), t(NOW));
    assert_eq!(board.totals.beds, 4);
    assert_eq!(board.totals.free, 4);
    assert_eq!(board.totals.occupied, 0);
    assert_eq!(
        board
            .beds
            .iter()
            .map(|b| b.bed.as_str())
            .collect::<Vec<_>>(),
        ["1", "2", "3", "4"]
    );
    assert!(board.beds.iter().all(|b| b.spell_id.is_none()));
}

#[test]
fn an_admitted_patient_occupies_their_bed_for_whole_english_days() {
    let mut s = Script::default();
    // 23:30 UTC on 28 Feb is 23:30 GMT: admitted on the 28th.
    s.admit("s1", "9912003888", "W1", "2", "2026-02-28T23:30:00Z");
    let board = s.fold().ward_board(&ward("W1", 4), t(NOW));
    let row = &board.beds[1];
    assert_eq!(row.spell_id.as_deref(), Some("s1"));
    assert_eq!(row.patient.as_ref().unwrap().nhs_number, "9912003888");
    assert_eq!(row.patient.as_ref().unwrap().family_name, "Smith");
    assert_eq!(row.days_in_hospital, Some(5));
    assert_eq!(row.criteria_to_reside, Some(CriteriaToReside::NotReviewed));
    assert_eq!(board.totals.occupied, 1);
    assert_eq!(board.totals.free, 3);
}

#[test]
fn the_expected_discharge_date_is_due_today_then_overdue() {
    let mut s = Script::default();
    s.admit("s1", "9912003888", "W1", "1", "2026-03-01T09:00:00Z")
        .spell(
            "s1",
            SpellEvent::ExpectedDischargeDateSet {
                date: d("2026-03-05"),
                previous: None,
            },
        );
    let flow = s.fold();
    let today = flow.ward_board(&ward("W1", 4), t(NOW));
    assert_eq!(today.beds[0].expected_discharge_date, Some(d("2026-03-05")));
    assert!(!today.beds[0].edd_overdue);
    let totals = flow.ward_totals(&ward("W1", 4), t(NOW));
    assert_eq!((totals.edd_today, totals.edd_overdue), (1, 0));
    let tomorrow = t("2026-03-06T00:30:00Z");
    assert!(flow.ward_board(&ward("W1", 4), tomorrow).beds[0].edd_overdue);
    let totals = flow.ward_totals(&ward("W1", 4), tomorrow);
    assert_eq!((totals.edd_today, totals.edd_overdue), (0, 1));
}

#[test]
fn no_criteria_to_reside_counts_and_its_delay_days_grow_with_the_clock() {
    let mut s = Script::default();
    s.admit("s1", "9912003888", "W1", "1", "2026-03-01T09:00:00Z")
        .admit("s2", "9434765919", "W1", "2", "2026-03-01T09:00:00Z")
        .spell(
            "s1",
            SpellEvent::CriteriaToResideReviewed {
                meets_criteria_to_reside: false,
                at: t("2026-03-02T09:00:00Z"),
                discharge_ready_date: Some(d("2026-03-02")),
            },
        )
        .spell(
            "s2",
            SpellEvent::CriteriaToResideReviewed {
                meets_criteria_to_reside: true,
                at: t("2026-03-02T09:00:00Z"),
                discharge_ready_date: None,
            },
        );
    let flow = s.fold();
    let board = flow.ward_board(&ward("W1", 4), t(NOW));
    assert_eq!(
        board.beds[0].criteria_to_reside,
        Some(CriteriaToReside::DoesNotMeet)
    );
    assert_eq!(board.beds[0].discharge_ready_date, Some(d("2026-03-02")));
    assert_eq!(board.beds[0].delay_days, Some(3));
    assert_eq!(
        board.beds[1].criteria_to_reside,
        Some(CriteriaToReside::Meets)
    );
    assert_eq!(board.beds[1].delay_days, None);
    assert_eq!(board.totals.nctr, 1);
    let later = flow.ward_totals(&ward("W1", 4), t("2026-03-07T10:00:00Z"));
    assert_eq!(later.delay_days, 5);
    assert_eq!(later.nctr, 1);
}

#[test]
fn meeting_the_criteria_again_clears_nctr() {
    let mut s = Script::default();
    s.admit("s1", "9912003888", "W1", "1", "2026-03-01T09:00:00Z")
        .spell(
            "s1",
            SpellEvent::CriteriaToResideReviewed {
                meets_criteria_to_reside: false,
                at: t("2026-03-02T09:00:00Z"),
                discharge_ready_date: Some(d("2026-03-02")),
            },
        )
        .spell(
            "s1",
            SpellEvent::CriteriaToResideReviewed {
                meets_criteria_to_reside: true,
                at: t("2026-03-03T09:00:00Z"),
                discharge_ready_date: None,
            },
        );
    let board = s.fold().ward_board(&ward("W1", 4), t(NOW));
    assert_eq!(board.totals.nctr, 0);
    assert_eq!(
        board.beds[0].criteria_to_reside,
        Some(CriteriaToReside::Meets)
    );
}

fn transport() -> DelayReasonRef {
    DelayReasonRef {
        code: DelayReasonCode::parse("8").unwrap(),
        version: "sitrep-table5-2024".into(),
        label: "Awaiting transport".into(),
    }
}

#[test]
fn open_delays_show_with_their_reasons_and_resolved_ones_leave() {
    let mut s = Script::default();
    s.admit("s1", "9912003888", "W1", "1", "2026-03-01T09:00:00Z")
        .spell(
            "s1",
            SpellEvent::DelayRecorded {
                delay_id: DelayId::parse("D1").unwrap(),
                reason: transport(),
                note: None,
                at: t("2026-03-03T09:00:00Z"),
            },
        )
        .spell(
            "s1",
            SpellEvent::DischargePathwaySet {
                pathway: Pathway::P2,
                previous: None,
            },
        );
    let flow = s.fold();
    let row = &flow.ward_board(&ward("W1", 4), t(NOW)).beds[0];
    assert_eq!(row.open_delays.len(), 1);
    assert_eq!(row.open_delays[0].reason_code, "8");
    assert_eq!(row.open_delays[0].reason, "Awaiting transport");
    assert_eq!(row.pathway, Some(Pathway::P2));
    let hospital = flow.hospital_board(&HospitalCode::parse("POOLE").unwrap(), &wards(), t(NOW));
    assert_eq!(hospital.delays_by_reason.get("8"), Some(&1));
    assert_eq!(hospital.pathways.get(&Pathway::P2), Some(&1));
    assert_eq!(hospital.pathways.get(&Pathway::P0), Some(&0));

    s.spell(
        "s1",
        SpellEvent::DelayResolved {
            delay_id: DelayId::parse("D1").unwrap(),
            reason: transport(),
            at: t("2026-03-04T09:00:00Z"),
        },
    );
    let flow = s.fold();
    assert!(flow.ward_board(&ward("W1", 4), t(NOW)).beds[0]
        .open_delays
        .is_empty());
    let hospital = flow.hospital_board(&HospitalCode::parse("POOLE").unwrap(), &wards(), t(NOW));
    assert!(hospital.delays_by_reason.is_empty());
}

fn discharge(at: &str, w: &str, b: &str) -> SpellEvent {
    SpellEvent::PatientDischarged {
        at: t(at),
        destination: Destination::UsualResidence,
        from: place(w, b),
        nhs_number: NhsNumber::parse("9912003888").unwrap(),
        discharge_ready_date: Some(d("2026-03-05")),
        delay_days: 0,
    }
}

#[test]
fn a_discharge_frees_the_bed_and_counts_on_its_english_day() {
    let mut s = Script::default();
    s.admit("s1", "9912003888", "W1", "1", "2026-03-01T09:00:00Z")
        .spell("s1", discharge("2026-03-05T08:00:00Z", "W1", "1"));
    let flow = s.fold();
    let board = flow.ward_board(&ward("W1", 4), t(NOW));
    assert_eq!(board.totals.occupied, 0);
    assert!(board.beds[0].spell_id.is_none());
    let hospital = flow.hospital_board(&HospitalCode::parse("POOLE").unwrap(), &wards(), t(NOW));
    assert_eq!(hospital.totals.discharges_today, 1);
    assert_eq!(hospital.wards[0].totals.discharges_today, 1);
    let tomorrow = flow.hospital_board(
        &HospitalCode::parse("POOLE").unwrap(),
        &wards(),
        t("2026-03-06T10:00:00Z"),
    );
    assert_eq!(tomorrow.totals.discharges_today, 0);
}

#[test]
fn a_transfer_moves_the_patient_between_wards() {
    let mut s = Script::default();
    s.admit("s1", "9912003888", "W1", "1", "2026-03-01T09:00:00Z")
        .spell(
            "s1",
            SpellEvent::PatientTransferred {
                from: place("W1", "1"),
                to: place("W2", "3"),
                at: t("2026-03-02T09:00:00Z"),
            },
        );
    let flow = s.fold();
    assert_eq!(flow.ward_board(&ward("W1", 4), t(NOW)).totals.occupied, 0);
    let w2 = flow.ward_board(&ward("W2", 3), t(NOW));
    assert_eq!(w2.beds[2].spell_id.as_deref(), Some("s1"));
    // Days in hospital count from the admission, not the transfer.
    assert_eq!(w2.beds[2].days_in_hospital, Some(4));
}

/// Every board of two folds, read at the same instant.
fn assert_same_boards(a: &Flow, b: &Flow, now: Instant) {
    for w in wards() {
        assert_eq!(
            a.ward_board(&w, now),
            b.ward_board(&w, now),
            "ward {}",
            w.code
        );
    }
    let poole = HospitalCode::parse("POOLE").unwrap();
    assert_eq!(
        a.hospital_board(&poole, &wards(), now),
        b.hospital_board(&poole, &wards(), now)
    );
    assert_eq!(
        a.system_board(&wards(), &teams(), now),
        b.system_board(&wards(), &teams(), now)
    );
    let reab = TeamCode::parse("REAB").unwrap();
    assert_eq!(a.team_board(&reab, now), b.team_board(&reab, now));
}

#[test]
fn a_cancelled_admission_leaves_the_boards_as_if_it_never_happened() {
    let mut before = Script::default();
    before.admit("s0", "4010232137", "W1", "4", "2026-03-01T09:00:00Z");
    let mut after = Script::default();
    after
        .admit("s0", "4010232137", "W1", "4", "2026-03-01T09:00:00Z")
        .admit("s1", "9912003888", "W1", "1", "2026-03-01T09:00:00Z")
        .spell(
            "s1",
            SpellEvent::CriteriaToResideReviewed {
                meets_criteria_to_reside: false,
                at: t("2026-03-02T09:00:00Z"),
                discharge_ready_date: Some(d("2026-03-02")),
            },
        )
        .spell(
            "s1",
            SpellEvent::AdmissionCancelled {
                reason: Text::parse("wrong patient").unwrap(),
                placement: place("W1", "1"),
                nhs_number: NhsNumber::parse("9912003888").unwrap(),
            },
        );
    assert_same_boards(&before.fold(), &after.fold(), t(NOW));
}

#[test]
fn a_cancelled_transfer_leaves_the_boards_as_if_it_never_happened() {
    let mut before = Script::default();
    before.admit("s1", "9912003888", "W1", "1", "2026-03-01T09:00:00Z");
    let mut after = Script::default();
    after
        .admit("s1", "9912003888", "W1", "1", "2026-03-01T09:00:00Z")
        .spell(
            "s1",
            SpellEvent::PatientTransferred {
                from: place("W1", "1"),
                to: place("W2", "2"),
                at: t("2026-03-02T09:00:00Z"),
            },
        )
        .spell(
            "s1",
            SpellEvent::TransferCancelled {
                reason: Text::parse("wrong bed").unwrap(),
                from: place("W2", "2"),
                back_to: place("W1", "1"),
                transfer_at: t("2026-03-02T09:00:00Z"),
            },
        );
    assert_same_boards(&before.fold(), &after.fold(), t(NOW));
}

#[test]
fn a_cancelled_discharge_leaves_the_boards_as_if_it_never_happened() {
    let mut before = Script::default();
    before.admit("s1", "9912003888", "W1", "1", "2026-03-01T09:00:00Z");
    let mut after = Script::default();
    after
        .admit("s1", "9912003888", "W1", "1", "2026-03-01T09:00:00Z")
        .spell("s1", discharge("2026-03-05T08:00:00Z", "W1", "1"))
        .spell(
            "s1",
            SpellEvent::DischargeCancelled {
                reason: Text::parse("still here").unwrap(),
                placement: place("W1", "1"),
                nhs_number: NhsNumber::parse("9912003888").unwrap(),
                discharge_at: t("2026-03-05T08:00:00Z"),
            },
        );
    assert_same_boards(&before.fold(), &after.fold(), t(NOW));
}

fn raised(id: &str, spell: &str, raised_at: &str) -> ReferralEvent {
    ReferralEvent::ReferralRaised {
        referral_id: ReferralId::parse(id).unwrap(),
        subject: ReferralSubject {
            spell_id: SpellId::parse(spell).unwrap(),
            patient: patient("9912003888"),
            placement: place("W1", "1"),
        },
        team: TeamCode::parse("REAB").unwrap(),
        service: ServiceKind::Reablement,
        pathway: Pathway::P1,
        summary: Text::parse("needs help at home").unwrap(),
        raised_at: t(raised_at),
        response_sla_minutes: 120,
        respond_by: t(raised_at) + chrono::Duration::minutes(120),
    }
}

#[test]
fn referrals_show_on_the_ward_team_and_system_boards_with_their_sla() {
    let mut s = Script::default();
    s.admit("s1", "9912003888", "W1", "1", "2026-03-01T09:00:00Z")
        // Raised 5 h ago: breached. Raised 1 h ago: within SLA.
        .referral("r-old", raised("r-old", "s1", "2026-03-05T05:00:00Z"))
        .referral("r-new", raised("r-new", "s1", "2026-03-05T09:00:00Z"))
        .referral("r-acc", raised("r-acc", "s1", "2026-03-04T09:00:00Z"))
        .referral(
            "r-acc",
            ReferralEvent::ReferralAccepted {
                planned_start: d("2026-03-06"),
                at: t("2026-03-04T10:00:00Z"),
            },
        )
        .referral("r-done", raised("r-done", "s1", "2026-03-03T09:00:00Z"))
        .referral(
            "r-done",
            ReferralEvent::ReferralWithdrawn {
                reason: Text::parse("no longer needed").unwrap(),
                at: t("2026-03-03T10:00:00Z"),
            },
        )
        .referral(
            "r-old",
            ReferralEvent::ReferralEscalated {
                at: t("2026-03-05T07:00:00Z"),
                respond_by: t("2026-03-05T07:00:00Z"),
            },
        );
    let flow = s.fold();
    let now = t(NOW);
    let reab = TeamCode::parse("REAB").unwrap();

    let team = flow.team_board(&reab, now);
    assert_eq!(team.counts[&ReferralStatus::Requested], 2);
    assert_eq!(team.counts[&ReferralStatus::Accepted], 1);
    assert_eq!(team.counts[&ReferralStatus::Cancelled], 1);
    let ids: Vec<_> = team.referrals.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        ["r-old", "r-acc", "r-new"],
        "breached first, then oldest"
    );
    let old = &team.referrals[0];
    assert!(old.sla_breached && old.escalated);
    assert_eq!(old.age_minutes, 300);
    assert_eq!(old.sla_minutes_left, Some(-180));
    let new = &team.referrals[2];
    assert!(!new.sla_breached);
    assert_eq!(new.sla_minutes_left, Some(60));
    assert_eq!(team.referrals[1].planned_start, Some(d("2026-03-06")));

    let ward_row = &flow.ward_board(&ward("W1", 4), now).beds[0];
    let badges: Vec<_> = ward_row
        .referrals
        .iter()
        .map(|b| (b.referral_id.as_str(), b.status, b.sla_breached))
        .collect();
    assert_eq!(
        badges,
        [
            ("r-acc", ReferralStatus::Accepted, false),
            ("r-new", ReferralStatus::Requested, false),
            ("r-old", ReferralStatus::Requested, true)
        ]
    );

    let system = flow.system_board(&wards(), &teams(), now);
    assert_eq!(system.teams[0].waiting, 2);
    assert_eq!(system.teams[0].breached, 1);
    assert_eq!(system.teams[0].accepted, 1);
    assert_eq!(system.totals.occupied, 1);
    assert_eq!(system.hospitals[0].totals.beds, 7);
    // Counts only: no identity anywhere in the system board.
    let json = serde_json::to_string(&system).unwrap();
    for identity in ["9912003888", "Smith", "Ada", "s1", "r-old"] {
        assert!(!json.contains(identity), "system board leaks {identity}");
    }
}

#[test]
fn a_corrected_patient_shows_on_the_ward_and_team_boards() {
    let mut s = Script::default();
    s.admit("s1", "9912003888", "W1", "1", "2026-03-01T09:00:00Z")
        .referral("r1", raised("r1", "s1", "2026-03-05T09:00:00Z"));
    let now_patient = Patient {
        family_name: PersonName::parse("Smyth").unwrap(),
        ..patient("9434765919")
    };
    s.spell(
        "s1",
        SpellEvent::PatientDetailsCorrected {
            patient: now_patient,
            previous: patient("9912003888"),
            placement: place("W1", "1"),
            open: true,
        },
    );
    let flow = s.fold();
    let now = t(NOW);
    let bed = &flow.ward_board(&ward("W1", 4), now).beds[0];
    let shown = bed.patient.as_ref().unwrap();
    assert_eq!(
        (shown.nhs_number.as_str(), shown.family_name.as_str()),
        ("9434765919", "Smyth")
    );
    let team = flow.team_board(&TeamCode::parse("REAB").unwrap(), now);
    let json = serde_json::to_string(&team).unwrap();
    assert!(json.contains("Smyth") && !json.contains("Smith"), "{json}");
    assert!(
        json.contains("9434765919") && !json.contains("9912003888"),
        "{json}"
    );
}

#[test]
fn a_redelivered_event_changes_nothing() {
    let mut s = Script::default();
    s.admit("s1", "9912003888", "W1", "1", "2026-03-01T09:00:00Z")
        .spell("s1", discharge("2026-03-05T08:00:00Z", "W1", "1"));
    let mut flow = s.fold();
    let before = flow.clone();
    for event in &s.events {
        assert!(!flow.apply(event));
    }
    assert_eq!(flow, before);
    assert_eq!(flow.applied("spell", "s1"), 2);
}

#[test]
fn decodes_events_as_stored() {
    let recorded = Recorded {
        by: Actor::new("u1", "Nurse"),
        recorded_at: t("2026-03-01T10:00:00Z"),
        event: SpellEvent::DischargePathwaySet {
            pathway: Pathway::P3,
            previous: None,
        },
    };
    let payload = serde_json::to_value(&recorded).unwrap();
    let bytes = payload.to_string();
    let envelope = decode(
        "spell",
        "s1",
        4,
        "DischargePathwaySet",
        "1",
        bytes.as_bytes(),
    )
    .unwrap()
    .unwrap();
    assert_eq!(envelope.sequence, 4);
    assert_eq!(envelope.change, Change::Spell(recorded.event));
    assert!(matches!(
        decode("spell", "s1", 4, "DischargePathwaySet", "2", bytes.as_bytes()),
        Err(DecodeError::UnknownVersion { version, .. }) if version == "2"
    ));
    assert!(matches!(
        decode("spell", "s1", 4, "PatientAdmitted", "1", bytes.as_bytes()),
        Err(DecodeError::TypeMismatch {
            found: "DischargePathwaySet",
            ..
        })
    ));
    assert!(matches!(
        decode("spell", "s1", 4, "DischargePathwaySet", "1", b"{\"by\": 1}"),
        Err(DecodeError::Malformed { event_type, .. })
            if event_type == "DischargePathwaySet"
    ));
    assert!(decode("other", "x", 1, "Other", "1", bytes.as_bytes())
        .unwrap()
        .is_none());
}

#[test]
fn ward_totals_from_running_figures_equal_the_ward_board_after_every_correction() {
    let mut s = Script::default();
    s.admit("s1", "9912003888", "W1", "1", "2026-03-01T09:00:00Z")
        .admit("s2", "9434765919", "W1", "2", "2026-03-01T09:00:00Z")
        .spell(
            "s1",
            SpellEvent::CriteriaToResideReviewed {
                meets_criteria_to_reside: false,
                at: t("2026-03-02T09:00:00Z"),
                discharge_ready_date: Some(d("2026-03-02")),
            },
        )
        .spell(
            "s2",
            SpellEvent::ExpectedDischargeDateSet {
                date: d("2026-03-04"),
                previous: None,
            },
        )
        .spell(
            "s1",
            SpellEvent::PatientTransferred {
                from: place("W1", "1"),
                to: place("W2", "1"),
                at: t("2026-03-03T09:00:00Z"),
            },
        )
        .spell("s2", discharge("2026-03-05T08:00:00Z", "W1", "2"))
        .spell(
            "s2",
            SpellEvent::DischargeCancelled {
                reason: Text::parse("still here").unwrap(),
                placement: place("W1", "2"),
                nhs_number: NhsNumber::parse("9434765919").unwrap(),
                discharge_at: t("2026-03-05T08:00:00Z"),
            },
        );
    let mut flow = Flow::default();
    let now = t(NOW);
    for event in &s.events {
        flow.apply(event);
        for w in wards() {
            let board = flow.ward_board(&w, now);
            let totals = flow.ward_totals(&w, now);
            assert_eq!(totals.occupied, board.totals.occupied, "after {event:?}");
            assert_eq!(totals.nctr, board.totals.nctr, "after {event:?}");
            let delay: i64 = board.beds.iter().filter_map(|b| b.delay_days).sum();
            assert_eq!(totals.delay_days, delay, "after {event:?}");
            let overdue = board.beds.iter().filter(|b| b.edd_overdue).count() as u32;
            assert_eq!(totals.edd_overdue, overdue, "after {event:?}");
        }
    }
    let w1 = flow.ward_totals(&ward("W1", 4), now);
    assert_eq!((w1.occupied, w1.edd_overdue), (1, 1));
    let w2 = flow.ward_totals(&ward("W2", 3), now);
    assert_eq!((w2.occupied, w2.nctr, w2.delay_days), (1, 1, 3));
}

#[test]
fn daily_figures_count_nctr_delay_days_and_discharges_for_each_of_the_last_days() {
    let mut s = Script::default();
    s.admit("s1", "9912003888", "W1", "1", "2026-03-01T09:00:00Z")
        .admit("s2", "9434765919", "W1", "2", "2026-03-01T09:00:00Z")
        .spell(
            "s1",
            SpellEvent::CriteriaToResideReviewed {
                meets_criteria_to_reside: false,
                at: t("2026-03-02T09:00:00Z"),
                discharge_ready_date: Some(d("2026-03-02")),
            },
        )
        .spell("s2", discharge("2026-03-04T15:00:00Z", "W1", "2"));
    let flow = s.fold();
    let days = flow.daily(None, 5, t(NOW));
    let dates: Vec<_> = days.iter().map(|f| f.date).collect();
    assert_eq!(dates.first(), Some(&d("2026-03-01")));
    assert_eq!(dates.last(), Some(&d("2026-03-05")));
    let nctr: Vec<u32> = days.iter().map(|f| f.nctr).collect();
    assert_eq!(nctr, vec![0, 1, 1, 1, 1]);
    let delay: Vec<i64> = days.iter().map(|f| f.delay_days).collect();
    assert_eq!(delay, vec![0, 0, 1, 2, 3]);
    let out: Vec<u32> = days.iter().map(|f| f.discharges).collect();
    assert_eq!(out, vec![0, 0, 0, 1, 0]);
    // Another hospital's figures are its own.
    let other = flow.daily(Some(&HospitalCode::parse("DCH").unwrap()), 5, t(NOW));
    assert!(other.iter().all(|f| f.nctr == 0 && f.discharges == 0));
}

#[test]
fn a_cancelled_discharge_leaves_the_daily_figures_as_if_it_never_happened() {
    let mut s = Script::default();
    s.admit("s1", "9912003888", "W1", "1", "2026-03-01T09:00:00Z")
        .spell("s1", discharge("2026-03-04T15:00:00Z", "W1", "1"));
    let before = s.fold().daily(None, 5, t(NOW));
    s.spell(
        "s1",
        SpellEvent::DischargeCancelled {
            reason: domain::values::Text::parse("wrong patient").unwrap(),
            placement: place("W1", "1"),
            nhs_number: NhsNumber::parse("9912003888").unwrap(),
            discharge_at: t("2026-03-04T15:00:00Z"),
        },
    );
    let after = s.fold().daily(None, 5, t(NOW));
    assert_eq!(before.iter().map(|f| f.discharges).sum::<u32>(), 1);
    assert_eq!(after.iter().map(|f| f.discharges).sum::<u32>(), 0);
}

mod lookup {
    use super::*;
    use projections::lookup::{recent_discharges, search, Query, SpellStatus, SEARCH_LIMIT};

    fn poole() -> HospitalCode {
        HospitalCode::parse("POOLE").unwrap()
    }

    fn two_patients_one_discharged() -> Flow {
        let mut script = Script::default();
        script
            .admit("s1", "9912003888", "W1", "1", "2026-03-01T09:00:00Z")
            .admit("s2", "9434765919", "W1", "2", "2026-03-02T09:00:00Z")
            .spell("s1", discharge("2026-03-04T15:00:00Z", "W1", "1"));
        script.fold()
    }

    #[test]
    fn what_a_user_types_is_an_nhs_number_when_it_is_digits_and_a_name_otherwise() {
        assert_eq!(
            Query::parse(" 991 200 3888 "),
            Some(Query::NhsNumber("9912003888".into()))
        );
        assert_eq!(Query::parse("Smi"), Some(Query::Name("smi".into())));
        assert_eq!(Query::parse("99"), Some(Query::NhsNumber("99".into())));
        assert_eq!(Query::parse("9"), None);
        assert_eq!(Query::parse("ab"), Some(Query::Name("ab".into())));
        assert_eq!(Query::parse(" a "), None);
        assert_eq!(Query::parse(""), None);
        assert_eq!(Query::parse("99 1a"), Some(Query::Name("99 1a".into())));
    }

    #[test]
    fn a_discharged_patient_is_found_again_by_nhs_number() {
        let flow = two_patients_one_discharged();
        let found = search(&flow, &[poole()], &Query::parse("9912003888").unwrap());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].spell_id, "s1");
        assert_eq!(found[0].status, SpellStatus::Discharged);
        assert_eq!(found[0].version, 2);
        assert_eq!(found[0].bed, "1");
        assert_eq!(found[0].discharged_at, Some(t("2026-03-04T15:00:00Z")));
        let by_prefix = search(&flow, &[poole()], &Query::parse("943").unwrap());
        assert_eq!(by_prefix.len(), 1);
        assert_eq!(by_prefix[0].spell_id, "s2");
        assert_eq!(by_prefix[0].status, SpellStatus::InHospital);
    }

    #[test]
    fn a_name_search_ignores_case_and_lists_patients_in_hospital_first_then_the_newest() {
        let mut script = Script::default();
        script
            .admit("s1", "9912003888", "W1", "1", "2026-03-01T09:00:00Z")
            .admit("s2", "9434765919", "W1", "2", "2026-03-02T09:00:00Z")
            .admit("s3", "9876543210", "W1", "3", "2026-03-03T09:00:00Z")
            .spell("s3", discharge("2026-03-04T15:00:00Z", "W1", "3"));
        let flow = script.fold();
        let found = search(&flow, &[poole()], &Query::parse("sMiTh").unwrap());
        let ids: Vec<_> = found.iter().map(|r| r.spell_id.as_str()).collect();
        assert_eq!(ids, ["s2", "s1", "s3"]);
        assert!(search(&flow, &[poole()], &Query::parse("ada").unwrap()).len() == 3);
        assert!(search(&flow, &[poole()], &Query::parse("jones").unwrap()).is_empty());
    }

    #[test]
    fn another_hospitals_patients_are_never_found() {
        let flow = two_patients_one_discharged();
        let dch = HospitalCode::parse("DCH").unwrap();
        assert!(search(
            &flow,
            std::slice::from_ref(&dch),
            &Query::parse("smith").unwrap()
        )
        .is_empty());
    }

    #[test]
    fn a_search_answers_at_most_its_limit() {
        let mut script = Script::default();
        let numbers: Vec<String> = (0..200u64)
            .map(|n| format!("{:09}", 100_000_000 + n))
            .filter_map(|nine| {
                let sum: u32 = nine
                    .chars()
                    .zip((2..=10).rev())
                    .map(|(c, w)| c.to_digit(10).unwrap() * w)
                    .sum();
                let check = 11 - (sum % 11);
                match check {
                    11 => Some(format!("{nine}0")),
                    10 => None,
                    c => Some(format!("{nine}{c}")),
                }
            })
            .take(SEARCH_LIMIT + 1)
            .collect();
        for (i, nhs) in numbers.iter().enumerate() {
            script.admit(&format!("s{i}"), nhs, "W1", "1", "2026-03-01T09:00:00Z");
        }
        let flow = script.fold();
        assert_eq!(
            search(&flow, &[poole()], &Query::parse("smith").unwrap()).len(),
            SEARCH_LIMIT
        );
    }

    #[test]
    fn recent_discharges_are_those_since_the_cut_off_newest_first_and_of_that_ward() {
        let mut script = Script::default();
        script
            .admit("s1", "9912003888", "W1", "1", "2026-03-01T09:00:00Z")
            .admit("s2", "9434765919", "W1", "2", "2026-03-01T09:00:00Z")
            .admit("s3", "9876543210", "W2", "1", "2026-03-01T09:00:00Z")
            .admit("s4", "4010232137", "W1", "3", "2026-03-01T09:00:00Z")
            .spell("s1", discharge("2026-03-02T10:00:00Z", "W1", "1"))
            .spell("s2", discharge("2026-03-04T10:00:00Z", "W1", "2"))
            .spell("s3", discharge("2026-03-04T11:00:00Z", "W2", "1"));
        let flow = script.fold();
        let w1 = WardCode::parse("W1").unwrap();
        let ids = |since: &str| -> Vec<String> {
            recent_discharges(&flow, &w1, t(since))
                .into_iter()
                .map(|r| r.spell_id)
                .collect()
        };
        assert_eq!(ids("2026-03-01T00:00:00Z"), ["s2", "s1"]);
        // The cut-off itself is included.
        assert_eq!(ids("2026-03-02T10:00:00Z"), ["s2", "s1"]);
        assert_eq!(ids("2026-03-02T10:00:01Z"), ["s2"]);
    }

    #[test]
    fn a_cancelled_discharge_puts_the_patient_back_in_hospital_for_the_search() {
        let mut script = Script::default();
        script
            .admit("s1", "9912003888", "W1", "1", "2026-03-01T09:00:00Z")
            .spell("s1", discharge("2026-03-04T15:00:00Z", "W1", "1"))
            .spell(
                "s1",
                SpellEvent::DischargeCancelled {
                    reason: Text::parse("wrong patient").unwrap(),
                    placement: place("W1", "1"),
                    discharge_at: t("2026-03-04T15:00:00Z"),
                    nhs_number: NhsNumber::parse("9912003888").unwrap(),
                },
            );
        let flow = script.fold();
        let found = search(&flow, &[poole()], &Query::parse("9912003888").unwrap());
        assert_eq!(found[0].status, SpellStatus::InHospital);
        assert!(recent_discharges(
            &flow,
            &WardCode::parse("W1").unwrap(),
            t("2026-03-01T00:00:00Z")
        )
        .is_empty());
    }
}

#[test]
fn a_team_sees_the_summary_and_whether_its_patient_is_still_in_hospital() {
    use projections::boards::PatientStatus;
    let reab = TeamCode::parse("REAB").unwrap();
    let mut s = Script::default();
    s.admit("s1", "9912003888", "W1", "1", "2026-03-01T09:00:00Z")
        .referral("r1", raised("r1", "s1", "2026-03-05T09:00:00Z"));
    let board = s.fold().team_board(&reab, t(NOW));
    assert_eq!(
        board.referrals[0].summary.as_deref(),
        Some("needs help at home")
    );
    assert_eq!(board.referrals[0].patient_status, PatientStatus::InHospital);
    assert_eq!(board.referrals[0].discharged_at, None);

    let mut discharged = Script::default();
    discharged
        .admit("s1", "9912003888", "W1", "1", "2026-03-01T09:00:00Z")
        .referral("r1", raised("r1", "s1", "2026-03-05T09:00:00Z"))
        .spell("s1", discharge("2026-03-05T09:30:00Z", "W1", "1"));
    let board = discharged.fold().team_board(&reab, t(NOW));
    assert_eq!(board.referrals[0].patient_status, PatientStatus::Discharged);
    assert_eq!(
        board.referrals[0].discharged_at,
        Some(t("2026-03-05T09:30:00Z"))
    );

    let mut cancelled = Script::default();
    cancelled
        .admit("s1", "9912003888", "W1", "1", "2026-03-01T09:00:00Z")
        .referral("r1", raised("r1", "s1", "2026-03-05T09:00:00Z"))
        .spell(
            "s1",
            SpellEvent::AdmissionCancelled {
                reason: Text::parse("wrong patient").unwrap(),
                placement: place("W1", "1"),
                nhs_number: NhsNumber::parse("9912003888").unwrap(),
            },
        );
    let board = cancelled.fold().team_board(&reab, t(NOW));
    assert_eq!(
        board.referrals[0].patient_status,
        PatientStatus::AdmissionCancelled
    );
}

fn not_ready_since(date: &str) -> SpellEvent {
    SpellEvent::CriteriaToResideReviewed {
        meets_criteria_to_reside: false,
        at: t(&format!("{date}T09:00:00Z")),
        discharge_ready_date: Some(d(date)),
    }
}

fn hub(hospitals: &[&str]) -> domain::reference::Hub {
    domain::reference::Hub {
        code: domain::values::HubCode::parse("EAST").unwrap(),
        name: Text::parse("East hub").unwrap(),
        hospitals: hospitals
            .iter()
            .map(|h| HospitalCode::parse(*h).unwrap())
            .collect(),
    }
}

#[test]
fn a_hub_board_lists_its_hospitals_discharge_ready_patients_longest_waiting_first_with_their_referrals(
) {
    let mut s = Script::default();
    s.admit("s1", "9912003888", "W1", "1", "2026-03-01T09:00:00Z")
        .admit("s2", "9434765919", "W2", "1", "2026-03-01T09:00:00Z")
        .admit("s3", "4010232137", "W1", "2", "2026-03-01T09:00:00Z")
        .spell("s1", not_ready_since("2026-03-04"))
        .spell("s2", not_ready_since("2026-03-02"))
        .referral("r-old", raised("r-old", "s1", "2026-03-04T10:00:00Z"))
        .referral(
            "r-old",
            ReferralEvent::ReferralWithdrawn {
                reason: Text::parse("wrong team").unwrap(),
                at: t("2026-03-04T11:00:00Z"),
            },
        )
        .referral("r-new", raised("r-new", "s1", "2026-03-05T09:00:00Z"));
    let flow = s.fold();

    let board = flow.hub_board(&hub(&["POOLE"]), &wards(), t(NOW));

    assert_eq!(board.nctr, 2);
    let ids: Vec<&str> = board.patients.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["s2", "s1"], "s3 meets the criteria to reside");
    assert_eq!(board.patients[0].delay_days, Some(3));
    assert_eq!(board.patients[0].ward.as_str(), "W2");
    let referrals: Vec<(&str, ReferralStatus)> = board.patients[1]
        .referrals
        .iter()
        .map(|r| (r.referral_id.as_str(), r.status))
        .collect();
    assert_eq!(
        referrals,
        [
            ("r-new", ReferralStatus::Requested),
            ("r-old", ReferralStatus::Cancelled)
        ]
    );

    let elsewhere = flow.hub_board(&hub(&["DCH"]), &wards(), t(NOW));
    assert!(elsewhere.patients.is_empty());

    let mut discharged = s;
    discharged.spell("s2", discharge("2026-03-05T09:30:00Z", "W2", "1"));
    let after = discharged
        .fold()
        .hub_board(&hub(&["POOLE"]), &wards(), t(NOW));
    assert_eq!(
        after.patients.len(),
        1,
        "a discharged patient leaves the hub board"
    );
}

#[test]
fn a_referral_was_last_updated_when_its_latest_event_was_recorded() {
    let mut s = Script::default();
    s.admit("s1", "9912003888", "W1", "1", "2026-03-01T09:00:00Z")
        .referral("r1", raised("r1", "s1", "2026-03-05T05:00:00Z"))
        .referral(
            "r1",
            ReferralEvent::ReferralAcknowledged {
                at: t("2026-03-05T06:00:00Z"),
            },
        );
    let last = s.events.len() - 1;
    s.events[last].recorded_at = t("2026-03-05T06:00:05Z");
    let flow = s.fold();
    assert_eq!(
        flow.referral("r1").unwrap().updated_at,
        Some(t("2026-03-05T06:00:05Z"))
    );
    // A spell's events leave its referrals' time alone.
    let mut later = Script {
        events: s.events.clone(),
    };
    later.spell(
        "s1",
        SpellEvent::ExpectedDischargeDateSet {
            date: d("2026-03-09"),
            previous: None,
        },
    );
    let flow = later.fold();
    assert_eq!(
        flow.referral("r1").unwrap().updated_at,
        Some(t("2026-03-05T06:00:05Z"))
    );
}
