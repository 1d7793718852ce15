//! Given/when/then scenarios for every spell command and every refusal.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use common::*;
use domain::decider::DomainEvent;
use domain::reference::DelayReasonRef;
use domain::reservation::{Ledger, ReservationChange, ReservationConflict, ReservationKey};
use domain::spell::{Spell, SpellCommand, SpellError, SpellEvent, SpellStatus};
use domain::testing::given;
use domain::values::{DelayId, Destination, Pathway};

fn delay_reason(code: &str, label: &str) -> DelayReasonRef {
    DelayReasonRef {
        code: reason(code),
        version: "sitrep-table5-2024".into(),
        label: label.into(),
    }
}

fn delay_recorded(id: &str, code: &str, label: &str, at: &str) -> SpellEvent {
    SpellEvent::DelayRecorded {
        delay_id: DelayId::parse(id).unwrap(),
        reason: delay_reason(code, label),
        note: None,
        at: t(at),
    }
}

fn transferred(to_ward: &str, to_bed: &str, at: &str) -> SpellEvent {
    SpellEvent::PatientTransferred {
        from: placement("W1", "1"),
        to: placement(to_ward, to_bed),
        at: t(at),
    }
}

fn review(meets: bool, at: &str) -> SpellCommand {
    SpellCommand::RecordCriteriaReview {
        meets_criteria_to_reside: meets,
        at: t(at),
    }
}

fn discharge(at: &str) -> SpellCommand {
    SpellCommand::DischargePatient {
        at: t(at),
        destination: Destination::UsualResidence,
    }
}

mod admission {
    use super::*;

    #[test]
    fn admits_a_patient_to_a_bed_and_records_the_wards_hospital() {
        given::<Spell>([])
            .when(admit_command(), now(), &refs())
            .then_expect(vec![admitted()]);
    }

    #[test]
    fn refuses_an_admission_to_an_unknown_ward() {
        let command = admit_to(patient(), "NOPE", "1");
        given::<Spell>([])
            .when(command, now(), &refs())
            .then_refused(SpellError::UnknownWard);
    }

    #[test]
    fn refuses_an_admission_to_a_bed_the_ward_does_not_have() {
        let command = admit_to(patient(), "W1", "5");
        given::<Spell>([])
            .when(command, now(), &refs())
            .then_refused(SpellError::UnknownBed);
    }

    #[test]
    fn refuses_an_admission_in_the_future() {
        given::<Spell>([])
            .when(admit_command(), t("2026-03-01T08:00:00Z"), &refs())
            .then_refused(SpellError::InFuture {
                field: "admitted_at",
            });
    }

    #[test]
    fn accepts_an_admission_a_few_minutes_ahead_of_the_recording_clock() {
        given::<Spell>([])
            .when(admit_command(), t("2026-03-01T08:57:00Z"), &refs())
            .then_expect(vec![admitted()]);
    }

    #[test]
    fn refuses_a_patient_born_after_the_admission() {
        let mut p = patient();
        p.date_of_birth = d("2026-03-02");
        let command = admit_to(p, "W1", "1");
        given::<Spell>([])
            .when(command, now(), &refs())
            .then_refused(SpellError::BornAfterAdmission);
    }

    #[test]
    fn refuses_a_date_of_birth_before_1880_and_accepts_1880_itself() {
        let command = |born: &str| {
            let mut p = patient();
            p.date_of_birth = d(born);
            admit_to(p, "W1", "1")
        };
        for born in ["1879-12-31", "0000-01-01", "-0001-01-01"] {
            given::<Spell>([])
                .when(command(born), now(), &refs())
                .then_refused(SpellError::BornTooLongAgo);
        }
        let outcome = given::<Spell>([])
            .when(command("1880-01-01"), now(), &refs())
            .outcome();
        assert_eq!(outcome.map(|events| events.len()), Ok(1));
    }

    #[test]
    fn accepts_a_patient_born_on_the_day_of_admission() {
        let mut p = patient();
        p.date_of_birth = d("2026-03-01");
        let command = admit_to(p, "W1", "1");
        let outcome = given::<Spell>([]).when(command, now(), &refs()).outcome();
        assert_eq!(outcome.map(|events| events.len()), Ok(1));
    }

    #[test]
    fn refuses_a_second_admission_of_the_same_spell() {
        given::<Spell>([admitted()])
            .when(admit_command(), now(), &refs())
            .then_refused(SpellError::AlreadyAdmitted);
        given::<Spell>([
            admitted(),
            discharged("2026-03-04T10:00:00Z", Some("2026-03-04"), 0),
        ])
        .when(admit_command(), now(), &refs())
        .then_refused(SpellError::AlreadyAdmitted);
    }

    #[test]
    fn refuses_every_other_command_on_an_unknown_spell() {
        for command in every_spell_change() {
            given::<Spell>([])
                .when(command, now(), &refs())
                .then_refused(SpellError::UnknownSpell);
        }
    }

    #[test]
    fn an_admission_claims_the_bed_the_patient_and_the_open_spell() {
        let changes = admitted().reservations("s1");
        let claimed: Vec<_> = changes
            .iter()
            .map(|c| match c {
                ReservationChange::Claim { key, holder } => {
                    assert_eq!(holder, "spell/s1");
                    key.clone()
                }
                other => panic!("expected a claim, got {other:?}"),
            })
            .collect();
        assert_eq!(
            claimed,
            vec![
                ReservationKey::Bed {
                    ward: ward("W1"),
                    bed: bed("1")
                },
                ReservationKey::PatientInHospital {
                    nhs_number: patient().nhs_number
                },
                ReservationKey::OpenSpell {
                    spell: spell_id("s1")
                },
            ]
        );
    }
}

mod transfer {
    use super::*;

    #[test]
    fn transfers_a_patient_to_another_ward_of_the_same_hospital() {
        given::<Spell>([admitted()])
            .when(
                SpellCommand::TransferPatient {
                    ward: ward("W2"),
                    bed: bed("3"),
                    at: t("2026-03-02T10:00:00Z"),
                },
                now(),
                &refs(),
            )
            .then_expect(vec![transferred("W2", "3", "2026-03-02T10:00:00Z")]);
    }

    #[test]
    fn transfers_a_patient_to_another_bed_on_the_same_ward() {
        given::<Spell>([admitted()])
            .when(
                SpellCommand::TransferPatient {
                    ward: ward("W1"),
                    bed: bed("2"),
                    at: t("2026-03-02T10:00:00Z"),
                },
                now(),
                &refs(),
            )
            .then_expect(vec![transferred("W1", "2", "2026-03-02T10:00:00Z")]);
    }

