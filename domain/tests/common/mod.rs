//! Fixtures shared by the domain's scenario tests: a small system (two
//! hospitals, three wards, two teams) and helpers for times and events.
#![allow(dead_code)]

use domain::reference::{Catalogue, Hospital, Team, Ward};
use domain::referral::ReferralSubject;
use domain::spell::{Patient, Placement, SpellCommand, SpellEvent};
use domain::values::{
    BedLabel, DelayReasonCode, HospitalCode, Instant, NhsNumber, PersonName, ServiceKind, SpellId,
    TeamCode, Text, WardCode,
};

pub fn t(text: &str) -> Instant {
    text.parse().unwrap()
}

pub fn d(text: &str) -> chrono::NaiveDate {
    text.parse().unwrap()
}

/// The recording clock of most scenarios: days after the admission.
pub fn now() -> Instant {
    t("2026-03-05T12:00:00Z")
}

pub fn admitted_at() -> Instant {
    t("2026-03-01T09:00:00Z")
}

pub fn text(s: &str) -> Text {
    Text::parse(s).unwrap()
}

pub fn ward(code: &str) -> WardCode {
    WardCode::parse(code).unwrap()
}

pub fn bed(label: &str) -> BedLabel {
    BedLabel::parse(label).unwrap()
}

pub fn team(code: &str) -> TeamCode {
    TeamCode::parse(code).unwrap()
}

pub fn reason(code: &str) -> DelayReasonCode {
    DelayReasonCode::parse(code).unwrap()
}

pub fn spell_id(id: &str) -> SpellId {
    SpellId::parse(id).unwrap()
}

pub fn refs() -> Catalogue {
    let mut c = Catalogue::with_sitrep_reasons().unwrap();
    for (code, name) in [
        ("POOLE", "Poole Hospital"),
        ("DCH", "Dorset County Hospital"),
    ] {
        c.put_hospital(Hospital {
            code: HospitalCode::parse(code).unwrap(),
            name: text(name),
            trust: None,
        });
    }
    for (code, hospital, beds) in [("W1", "POOLE", 4), ("W2", "POOLE", 4), ("X1", "DCH", 2)] {
        c.put_ward(Ward {
            code: ward(code),
            name: text(&format!("Ward {code}")),
            hospital: HospitalCode::parse(hospital).unwrap(),
            beds,
        })
        .unwrap();
    }
    c.put_team(Team {
        code: team("REAB"),
        name: text("Reablement East"),
        services: [ServiceKind::Reablement, ServiceKind::HomeCare].into(),
        response_sla_minutes: 120,
    })
    .unwrap();
    c.put_team(Team {
        code: team("CARE"),
        name: text("Care home placements"),
        services: [ServiceKind::CareHome].into(),
        response_sla_minutes: 1440,
    })
    .unwrap();
    c
}

pub fn patient() -> Patient {
    patient_with("9912003888")
}

pub fn patient_with(nhs: &str) -> Patient {
    Patient {
        nhs_number: NhsNumber::parse(nhs).unwrap(),
        family_name: PersonName::parse("Smith").unwrap(),
        given_name: PersonName::parse("Ada").unwrap(),
        date_of_birth: d("1941-07-12"),
    }
}

pub fn placement(w: &str, b: &str) -> Placement {
    let hospital = if w.starts_with('X') { "DCH" } else { "POOLE" };
    Placement {
        hospital: HospitalCode::parse(hospital).unwrap(),
        ward: ward(w),
        bed: bed(b),
    }
}

pub fn admit_command() -> SpellCommand {
    admit_to(patient(), "W1", "1")
}

/// The standard admission of `patient` to bed `b` of ward `w`.
pub fn admit_to(patient: Patient, w: &str, b: &str) -> SpellCommand {
    SpellCommand::AdmitPatient {
        spell_id: spell_id("s1"),
        patient,
        ward: ward(w),
        bed: bed(b),
        admitted_at: admitted_at(),
        visit_number: None,
    }
}

/// The event of the standard admission: W1 bed 1, 1 March 09:00.
pub fn admitted() -> SpellEvent {
    admitted_on(admitted_at())
}

/// The standard admission, at `at`.
pub fn admitted_on(at: Instant) -> SpellEvent {
    SpellEvent::PatientAdmitted {
        spell_id: spell_id("s1"),
        patient: patient(),
        placement: placement("W1", "1"),
        admitted_at: at,
        visit_number: None,
    }
}

pub fn reviewed(at: &str, meets: bool, drd: Option<&str>) -> SpellEvent {
    SpellEvent::CriteriaToResideReviewed {
        meets_criteria_to_reside: meets,
        at: t(at),
        discharge_ready_date: drd.map(d),
    }
}

pub fn discharged(at: &str, drd: Option<&str>, delay_days: u32) -> SpellEvent {
    SpellEvent::PatientDischarged {
        at: t(at),
        destination: domain::values::Destination::UsualResidence,
        from: placement("W1", "1"),
        nhs_number: patient().nhs_number,
        discharge_ready_date: drd.map(d),
        delay_days,
    }
}

pub fn subject() -> ReferralSubject {
    ReferralSubject {
        spell_id: spell_id("s1"),
        patient: patient(),
        placement: placement("W1", "1"),
    }
}

/// Every spell command but an admission, each otherwise valid on an open
/// spell admitted by [`admitted`], for "refuses everything" scenarios.
pub fn every_spell_change() -> Vec<SpellCommand> {
    vec![
        SpellCommand::TransferPatient {
            ward: ward("W2"),
            bed: bed("1"),
            at: t("2026-03-02T10:00:00Z"),
        },
        SpellCommand::SetExpectedDischargeDate {
            date: d("2026-03-09"),
        },
        SpellCommand::RecordCriteriaReview {
            meets_criteria_to_reside: false,
            at: t("2026-03-02T10:00:00Z"),
        },
        SpellCommand::SetDischargePathway {
            pathway: domain::values::Pathway::P1,
        },
        SpellCommand::RecordDelay {
            reason_code: reason("8"),
            note: None,
            at: t("2026-03-02T10:00:00Z"),
        },
        SpellCommand::ResolveDelay {
            delay_id: domain::values::DelayId::parse("D1").unwrap(),
            at: t("2026-03-02T11:00:00Z"),
        },
        SpellCommand::DischargePatient {
            at: t("2026-03-04T10:00:00Z"),
            destination: domain::values::Destination::UsualResidence,
        },
        SpellCommand::CancelAdmission {
            reason: text("wrong patient"),
        },
        SpellCommand::CancelTransfer {
            reason: text("wrong bed"),
        },
        SpellCommand::CancelDischarge {
            reason: text("still here"),
        },
        SpellCommand::CorrectPatientDetails {
            patient: Patient {
                family_name: PersonName::parse("Smyth").unwrap(),
                ..patient()
            },
        },
    ]
}