    #[test]
    fn refuses_a_transfer_to_another_hospital() {
        given::<Spell>([admitted()])
            .when(
                SpellCommand::TransferPatient {
                    ward: ward("X1"),
                    bed: bed("1"),
                    at: t("2026-03-02T10:00:00Z"),
                },
                now(),
                &refs(),
            )
            .then_refused(SpellError::TransferToAnotherHospital);
    }

    #[test]
    fn refuses_a_transfer_to_the_bed_the_patient_is_in() {
        given::<Spell>([admitted()])
            .when(
                SpellCommand::TransferPatient {
                    ward: ward("W1"),
                    bed: bed("1"),
                    at: t("2026-03-02T10:00:00Z"),
                },
                now(),
                &refs(),
            )
            .then_refused(SpellError::AlreadyInThatBed);
    }

    #[test]
    fn refuses_a_transfer_to_an_unknown_ward_or_bed() {
        for (w, b, error) in [
            ("NOPE", "1", SpellError::UnknownWard),
            ("W2", "9", SpellError::UnknownBed),
        ] {
            given::<Spell>([admitted()])
                .when(
                    SpellCommand::TransferPatient {
                        ward: ward(w),
                        bed: bed(b),
                        at: t("2026-03-02T10:00:00Z"),
                    },
                    now(),
                    &refs(),
                )
                .then_refused(error);
        }
    }

    #[test]
    fn refuses_a_transfer_before_the_admission() {
        given::<Spell>([admitted()])
            .when(
                SpellCommand::TransferPatient {
                    ward: ward("W2"),
                    bed: bed("1"),
                    at: t("2026-03-01T08:00:00Z"),
                },
                now(),
                &refs(),
            )
            .then_refused(SpellError::BeforeAdmission { field: "at" });
    }

    #[test]
    fn refuses_a_transfer_before_the_previous_transfer() {
        given::<Spell>([admitted(), transferred("W2", "3", "2026-03-03T10:00:00Z")])
            .when(
                SpellCommand::TransferPatient {
                    ward: ward("W2"),
                    bed: bed("4"),
                    at: t("2026-03-02T10:00:00Z"),
                },
                now(),
                &refs(),
            )
            .then_refused(SpellError::OutOfOrder {
                field: "at",
                earlier: "transfer",
            });
    }

    #[test]
    fn accepts_a_transfer_at_the_very_instant_of_the_previous_one() {
        given::<Spell>([admitted(), transferred("W2", "3", "2026-03-03T10:00:00Z")])
            .when(
                SpellCommand::TransferPatient {
                    ward: ward("W2"),
                    bed: bed("4"),
                    at: t("2026-03-03T10:00:00Z"),
                },
                now(),
                &refs(),
            )
            .then_expect(vec![SpellEvent::PatientTransferred {
                from: placement("W2", "3"),
                to: placement("W2", "4"),
                at: t("2026-03-03T10:00:00Z"),
            }]);
    }

    #[test]
    fn accepts_a_transfer_at_the_very_instant_of_the_admission() {
        given::<Spell>([admitted()])
            .when(
                SpellCommand::TransferPatient {
                    ward: ward("W2"),
                    bed: bed("3"),
                    at: admitted_at(),
                },
                now(),
                &refs(),
            )
            .then_expect(vec![transferred("W2", "3", "2026-03-01T09:00:00Z")]);
    }

    #[test]
    fn refuses_a_transfer_a_second_before_the_admission() {
        given::<Spell>([admitted()])
            .when(
                SpellCommand::TransferPatient {
                    ward: ward("W2"),
                    bed: bed("3"),
                    at: t("2026-03-01T08:59:59Z"),
                },
                now(),
                &refs(),
            )
            .then_refused(SpellError::BeforeAdmission { field: "at" });
    }

    #[test]
    fn refuses_a_transfer_in_the_future() {
        given::<Spell>([admitted()])
            .when(
                SpellCommand::TransferPatient {
                    ward: ward("W2"),
                    bed: bed("1"),
                    at: t("2026-03-06T10:00:00Z"),
                },
                now(),
                &refs(),
            )
            .then_refused(SpellError::InFuture { field: "at" });
    }

    #[test]
    fn a_transfer_releases_the_old_bed_and_claims_the_new() {
        let changes = transferred("W2", "3", "2026-03-02T10:00:00Z").reservations("s1");
        assert_eq!(
            changes,
            vec![
                ReservationChange::Release {
                    key: ReservationKey::Bed {
                        ward: ward("W1"),
                        bed: bed("1")
                    },
                    holder: "spell/s1".into()
                },
                ReservationChange::Claim {
                    key: ReservationKey::Bed {
                        ward: ward("W2"),
                        bed: bed("3")
                    },
                    holder: "spell/s1".into()
                },
            ]
        );
    }
}

mod expected_discharge_date {
    use super::*;

    #[test]
    fn sets_an_expected_discharge_date_and_remembers_the_one_it_replaces() {
        given::<Spell>([admitted()])
            .when(
                SpellCommand::SetExpectedDischargeDate {
                    date: d("2026-03-06"),
                },
                now(),
                &refs(),
            )
            .then_expect(vec![SpellEvent::ExpectedDischargeDateSet {
                date: d("2026-03-06"),
                previous: None,
            }]);
        given::<Spell>([
            admitted(),
            SpellEvent::ExpectedDischargeDateSet {
                date: d("2026-03-06"),
                previous: None,
            },
        ])
        .when(
            SpellCommand::SetExpectedDischargeDate {
                date: d("2026-03-08"),
            },
            now(),
            &refs(),
        )
        .then_expect(vec![SpellEvent::ExpectedDischargeDateSet {
            date: d("2026-03-08"),
            previous: Some(d("2026-03-06")),
        }]);
    }

    #[test]
    fn setting_the_same_date_again_records_nothing() {
        given::<Spell>([
            admitted(),
            SpellEvent::ExpectedDischargeDateSet {
                date: d("2026-03-06"),
                previous: None,
            },
        ])
        .when(
            SpellCommand::SetExpectedDischargeDate {
                date: d("2026-03-06"),
            },
            now(),
            &refs(),
        )
        .then_expect(vec![]);
    }

    #[test]
    fn accepts_the_admission_date_itself() {
        given::<Spell>([admitted()])
            .when(
                SpellCommand::SetExpectedDischargeDate {
                    date: d("2026-03-01"),
                },
                now(),
                &refs(),
            )
            .then_expect(vec![SpellEvent::ExpectedDischargeDateSet {
                date: d("2026-03-01"),
                previous: None,
            }]);
    }

    #[test]
    fn refuses_a_date_before_the_admission_date() {
        given::<Spell>([admitted()])
            .when(
                SpellCommand::SetExpectedDischargeDate {
                    date: d("2026-02-28"),
                },
                now(),
                &refs(),
            )
            .then_refused(SpellError::BeforeAdmission { field: "date" });
    }

    #[test]
    fn refuses_a_date_more_than_a_year_ahead_and_accepts_one_exactly_a_year_ahead() {
        // now() is 2026-03-05.
        given::<Spell>([admitted()])
            .when(
                SpellCommand::SetExpectedDischargeDate {
                    date: d("2027-03-06"),
                },
                now(),
                &refs(),
            )
            .then_refused(SpellError::TooFarAhead { field: "date" });
        given::<Spell>([admitted()])
            .when(
                SpellCommand::SetExpectedDischargeDate {
                    date: d("9999-12-31"),
                },
                now(),
                &refs(),
            )
            .then_refused(SpellError::TooFarAhead { field: "date" });
        let outcome = given::<Spell>([admitted()])
            .when(
                SpellCommand::SetExpectedDischargeDate {
                    date: d("2027-03-05"),
                },
                now(),
                &refs(),
            )
            .outcome();
        assert_eq!(outcome.map(|events| events.len()), Ok(1));
    }
}

mod criteria_to_reside {
    use super::*;

    #[test]
    fn a_review_finding_the_criteria_no_longer_met_sets_the_discharge_ready_date() {
        given::<Spell>([admitted()])
            .when(review(false, "2026-03-03T09:30:00Z"), now(), &refs())
            .then_expect(vec![reviewed(
                "2026-03-03T09:30:00Z",
                false,
                Some("2026-03-03"),
            )]);
    }

    #[test]
    fn a_review_finding_them_met_sets_no_date() {
        given::<Spell>([admitted()])
            .when(review(true, "2026-03-02T09:30:00Z"), now(), &refs())
            .then_expect(vec![reviewed("2026-03-02T09:30:00Z", true, None)]);
    }

    #[test]
    fn later_reviews_still_finding_them_unmet_keep_the_first_date() {
        given::<Spell>([
            admitted(),
            reviewed("2026-03-03T09:30:00Z", false, Some("2026-03-03")),
        ])
        .when(review(false, "2026-03-04T09:30:00Z"), now(), &refs())
        .then_expect(vec![reviewed(
            "2026-03-04T09:30:00Z",
            false,
            Some("2026-03-03"),
        )]);
    }

    #[test]
    fn a_review_finding_them_met_again_clears_the_discharge_ready_date() {
        given::<Spell>([
            admitted(),
            reviewed("2026-03-03T09:30:00Z", false, Some("2026-03-03")),
        ])
        .when(review(true, "2026-03-04T09:30:00Z"), now(), &refs())
        .then_expect(vec![reviewed("2026-03-04T09:30:00Z", true, None)]);
    }

    #[test]
    fn a_new_period_of_not_meeting_them_starts_a_new_discharge_ready_date() {
        given::<Spell>([
            admitted(),
            reviewed("2026-03-02T09:30:00Z", false, Some("2026-03-02")),
            reviewed("2026-03-03T09:30:00Z", true, None),
        ])
        .when(review(false, "2026-03-04T09:30:00Z"), now(), &refs())
        .then_expect(vec![reviewed(
            "2026-03-04T09:30:00Z",
            false,
            Some("2026-03-04"),
        )]);
    }

    #[test]
    fn a_late_entered_review_recomputes_the_date_from_reviews_in_time_order() {
        // Reviews on the 3rd (not met) and 4th (not met) are on record; a
        // review of the 2nd (not met) entered late moves the start back.
        given::<Spell>([
            admitted(),
            reviewed("2026-03-03T09:30:00Z", false, Some("2026-03-03")),
            reviewed("2026-03-04T09:30:00Z", false, Some("2026-03-03")),
        ])
        .when(review(false, "2026-03-02T09:30:00Z"), now(), &refs())
        .then_expect(vec![reviewed(
            "2026-03-02T09:30:00Z",
            false,
            Some("2026-03-02"),
        )]);
        // A late "met" on the 3rd between two "not met" splits the period.
        given::<Spell>([
            admitted(),
            reviewed("2026-03-02T09:30:00Z", false, Some("2026-03-02")),
            reviewed("2026-03-04T09:30:00Z", false, Some("2026-03-02")),
        ])
        .when(review(true, "2026-03-03T09:30:00Z"), now(), &refs())
        .then_expect(vec![reviewed(
            "2026-03-03T09:30:00Z",
            true,
            Some("2026-03-04"),
        )]);
    }

    #[test]
    fn the_discharge_ready_date_is_the_english_calendar_date_of_the_review() {
        // 23:30 UTC on 30 June is 00:30 BST on 1 July.
        let summer_admission = admitted_on(t("2026-06-28T09:00:00Z"));
        given::<Spell>([summer_admission])
            .when(
                review(false, "2026-06-30T23:30:00Z"),
                t("2026-07-01T12:00:00Z"),
                &refs(),
            )
            .then_expect(vec![reviewed(
                "2026-06-30T23:30:00Z",
                false,
                Some("2026-07-01"),
            )]);
    }

    #[test]
    fn accepts_a_review_at_the_very_instant_of_the_admission() {
        given::<Spell>([admitted()])
            .when(review(false, "2026-03-01T09:00:00Z"), now(), &refs())
            .then_expect(vec![reviewed(
                "2026-03-01T09:00:00Z",
                false,
                Some("2026-03-01"),
            )]);
    }

    #[test]
    fn refuses_a_review_a_second_before_the_admission() {
        given::<Spell>([admitted()])
            .when(review(false, "2026-03-01T08:59:59Z"), now(), &refs())
            .then_refused(SpellError::BeforeAdmission { field: "at" });
    }

    #[test]
    fn refuses_a_review_before_the_admission_or_in_the_future() {
        given::<Spell>([admitted()])
            .when(review(false, "2026-02-28T09:30:00Z"), now(), &refs())
            .then_refused(SpellError::BeforeAdmission { field: "at" });
        given::<Spell>([admitted()])
            .when(review(false, "2026-03-05T13:00:00Z"), now(), &refs())
            .then_refused(SpellError::InFuture { field: "at" });
    }
}

mod pathway {
    use super::*;

    #[test]
    fn sets_and_changes_the_discharge_pathway() {
        given::<Spell>([admitted()])
            .when(
                SpellCommand::SetDischargePathway {
                    pathway: Pathway::P1,
                },
                now(),
                &refs(),
            )
            .then_expect(vec![SpellEvent::DischargePathwaySet {
                pathway: Pathway::P1,
                previous: None,
            }]);
        given::<Spell>([
            admitted(),
            SpellEvent::DischargePathwaySet {
                pathway: Pathway::P1,
                previous: None,
            },
        ])
        .when(
            SpellCommand::SetDischargePathway {
                pathway: Pathway::P3,
            },
            now(),
            &refs(),
        )
        .then_expect(vec![SpellEvent::DischargePathwaySet {
            pathway: Pathway::P3,
            previous: Some(Pathway::P1),
        }]);
    }

    #[test]
    fn setting_the_same_pathway_again_records_nothing() {
        given::<Spell>([
            admitted(),
            SpellEvent::DischargePathwaySet {
                pathway: Pathway::P2,
                previous: None,
            },
        ])
        .when(
            SpellCommand::SetDischargePathway {
                pathway: Pathway::P2,
            },
            now(),
            &refs(),
        )
        .then_expect(vec![]);
    }
}

mod delays {
    use super::*;

    const TRANSPORT: &str = "Awaiting transport";
    const MEDICINES: &str = "Awaiting medicines to take home";

    fn record(code: &str, at: &str) -> SpellCommand {
        SpellCommand::RecordDelay {
            reason_code: reason(code),
            note: None,
            at: t(at),
        }
    }

    fn resolve(id: &str, at: &str) -> SpellCommand {
        SpellCommand::ResolveDelay {
            delay_id: DelayId::parse(id).unwrap(),
            at: t(at),
        }
    }

    #[test]
    fn records_a_delay_with_its_reason_from_the_current_list() {
        let command = SpellCommand::RecordDelay {
            reason_code: reason("8"),
            note: Some(text("ambulance booked for Friday")),
            at: t("2026-03-03T10:00:00Z"),
        };
        given::<Spell>([admitted()])
            .when(command, now(), &refs())
            .then_expect(vec![SpellEvent::DelayRecorded {
                delay_id: DelayId::parse("D1").unwrap(),
                reason: delay_reason("8", TRANSPORT),
                note: Some(text("ambulance booked for Friday")),
                at: t("2026-03-03T10:00:00Z"),
            }]);
    }

    #[test]
    fn records_several_delays_open_at_once_each_with_its_own_id() {
        given::<Spell>([
            admitted(),
            delay_recorded("D1", "8", TRANSPORT, "2026-03-03T10:00:00Z"),
        ])
        .when(record("5", "2026-03-03T11:00:00Z"), now(), &refs())
        .then_expect(vec![delay_recorded(
            "D2",
            "5",
            MEDICINES,
            "2026-03-03T11:00:00Z",
        )]);
    }

    #[test]
    fn refuses_a_reason_not_in_the_current_list() {
        given::<Spell>([admitted()])
            .when(record("99", "2026-03-03T10:00:00Z"), now(), &refs())
            .then_refused(SpellError::UnknownDelayReason);
    }

    #[test]
    fn refuses_a_second_open_delay_with_the_same_reason() {
        given::<Spell>([
            admitted(),
            delay_recorded("D1", "8", TRANSPORT, "2026-03-03T10:00:00Z"),
        ])
        .when(record("8", "2026-03-03T11:00:00Z"), now(), &refs())
        .then_refused(SpellError::DelayAlreadyOpen);
    }

    #[test]
    fn accepts_the_same_reason_again_once_the_first_delay_is_resolved() {
        given::<Spell>([
            admitted(),
            delay_recorded("D1", "8", TRANSPORT, "2026-03-03T10:00:00Z"),
            SpellEvent::DelayResolved {
                delay_id: DelayId::parse("D1").unwrap(),
                reason: delay_reason("8", TRANSPORT),
                at: t("2026-03-03T12:00:00Z"),
            },
        ])
        .when(record("8", "2026-03-04T10:00:00Z"), now(), &refs())
        .then_expect(vec![delay_recorded(
            "D2",
            "8",
            TRANSPORT,
            "2026-03-04T10:00:00Z",
        )]);
    }

    #[test]
    fn refuses_a_delay_before_the_admission_or_in_the_future() {
        given::<Spell>([admitted()])
            .when(record("8", "2026-02-27T10:00:00Z"), now(), &refs())
            .then_refused(SpellError::BeforeAdmission { field: "at" });
        given::<Spell>([admitted()])
            .when(record("8", "2026-03-07T10:00:00Z"), now(), &refs())
            .then_refused(SpellError::InFuture { field: "at" });
    }

    #[test]
    fn resolves_an_open_delay() {
        given::<Spell>([
            admitted(),
            delay_recorded("D1", "8", TRANSPORT, "2026-03-03T10:00:00Z"),
        ])
        .when(resolve("D1", "2026-03-04T10:00:00Z"), now(), &refs())
        .then_expect(vec![SpellEvent::DelayResolved {
            delay_id: DelayId::parse("D1").unwrap(),
            reason: delay_reason("8", TRANSPORT),
            at: t("2026-03-04T10:00:00Z"),
        }]);
    }

    #[test]
    fn refuses_to_resolve_an_unknown_delay() {
        given::<Spell>([admitted()])
            .when(resolve("D7", "2026-03-04T10:00:00Z"), now(), &refs())
            .then_refused(SpellError::UnknownDelay);
    }

    #[test]
    fn refuses_to_resolve_a_delay_twice() {
        given::<Spell>([
            admitted(),
            delay_recorded("D1", "8", TRANSPORT, "2026-03-03T10:00:00Z"),
            SpellEvent::DelayResolved {
                delay_id: DelayId::parse("D1").unwrap(),
                reason: delay_reason("8", TRANSPORT),
                at: t("2026-03-03T12:00:00Z"),
            },
        ])
        .when(resolve("D1", "2026-03-04T10:00:00Z"), now(), &refs())
        .then_refused(SpellError::DelayAlreadyResolved);
    }

    #[test]
    fn resolves_a_delay_at_the_very_instant_it_began() {
        given::<Spell>([
            admitted(),
            delay_recorded("D1", "8", TRANSPORT, "2026-03-03T10:00:00Z"),
        ])
        .when(resolve("D1", "2026-03-03T10:00:00Z"), now(), &refs())
        .then_expect(vec![SpellEvent::DelayResolved {
            delay_id: DelayId::parse("D1").unwrap(),
            reason: delay_reason("8", TRANSPORT),
            at: t("2026-03-03T10:00:00Z"),
        }]);
    }

    #[test]
    fn refuses_to_resolve_a_delay_a_second_before_it_began() {
        given::<Spell>([
            admitted(),
            delay_recorded("D1", "8", TRANSPORT, "2026-03-03T10:00:00Z"),
        ])
        .when(resolve("D1", "2026-03-03T09:59:59Z"), now(), &refs())
        .then_refused(SpellError::OutOfOrder {
            field: "at",
            earlier: "start of the delay",
        });
    }

    #[test]
    fn refuses_to_resolve_a_delay_before_it_started_or_in_the_future() {
        let history = [
            admitted(),
            delay_recorded("D1", "8", TRANSPORT, "2026-03-03T10:00:00Z"),
        ];
        given::<Spell>(history.clone())
            .when(resolve("D1", "2026-03-03T09:00:00Z"), now(), &refs())
            .then_refused(SpellError::OutOfOrder {
                field: "at",
                earlier: "start of the delay",
            });
        given::<Spell>(history)
            .when(resolve("D1", "2026-03-06T09:00:00Z"), now(), &refs())
            .then_refused(SpellError::InFuture { field: "at" });
    }
}

mod discharge {
    use super::*;

    #[test]
    fn discharges_with_the_discharge_ready_date_and_whole_delay_days() {
        given::<Spell>([
            admitted(),
            reviewed("2026-03-02T09:30:00Z", false, Some("2026-03-02")),
        ])
        .when(discharge("2026-03-05T11:00:00Z"), now(), &refs())
        .then_expect(vec![discharged(
            "2026-03-05T11:00:00Z",
            Some("2026-03-02"),
            3,
        )]);
    }

    #[test]
    fn a_patient_discharged_on_the_discharge_ready_date_has_no_delay_days() {
        given::<Spell>([
            admitted(),
            reviewed("2026-03-04T09:30:00Z", false, Some("2026-03-04")),
        ])
        .when(discharge("2026-03-04T16:00:00Z"), now(), &refs())
        .then_expect(vec![discharged(
            "2026-03-04T16:00:00Z",
            Some("2026-03-04"),
            0,
        )]);
    }

    #[test]
    fn a_stay_of_no_night_reports_no_discharge_ready_date() {
        given::<Spell>([
            admitted(),
            reviewed("2026-03-01T12:00:00Z", false, Some("2026-03-01")),
        ])
        .when(discharge("2026-03-01T18:00:00Z"), now(), &refs())
        .then_expect(vec![discharged("2026-03-01T18:00:00Z", None, 0)]);
    }

    #[test]
    fn a_stay_never_recorded_as_not_meeting_the_criteria_is_ready_on_its_discharge_date() {
        given::<Spell>([admitted(), reviewed("2026-03-02T09:30:00Z", true, None)])
            .when(discharge("2026-03-03T15:00:00Z"), now(), &refs())
            .then_expect(vec![discharged(
                "2026-03-03T15:00:00Z",
                Some("2026-03-03"),
                0,
            )]);
    }

    #[test]
    fn the_reported_date_is_the_start_of_the_final_period_not_the_first() {
        given::<Spell>([
            admitted(),
            reviewed("2026-03-02T09:30:00Z", false, Some("2026-03-02")),
            reviewed("2026-03-03T09:30:00Z", true, None),
            reviewed("2026-03-04T09:30:00Z", false, Some("2026-03-04")),
        ])
        .when(discharge("2026-03-05T11:00:00Z"), now(), &refs())
        .then_expect(vec![discharged(
            "2026-03-05T11:00:00Z",
            Some("2026-03-04"),
            1,
        )]);
    }

    #[test]
    fn refuses_a_second_discharge() {
        given::<Spell>([
            admitted(),
            discharged("2026-03-03T11:00:00Z", Some("2026-03-03"), 0),
        ])
        .when(discharge("2026-03-04T11:00:00Z"), now(), &refs())
        .then_refused(SpellError::AlreadyDischarged);
    }

    #[test]
    fn refuses_a_discharge_before_the_admission_or_in_the_future() {
        given::<Spell>([admitted()])
            .when(discharge("2026-02-28T11:00:00Z"), now(), &refs())
            .then_refused(SpellError::BeforeAdmission { field: "at" });
        given::<Spell>([admitted()])
            .when(discharge("2026-03-05T13:00:00Z"), now(), &refs())
            .then_refused(SpellError::InFuture { field: "at" });
    }

    #[test]
    fn refuses_a_discharge_before_the_latest_recorded_event() {
        given::<Spell>([
            admitted(),
            reviewed("2026-03-04T09:30:00Z", false, Some("2026-03-04")),
        ])
        .when(discharge("2026-03-03T11:00:00Z"), now(), &refs())
        .then_refused(SpellError::OutOfOrder {
            field: "at",
            earlier: "criteria review",
        });
        given::<Spell>([admitted(), transferred("W2", "2", "2026-03-04T09:30:00Z")])
            .when(discharge("2026-03-03T11:00:00Z"), now(), &refs())
            .then_refused(SpellError::OutOfOrder {
                field: "at",
                earlier: "transfer",
            });
    }

    #[test]
    fn accepts_a_discharge_at_the_very_instant_of_the_latest_recorded_event() {
        for latest in [
            transferred("W2", "2", "2026-03-04T09:30:00Z"),
            reviewed("2026-03-04T09:30:00Z", true, None),
            delay_recorded("D1", "8", "Awaiting transport", "2026-03-04T09:30:00Z"),
        ] {
            let outcome = given::<Spell>([admitted(), latest.clone()])
                .when(discharge("2026-03-04T09:30:00Z"), now(), &refs())
                .outcome();
            assert!(
                matches!(&outcome, Ok(events) if matches!(
                    events.as_slice(),
                    [SpellEvent::PatientDischarged { at, .. }] if *at == t("2026-03-04T09:30:00Z")
                )),
                "after {latest:?}: {outcome:?}"
            );
        }
    }

    #[test]
    fn accepts_a_discharge_at_the_very_instant_a_delay_was_resolved() {
        given::<Spell>([
            admitted(),
            delay_recorded("D1", "8", "Awaiting transport", "2026-03-02T09:30:00Z"),
            SpellEvent::DelayResolved {
                delay_id: DelayId::parse("D1").unwrap(),
                reason: delay_reason("8", "Awaiting transport"),
                at: t("2026-03-04T09:30:00Z"),
            },
        ])
        .when(discharge("2026-03-04T09:30:00Z"), now(), &refs())
        .then_expect(vec![discharged(
            "2026-03-04T09:30:00Z",
            Some("2026-03-04"),
            0,
        )]);
    }

    #[test]
    fn refuses_a_discharge_a_second_before_a_delay_was_resolved_or_began() {
        let began = delay_recorded("D1", "8", "Awaiting transport", "2026-03-02T09:30:00Z");
        let resolved = SpellEvent::DelayResolved {
            delay_id: DelayId::parse("D1").unwrap(),
            reason: delay_reason("8", "Awaiting transport"),
            at: t("2026-03-04T09:30:00Z"),
        };
        given::<Spell>([admitted(), began.clone(), resolved])
            .when(discharge("2026-03-04T09:29:59Z"), now(), &refs())
            .then_refused(SpellError::OutOfOrder {
                field: "at",
                earlier: "delay resolution",
            });
        given::<Spell>([admitted(), began])
            .when(discharge("2026-03-02T09:29:59Z"), now(), &refs())
            .then_refused(SpellError::OutOfOrder {
                field: "at",
                earlier: "delay",
            });
    }

    #[test]
    fn a_discharge_before_events_recorded_at_one_instant_names_the_first_kind_checked() {
        // Transfers are checked first, then reviews, delays and resolutions;
        // a later kind at the same instant does not replace the one found.
        given::<Spell>([
            admitted(),
            transferred("W2", "2", "2026-03-04T09:30:00Z"),
            reviewed("2026-03-04T09:30:00Z", true, None),
        ])
        .when(discharge("2026-03-03T11:00:00Z"), now(), &refs())
        .then_refused(SpellError::OutOfOrder {
            field: "at",
            earlier: "transfer",
        });
    }

    #[test]
    fn a_discharge_after_a_review_names_the_later_review_not_the_earlier_transfer() {
        given::<Spell>([
            admitted(),
            transferred("W2", "2", "2026-03-03T09:30:00Z"),
            reviewed("2026-03-04T09:30:00Z", true, None),
        ])
        .when(discharge("2026-03-03T11:00:00Z"), now(), &refs())
        .then_refused(SpellError::OutOfOrder {
            field: "at",
            earlier: "criteria review",
        });
    }

    #[test]
    fn a_discharged_spell_refuses_every_change_but_a_correction() {
        let history = [
            admitted(),
            discharged("2026-03-04T11:00:00Z", Some("2026-03-04"), 0),
        ];
        for command in every_spell_change() {
            let expected = match &command {
                SpellCommand::CancelDischarge { .. } => continue,
                // The PAS corrects identity after discharge too (below).
                SpellCommand::CorrectPatientDetails { .. } => continue,
                SpellCommand::DischargePatient { .. } => SpellError::AlreadyDischarged,
                SpellCommand::CancelAdmission { .. } => SpellError::CancelDischargeFirst,
                _ => SpellError::Discharged,
            };
            given::<Spell>(history.clone())
                .when(command, now(), &refs())
                .then_refused(expected);
        }
    }

    #[test]
    fn a_discharge_releases_everything_the_admission_claimed() {
        let mut ledger = Ledger::default();
        ledger.apply(&admitted().reservations("s1")).unwrap();
        let discharge = discharged("2026-03-04T11:00:00Z", Some("2026-03-04"), 0);
        ledger.apply(&discharge.reservations("s1")).unwrap();
        assert_eq!(ledger.iter().count(), 0);
    }
}

mod corrections {
    use super::*;

    fn cancel_admission() -> SpellCommand {
        SpellCommand::CancelAdmission {
            reason: text("admitted under the wrong patient"),
        }
    }

    #[test]
    fn cancels_an_admission_entered_in_error() {
        given::<Spell>([admitted()])
            .when(cancel_admission(), now(), &refs())
            .then_expect(vec![SpellEvent::AdmissionCancelled {
                reason: text("admitted under the wrong patient"),
                placement: placement("W1", "1"),
                nhs_number: patient().nhs_number,
            }]);
    }

    #[test]
    fn a_cancelled_admission_is_refused_while_a_referral_for_it_is_active() {
        // Given an admitted patient with an active referral to a team,
        let mut ledger = Ledger::default();
        ledger.apply(&admitted().reservations("s1")).unwrap();
        let referral = ReservationKey::ActiveReferral {
            spell: domain::values::SpellId::parse("s1").unwrap(),
            team: domain::values::TeamCode::parse("REAB").unwrap(),
        };
        ledger
            .apply(&[ReservationChange::Claim {
                key: referral,
                holder: "referral/r1".into(),
            }])
            .unwrap();
        let cancelled = SpellEvent::AdmissionCancelled {
            reason: text("wrong patient"),
            placement: placement("W1", "1"),
            nhs_number: patient().nhs_number,
        };
        // when the admission is cancelled, then the commit is refused and the
        // bed stays taken; once the referral has ended, it goes through.
        let before = ledger.clone();
        assert_eq!(
            ledger.apply(&cancelled.reservations("s1")),
            Err(ReservationConflict::ReferralsStillActive)
        );
        assert_eq!(ledger, before);
        ledger
            .apply(&[ReservationChange::ReleaseAll {
                holder: "referral/r1".into(),
            }])
            .unwrap();
        assert_eq!(ledger.apply(&cancelled.reservations("s1")), Ok(()));
        assert_eq!(ledger.iter().count(), 0);
    }

    #[test]
    fn a_cancelled_admission_accepts_no_command() {
        let history = [
            admitted(),
            SpellEvent::AdmissionCancelled {
                reason: text("wrong patient"),
                placement: placement("W1", "1"),
                nhs_number: patient().nhs_number,
            },
        ];
        for command in every_spell_change() {
            given::<Spell>(history.clone())
                .when(command, now(), &refs())
                .then_refused(SpellError::AdmissionCancelled);
        }
        given::<Spell>(history)
            .when(admit_command(), now(), &refs())
            .then_refused(SpellError::AlreadyAdmitted);
    }

    #[test]
    fn refuses_to_cancel_the_admission_of_a_discharged_spell() {
        given::<Spell>([
            admitted(),
            discharged("2026-03-04T11:00:00Z", Some("2026-03-04"), 0),
        ])
        .when(cancel_admission(), now(), &refs())
        .then_refused(SpellError::CancelDischargeFirst);
    }

    #[test]
    fn cancels_the_latest_transfer_and_puts_the_patient_back() {
        given::<Spell>([admitted(), transferred("W2", "3", "2026-03-02T10:00:00Z")])
            .when(
                SpellCommand::CancelTransfer {
                    reason: text("wrong bed keyed"),
                },
                now(),
                &refs(),
            )
            .then_expect(vec![SpellEvent::TransferCancelled {
                reason: text("wrong bed keyed"),
                from: placement("W2", "3"),
                back_to: placement("W1", "1"),
                transfer_at: t("2026-03-02T10:00:00Z"),
            }]);
    }

    #[test]
    fn cancelling_two_transfers_walks_back_two_steps() {
        let second = SpellEvent::PatientTransferred {
            from: placement("W2", "3"),
            to: placement("W2", "4"),
            at: t("2026-03-03T10:00:00Z"),
        };
        let undo_second = SpellEvent::TransferCancelled {
            reason: text("x"),
            from: placement("W2", "4"),
            back_to: placement("W2", "3"),
            transfer_at: t("2026-03-03T10:00:00Z"),
        };
        given::<Spell>([
            admitted(),
            transferred("W2", "3", "2026-03-02T10:00:00Z"),
            second,
            undo_second,
        ])
        .when(
            SpellCommand::CancelTransfer { reason: text("y") },
            now(),
            &refs(),
        )
        .then_expect(vec![SpellEvent::TransferCancelled {
            reason: text("y"),
            from: placement("W2", "3"),
            back_to: placement("W1", "1"),
            transfer_at: t("2026-03-02T10:00:00Z"),
        }]);
    }

    #[test]
    fn refuses_to_cancel_a_transfer_when_there_is_none() {
        given::<Spell>([admitted()])
            .when(
                SpellCommand::CancelTransfer { reason: text("x") },
                now(),
                &refs(),
            )
            .then_refused(SpellError::NoTransferToCancel);
    }

    #[test]
    fn cancels_a_discharge_and_reopens_the_spell() {
        let history = [
            admitted(),
            discharged("2026-03-04T11:00:00Z", Some("2026-03-04"), 0),
        ];
        let cancelled = SpellEvent::DischargeCancelled {
            reason: text("patient did not leave"),
            placement: placement("W1", "1"),
            nhs_number: patient().nhs_number,
            discharge_at: t("2026-03-04T11:00:00Z"),
        };
        given::<Spell>(history.clone())
            .when(
                SpellCommand::CancelDischarge {
                    reason: text("patient did not leave"),
                },
                now(),
                &refs(),
            )
            .then_expect(vec![cancelled.clone()]);
        let reopened = given::<Spell>([history[0].clone(), history[1].clone(), cancelled]);
        let stay = reopened.state().stay().unwrap();
        assert_eq!(stay.status, SpellStatus::Open);
        assert_eq!(stay.discharge, None);
    }

    #[test]
    fn refuses_to_cancel_the_discharge_of_an_open_spell() {
        given::<Spell>([admitted()])
            .when(
                SpellCommand::CancelDischarge { reason: text("x") },
                now(),
                &refs(),
            )
            .then_refused(SpellError::NotDischarged);
    }

    #[test]
    fn cancelling_a_discharge_claims_the_bed_and_patient_again() {
        let mut ledger = Ledger::default();
        let history = [
            admitted(),
            discharged("2026-03-04T11:00:00Z", Some("2026-03-04"), 0),
        ];
        for event in &history {
            ledger.apply(&event.reservations("s1")).unwrap();
        }
        // Someone else took the bed meanwhile: the correction conflicts.
        ledger
            .apply(&[ReservationChange::Claim {
                key: ReservationKey::Bed {
                    ward: ward("W1"),
                    bed: bed("1"),
                },
                holder: "spell/s2".into(),
            }])
            .unwrap();
        let cancelled = SpellEvent::DischargeCancelled {
            reason: text("x"),
            placement: placement("W1", "1"),
            nhs_number: patient().nhs_number,
            discharge_at: t("2026-03-04T11:00:00Z"),
        };
        assert!(matches!(
            ledger.apply(&cancelled.reservations("s1")),
            Err(domain::reservation::ReservationConflict::BedOccupied { .. })
        ));
    }
}

mod referral_subject {
    use super::*;

    #[test]
    fn only_an_open_spell_can_be_referred() {
        assert_eq!(
            given::<Spell>([admitted()]).state().referral_subject(),
            Ok(subject())
        );
        assert_eq!(
            given::<Spell>([]).state().referral_subject(),
            Err(SpellError::UnknownSpell)
        );
        assert_eq!(
            given::<Spell>([admitted(), discharged("2026-03-04T11:00:00Z", None, 0)])
                .state()
                .referral_subject(),
            Err(SpellError::Discharged)
        );
        let cancelled = SpellEvent::AdmissionCancelled {
            reason: text("x"),
            placement: placement("W1", "1"),
            nhs_number: patient().nhs_number,
        };
        assert_eq!(
            given::<Spell>([admitted(), cancelled])
                .state()
                .referral_subject(),
            Err(SpellError::AdmissionCancelled)
        );
    }
}

#[test]
fn event_type_names_are_stable() {
    let names: Vec<_> = [
        admitted(),
        transferred("W2", "1", "2026-03-02T10:00:00Z"),
        reviewed("2026-03-02T10:00:00Z", true, None),
        discharged("2026-03-04T11:00:00Z", None, 0),
    ]
    .iter()
    .map(|e| e.event_type())
    .collect();
    assert_eq!(
        names,
        [
            "PatientAdmitted",
            "PatientTransferred",
            "CriteriaToResideReviewed",
            "PatientDischarged"
        ]
    );
}

#[test]
fn every_spell_event_keeps_its_stable_name_at_version_one() {
    let at = t("2026-03-02T10:00:00Z");
    let events = [
        admitted(),
        transferred("W2", "1", "2026-03-02T10:00:00Z"),
        SpellEvent::ExpectedDischargeDateSet {
            date: d("2026-03-09"),
            previous: None,
        },
        reviewed("2026-03-02T10:00:00Z", true, None),
        SpellEvent::DischargePathwaySet {
            pathway: Pathway::P1,
            previous: None,
        },
        delay_recorded("D1", "8", "Awaiting transport", "2026-03-02T10:00:00Z"),
        SpellEvent::DelayResolved {
            delay_id: DelayId::parse("D1").unwrap(),
            reason: delay_reason("8", "Awaiting transport"),
            at,
        },
        discharged("2026-03-04T11:00:00Z", None, 0),
        SpellEvent::AdmissionCancelled {
            reason: text("wrong patient"),
            placement: placement("W1", "1"),
            nhs_number: patient().nhs_number,
        },
        SpellEvent::TransferCancelled {
            reason: text("wrong bed"),
            from: placement("W2", "1"),
            back_to: placement("W1", "1"),
            transfer_at: at,
        },
        SpellEvent::DischargeCancelled {
            reason: text("still here"),
            placement: placement("W1", "1"),
            nhs_number: patient().nhs_number,
            discharge_at: at,
        },
    ];
    let names: Vec<_> = events
        .iter()
        .map(|e| (e.event_type(), e.event_version()))
        .collect();
    assert_eq!(
        names,
        [
            ("PatientAdmitted", "2"),
            ("PatientTransferred", "1"),
            ("ExpectedDischargeDateSet", "1"),
            ("CriteriaToResideReviewed", "1"),
            ("DischargePathwaySet", "1"),
            ("DelayRecorded", "1"),
            ("DelayResolved", "1"),
            ("PatientDischarged", "1"),
            ("AdmissionCancelled", "1"),
            ("TransferCancelled", "1"),
            ("DischargeCancelled", "1"),
        ]
    );
}

mod patient_details {
    //! ADT A08: the PAS corrects a patient's identity.
    use super::*;
    use domain::spell::Patient;
    use domain::values::{NhsNumber, PersonName};

    fn corrected() -> Patient {
        Patient {
            family_name: PersonName::parse("Smyth").unwrap(),
            given_name: PersonName::parse("Adah").unwrap(),
            date_of_birth: d("1941-07-13"),
            ..patient()
        }
    }

    fn correct(patient: Patient) -> SpellCommand {
        SpellCommand::CorrectPatientDetails { patient }
    }

    fn corrected_event(now: Patient, open: bool) -> SpellEvent {
        SpellEvent::PatientDetailsCorrected {
            patient: now,
            previous: patient(),
            placement: placement("W1", "1"),
            open,
        }
    }

    #[test]
    fn corrects_the_details_of_an_open_spell_naming_what_they_replace() {
        given::<Spell>([admitted()])
            .when(correct(corrected()), now(), &refs())
            .then_expect(vec![corrected_event(corrected(), true)]);
    }

    #[test]
    fn corrects_the_details_of_a_discharged_spell_which_is_not_open() {
        given::<Spell>([
            admitted(),
            discharged("2026-03-04T11:00:00Z", Some("2026-03-04"), 0),
        ])
        .when(correct(corrected()), now(), &refs())
        .then_expect(vec![corrected_event(corrected(), false)]);
    }

    #[test]
    fn the_same_details_again_record_nothing() {
        given::<Spell>([admitted()])
            .when(correct(patient()), now(), &refs())
            .then_expect(vec![]);
    }

    #[test]
    fn refuses_a_spell_never_admitted() {
        given::<Spell>([])
            .when(correct(corrected()), now(), &refs())
            .then_refused(SpellError::UnknownSpell);
    }

    #[test]
    fn refuses_a_date_of_birth_after_the_admission_day_and_accepts_that_day() {
        let born = |date: &str| Patient {
            date_of_birth: d(date),
            ..patient()
        };
        given::<Spell>([admitted()])
            .when(correct(born("2026-03-02")), now(), &refs())
            .then_refused(SpellError::BornAfterAdmission);
        given::<Spell>([admitted()])
            .when(correct(born("2026-03-01")), now(), &refs())
            .then_expect(vec![corrected_event(born("2026-03-01"), true)]);
    }

    #[test]
    fn refuses_a_date_of_birth_before_1880_and_accepts_1880_itself() {
        let born = |date: &str| Patient {
            date_of_birth: d(date),
            ..patient()
        };
        given::<Spell>([admitted()])
            .when(correct(born("1879-12-31")), now(), &refs())
            .then_refused(SpellError::BornTooLongAgo);
        given::<Spell>([admitted()])
            .when(correct(born("1880-01-01")), now(), &refs())
            .then_expect(vec![corrected_event(born("1880-01-01"), true)]);
    }

    #[test]
    fn later_decisions_use_the_corrected_details() {
        let other = patient_with("9434765919");
        given::<Spell>([admitted(), corrected_event(other.clone(), true)])
            .when(
                SpellCommand::CancelAdmission {
                    reason: text("wrong patient"),
                },
                now(),
                &refs(),
            )
            .then_expect(vec![SpellEvent::AdmissionCancelled {
                reason: text("wrong patient"),
                placement: placement("W1", "1"),
                nhs_number: other.nhs_number,
            }]);
    }

    #[test]
    fn a_corrected_nhs_number_of_an_open_spell_moves_the_patients_reservation() {
        let other = patient_with("9434765919");
        let holder = "spell/s1".to_owned();
        assert_eq!(
            corrected_event(other.clone(), true).reservations("s1"),
            vec![
                ReservationChange::Release {
                    key: ReservationKey::PatientInHospital {
                        nhs_number: patient().nhs_number
                    },
                    holder: holder.clone(),
                },
                ReservationChange::Claim {
                    key: ReservationKey::PatientInHospital {
                        nhs_number: NhsNumber::parse("9434765919").unwrap()
                    },
                    holder,
                },
            ]
        );
        // Not open: the reservation was released at discharge.
        assert_eq!(corrected_event(other, false).reservations("s1"), vec![]);
        // The same number: nothing moves.
        assert_eq!(
            corrected_event(corrected(), true).reservations("s1"),
            vec![]
        );
    }

    #[test]
    fn a_corrected_nhs_number_that_has_an_open_spell_elsewhere_is_refused_at_commit() {
        let mut ledger = Ledger::default();
        ledger.apply(&admitted().reservations("s1")).unwrap();
        let elsewhere = SpellEvent::PatientAdmitted {
            spell_id: spell_id("s2"),
            patient: patient_with("9434765919"),
            placement: placement("W1", "2"),
            admitted_at: admitted_at(),
            visit_number: None,
        };
        ledger.apply(&elsewhere.reservations("s2")).unwrap();
        assert_eq!(
            ledger.apply(&corrected_event(patient_with("9434765919"), true).reservations("s1")),
            Err(ReservationConflict::PatientAlreadyInHospital)
        );
    }

    #[test]
    fn its_event_type_is_patient_details_corrected_at_version_1() {
        let event = corrected_event(corrected(), true);
        assert_eq!(event.event_type(), "PatientDetailsCorrected");
        assert_eq!(event.event_version(), "1");
    }
}
