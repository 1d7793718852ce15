//! Given/when/then scenarios for every referral command and every refusal.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use common::*;
use domain::decider::DomainEvent;
use domain::referral::{Referral, ReferralCommand, ReferralError, ReferralEvent, ReferralStatus};
use domain::reservation::{ReservationChange, ReservationKey};
use domain::testing::given;
use domain::values::{Instant, Pathway, ReferralId, ServiceKind};

fn raised_at() -> Instant {
    t("2026-03-03T10:00:00Z")
}

const SUMMARY: &str = "Lives alone; needs help with washing and dressing";

fn raise_command() -> ReferralCommand {
    raise_to("REAB", ServiceKind::Reablement, Pathway::P1, SUMMARY)
}

/// Referral r1 of the usual subject.
fn raise_to(code: &str, service: ServiceKind, pathway: Pathway, summary: &str) -> ReferralCommand {
    ReferralCommand::RaiseReferral {
        referral_id: ReferralId::parse("r1").unwrap(),
        subject: subject(),
        team: team(code),
        service,
        pathway,
        summary: text(summary),
    }
}

fn refused_to_raise(command: ReferralCommand, error: ReferralError) {
    given::<Referral>([])
        .when(command, raised_at(), &refs())
        .then_refused(error);
}

fn raised() -> ReferralEvent {
    ReferralEvent::ReferralRaised {
        referral_id: ReferralId::parse("r1").unwrap(),
        subject: subject(),
        team: team("REAB"),
        service: ServiceKind::Reablement,
        pathway: Pathway::P1,
        summary: text(SUMMARY),
        raised_at: raised_at(),
        response_sla_minutes: 120,
        respond_by: t("2026-03-03T12:00:00Z"),
    }
}

fn acknowledged() -> ReferralEvent {
    ReferralEvent::ReferralAcknowledged {
        at: t("2026-03-03T10:30:00Z"),
    }
}

fn accepted() -> ReferralEvent {
    ReferralEvent::ReferralAccepted {
        planned_start: d("2026-03-06"),
        at: t("2026-03-03T11:00:00Z"),
    }
}

/// A history leading to each status.
fn history_to(status: ReferralStatus) -> Vec<ReferralEvent> {
    let at = t("2026-03-03T11:00:00Z");
    match status {
        ReferralStatus::Requested => vec![raised()],
        ReferralStatus::Received => vec![raised(), acknowledged()],
        ReferralStatus::Accepted => vec![raised(), acknowledged(), accepted()],
        ReferralStatus::Rejected => vec![
            raised(),
            ReferralEvent::ReferralDeclined {
                reason: text("out of area"),
                at,
            },
        ],
        ReferralStatus::OnHold => vec![
            raised(),
            ReferralEvent::InformationRequested {
                question: text("Is a key safe fitted?"),
                at,
            },
        ],
        ReferralStatus::Cancelled => vec![
            raised(),
            ReferralEvent::ReferralWithdrawn {
                reason: text("patient died"),
                at,
            },
        ],
        ReferralStatus::Completed => vec![
            raised(),
            acknowledged(),
            accepted(),
            ReferralEvent::CareStarted {
                at: t("2026-03-06T09:00:00Z"),
            },
        ],
    }
}

/// Each life-cycle command with the status it leads to.
fn transitions() -> Vec<(ReferralCommand, ReferralStatus)> {
    vec![
        (
            ReferralCommand::AcknowledgeReferral,
            ReferralStatus::Received,
        ),
        (
            ReferralCommand::AcceptReferral {
                planned_start: d("2026-03-06"),
            },
            ReferralStatus::Accepted,
        ),
        (
            ReferralCommand::DeclineReferral {
                reason: text("no capacity"),
            },
            ReferralStatus::Rejected,
        ),
        (
            ReferralCommand::RequestInformation {
                question: text("Any stairs?"),
            },
            ReferralStatus::OnHold,
        ),
        (
            ReferralCommand::ProvideInformation {
                answer: text("Twelve stairs, one rail"),
            },
            ReferralStatus::Received,
        ),
        (
            ReferralCommand::WithdrawReferral {
                reason: text("going home with family"),
            },
            ReferralStatus::Cancelled,
        ),
        (
            ReferralCommand::StartCare {
                at: t("2026-03-05T09:00:00Z"),
            },
            ReferralStatus::Completed,
        ),
    ]
}

mod raising {
    use super::*;

    #[test]
    fn raises_a_referral_with_the_teams_response_deadline() {
        given::<Referral>([])
            .when(raise_command(), raised_at(), &refs())
            .then_expect(vec![raised()]);
    }

    #[test]
    fn refuses_a_referral_to_an_unknown_team() {
        refused_to_raise(
            raise_to("NOPE", ServiceKind::Reablement, Pathway::P1, SUMMARY),
            ReferralError::UnknownTeam,
        );
    }

    #[test]
    fn refuses_a_service_the_team_does_not_offer() {
        refused_to_raise(
            raise_to("REAB", ServiceKind::CareHome, Pathway::P3, "x"),
            ReferralError::ServiceNotOffered,
        );
    }

    #[test]
    fn refuses_a_referral_on_pathway_zero() {
        refused_to_raise(
            raise_to("REAB", ServiceKind::Reablement, Pathway::P0, "x"),
            ReferralError::PathwayNeedsNoReferral,
        );
    }

    #[test]
    fn refuses_raising_the_same_referral_twice() {
        given::<Referral>([raised()])
            .when(raise_command(), raised_at(), &refs())
            .then_refused(ReferralError::AlreadyRaised);
    }

    #[test]
    fn refuses_every_other_command_on_an_unknown_referral() {
        let mut commands: Vec<_> = transitions().into_iter().map(|(c, _)| c).collect();
        commands.push(ReferralCommand::EscalateReferral);
        for command in commands {
            given::<Referral>([])
                .when(command, now(), &refs())
                .then_refused(ReferralError::UnknownReferral);
        }
    }

    #[test]
    fn raising_needs_the_spell_open_and_takes_its_active_referral_to_the_team() {
        assert_eq!(
            raised().reservations("r1"),
            vec![
                ReservationChange::Require {
                    key: ReservationKey::OpenSpell {
                        spell: spell_id("s1")
                    }
                },
                ReservationChange::Claim {
                    key: ReservationKey::ActiveReferral {
                        spell: spell_id("s1"),
                        team: team("REAB")
                    },
                    holder: "referral/r1".into()
                },
            ]
        );
    }

    #[test]
    fn ending_a_referral_gives_its_active_key_back() {
        for status in [
            ReferralStatus::Rejected,
            ReferralStatus::Cancelled,
            ReferralStatus::Completed,
        ] {
            let last = history_to(status).pop().unwrap();
            assert_eq!(
                last.reservations("r1"),
                vec![ReservationChange::ReleaseAll {
                    holder: "referral/r1".into()
                }],
                "{status}"
            );
        }
        assert!(acknowledged().reservations("r1").is_empty());
    }
}

mod life_cycle {
    use super::*;

    #[test]
    fn the_team_acknowledges_a_requested_referral() {
        given::<Referral>([raised()])
            .when(
                ReferralCommand::AcknowledgeReferral,
                t("2026-03-03T10:30:00Z"),
                &refs(),
            )
            .then_expect(vec![acknowledged()]);
    }

    #[test]
    fn the_team_accepts_with_a_planned_start() {
        given::<Referral>([raised(), acknowledged()])
            .when(
                ReferralCommand::AcceptReferral {
                    planned_start: d("2026-03-06"),
                },
                t("2026-03-03T11:00:00Z"),
                &refs(),
            )
            .then_expect(vec![accepted()]);
    }

    #[test]
    fn the_team_may_accept_without_acknowledging_first() {
        let state = given::<Referral>([raised(), accepted()]);
        let referral = state.state().state().unwrap();
        assert_eq!(referral.status, ReferralStatus::Accepted);
        assert_eq!(referral.acknowledged_at, Some(t("2026-03-03T11:00:00Z")));
        given::<Referral>([raised()])
            .when(
                ReferralCommand::AcceptReferral {
                    planned_start: d("2026-03-06"),
                },
                t("2026-03-03T11:00:00Z"),
                &refs(),
            )
            .then_expect(vec![accepted()]);
    }

    #[test]
    fn refuses_a_planned_start_before_the_referral_was_raised() {
        given::<Referral>([raised(), acknowledged()])
            .when(
                ReferralCommand::AcceptReferral {
                    planned_start: d("2026-03-02"),
                },
                now(),
                &refs(),
            )
            .then_refused(ReferralError::PlannedStartBeforeReferral);
    }

    #[test]
    fn the_team_may_plan_to_start_on_the_day_the_referral_was_raised() {
        given::<Referral>([raised(), acknowledged()])
            .when(
                ReferralCommand::AcceptReferral {
                    planned_start: d("2026-03-03"),
                },
                t("2026-03-03T11:00:00Z"),
                &refs(),
            )
            .then_expect(vec![ReferralEvent::ReferralAccepted {
                planned_start: d("2026-03-03"),
                at: t("2026-03-03T11:00:00Z"),
            }]);
    }

    #[test]
    fn refuses_a_planned_start_the_day_before_the_referral_was_raised() {
        given::<Referral>([raised(), acknowledged()])
            .when(
                ReferralCommand::AcceptReferral {
                    planned_start: d("2026-03-02"),
                },
                t("2026-03-03T11:00:00Z"),
                &refs(),
            )
            .then_refused(ReferralError::PlannedStartBeforeReferral);
    }

    #[test]
    fn the_team_declines_with_a_reason() {
        given::<Referral>([raised(), acknowledged()])
            .when(
                ReferralCommand::DeclineReferral {
                    reason: text("out of area"),
                },
                t("2026-03-03T11:00:00Z"),
                &refs(),
            )
            .then_expect(vec![ReferralEvent::ReferralDeclined {
                reason: text("out of area"),
                at: t("2026-03-03T11:00:00Z"),
            }]);
    }

    #[test]
    fn the_team_may_accept_or_decline_while_its_question_is_unanswered() {
        let on_hold = history_to(ReferralStatus::OnHold);
        given::<Referral>(on_hold.clone())
            .when(
                ReferralCommand::AcceptReferral {
                    planned_start: d("2026-03-06"),
                },
                t("2026-03-03T12:00:00Z"),
                &refs(),
            )
            .then_expect(vec![ReferralEvent::ReferralAccepted {
                planned_start: d("2026-03-06"),
                at: t("2026-03-03T12:00:00Z"),
            }]);
        given::<Referral>(on_hold)
            .when(
                ReferralCommand::DeclineReferral {
                    reason: text("no reply about access"),
                },
                t("2026-03-03T12:00:00Z"),
                &refs(),
            )
            .then_expect(vec![ReferralEvent::ReferralDeclined {
                reason: text("no reply about access"),
                at: t("2026-03-03T12:00:00Z"),
            }]);
    }

    #[test]
    fn the_team_asks_a_question_and_the_ward_answers_it() {
        let asked = ReferralEvent::InformationRequested {
            question: text("Is a key safe fitted?"),
            at: t("2026-03-03T11:00:00Z"),
        };
        given::<Referral>([raised(), acknowledged()])
            .when(
                ReferralCommand::RequestInformation {
                    question: text("Is a key safe fitted?"),
                },
                t("2026-03-03T11:00:00Z"),
                &refs(),
            )
            .then_expect(vec![asked.clone()]);
        let answered = ReferralEvent::InformationProvided {
            answer: text("Yes, code with the ward"),
            at: t("2026-03-03T12:00:00Z"),
        };
        given::<Referral>([raised(), acknowledged(), asked.clone()])
            .when(
                ReferralCommand::ProvideInformation {
                    answer: text("Yes, code with the ward"),
                },
                t("2026-03-03T12:00:00Z"),
                &refs(),
            )
            .then_expect(vec![answered.clone()]);
        let after = given::<Referral>([raised(), acknowledged(), asked, answered]);
        let referral = after.state().state().unwrap();
        assert_eq!(referral.status, ReferralStatus::Received);
        assert_eq!(
            referral.exchanges[0].answer,
            Some(text("Yes, code with the ward"))
        );
    }

    #[test]
    fn refuses_an_answer_when_nothing_was_asked() {
        given::<Referral>([raised(), acknowledged()])
            .when(
                ReferralCommand::ProvideInformation { answer: text("x") },
                now(),
                &refs(),
            )
            .then_refused(ReferralError::InvalidTransition {
                from: ReferralStatus::Received,
                to: ReferralStatus::Received,
            });
    }

    #[test]
    fn the_ward_withdraws_an_accepted_referral() {
        given::<Referral>([raised(), acknowledged(), accepted()])
            .when(
                ReferralCommand::WithdrawReferral {
                    reason: text("going home with family"),
                },
                now(),
                &refs(),
            )
            .then_expect(vec![ReferralEvent::ReferralWithdrawn {
                reason: text("going home with family"),
                at: now(),
            }]);
    }

    #[test]
    fn the_team_starts_care_on_an_accepted_referral() {
        given::<Referral>([raised(), acknowledged(), accepted()])
            .when(
                ReferralCommand::StartCare {
                    at: t("2026-03-05T09:00:00Z"),
                },
                now(),
                &refs(),
            )
            .then_expect(vec![ReferralEvent::CareStarted {
                at: t("2026-03-05T09:00:00Z"),
            }]);
    }

    #[test]
    fn refuses_to_start_care_before_acceptance() {
        given::<Referral>([raised(), acknowledged()])
            .when(
                ReferralCommand::StartCare {
                    at: t("2026-03-05T09:00:00Z"),
                },
                now(),
                &refs(),
            )
            .then_refused(ReferralError::InvalidTransition {
                from: ReferralStatus::Received,
                to: ReferralStatus::Completed,
            });
    }

    #[test]
    fn refuses_care_starting_before_the_referral_or_in_the_future() {
        let history = [raised(), acknowledged(), accepted()];
        given::<Referral>(history.clone())
            .when(
                ReferralCommand::StartCare {
                    at: t("2026-03-03T09:00:00Z"),
                },
                now(),
                &refs(),
            )
            .then_refused(ReferralError::CareStartBeforeReferral);
        given::<Referral>(history)
            .when(
                ReferralCommand::StartCare {
                    at: t("2026-03-06T09:00:00Z"),
                },
                now(),
                &refs(),
            )
            .then_refused(ReferralError::InFuture { field: "at" });
    }

    #[test]
    fn care_may_start_at_the_very_instant_the_referral_was_raised() {
        given::<Referral>([raised(), acknowledged(), accepted()])
            .when(
                ReferralCommand::StartCare { at: raised_at() },
                now(),
                &refs(),
            )
            .then_expect(vec![ReferralEvent::CareStarted { at: raised_at() }]);
    }

    #[test]
    fn refuses_care_starting_a_second_before_the_referral_was_raised() {
        given::<Referral>([raised(), acknowledged(), accepted()])
            .when(
                ReferralCommand::StartCare {
                    at: raised_at() - chrono::Duration::seconds(1),
                },
                now(),
                &refs(),
            )
            .then_refused(ReferralError::CareStartBeforeReferral);
    }

    #[test]
    fn every_command_follows_the_fhir_task_life_cycle_from_every_status() {
        for from in ReferralStatus::ALL {
            for (command, to) in transitions() {
                let allowed = match &command {
                    ReferralCommand::ProvideInformation { .. } => from == ReferralStatus::OnHold,
                    _ => from.can_become(to),
                };
                let outcome = given::<Referral>(history_to(from))
                    .when(command.clone(), now(), &refs())
                    .outcome();
                if allowed {
                    let events = outcome.unwrap_or_else(|e| panic!("{from} -> {to}: {e:?}"));
                    let after = given::<Referral>(history_to(from).into_iter().chain(events));
                    assert_eq!(after.state().state().unwrap().status, to, "{from} -> {to}");
                } else {
                    assert_eq!(
                        outcome,
                        Err(ReferralError::InvalidTransition { from, to }),
                        "{from} -> {to} must be refused"
                    );
                }
            }
        }
    }

    #[test]
    fn a_closed_referral_accepts_no_move() {
        for from in ReferralStatus::ALL.into_iter().filter(|s| s.is_final()) {
            for to in ReferralStatus::ALL {
                assert!(!from.can_become(to), "{from} -> {to}");
            }
        }
    }
}

mod escalation {
    use super::*;

    #[test]
    fn escalates_a_referral_unacknowledged_past_its_sla() {
        given::<Referral>([raised()])
            .when(
                ReferralCommand::EscalateReferral,
                t("2026-03-03T12:00:00Z"),
                &refs(),
            )
            .then_expect(vec![ReferralEvent::ReferralEscalated {
                at: t("2026-03-03T12:00:00Z"),
                respond_by: t("2026-03-03T12:00:00Z"),
            }]);
    }

    #[test]
    fn refuses_escalation_before_the_sla_passes() {
        given::<Referral>([raised()])
            .when(
                ReferralCommand::EscalateReferral,
                t("2026-03-03T11:59:00Z"),
                &refs(),
            )
            .then_refused(ReferralError::EscalationNotDue);
    }

    #[test]
    fn escalates_only_once() {
        let escalated = ReferralEvent::ReferralEscalated {
            at: t("2026-03-03T12:00:00Z"),
            respond_by: t("2026-03-03T12:00:00Z"),
        };
        given::<Referral>([raised(), escalated])
            .when(ReferralCommand::EscalateReferral, now(), &refs())
            .then_refused(ReferralError::AlreadyEscalated);
    }

    #[test]
    fn refuses_escalation_of_a_referral_already_answered() {
        for status in ReferralStatus::ALL
            .into_iter()
            .filter(|s| *s != ReferralStatus::Requested)
        {
            given::<Referral>(history_to(status))
                .when(ReferralCommand::EscalateReferral, now(), &refs())
                .then_refused(ReferralError::NotAwaitingAcknowledgement);
        }
    }

    #[test]
    fn an_escalated_referral_can_still_be_acknowledged() {
        let escalated = ReferralEvent::ReferralEscalated {
            at: t("2026-03-03T12:00:00Z"),
            respond_by: t("2026-03-03T12:00:00Z"),
        };
        given::<Referral>([raised(), escalated])
            .when(ReferralCommand::AcknowledgeReferral, now(), &refs())
            .then_expect(vec![ReferralEvent::ReferralAcknowledged { at: now() }]);
    }
}

#[test]
fn statuses_serialise_as_fhir_task_codes() {
    let codes: Vec<_> = ReferralStatus::ALL
        .iter()
        .map(|s| serde_json::to_value(s).unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "requested",
            "received",
            "accepted",
            "rejected",
            "on-hold",
            "cancelled",
            "completed"
        ]
    );
}

#[test]
fn rejected_cancelled_and_completed_are_final_and_no_other_status_is() {
    let finals: Vec<_> = ReferralStatus::ALL
        .into_iter()
        .filter(|s| s.is_final())
        .collect();
    assert_eq!(
        finals,
        [
            ReferralStatus::Rejected,
            ReferralStatus::Cancelled,
            ReferralStatus::Completed
        ]
    );
}

#[test]
fn each_status_shows_as_its_fhir_task_code_the_same_as_in_json() {
    let shown: Vec<_> = ReferralStatus::ALL
        .iter()
        .map(|s| (s.code(), s.to_string()))
        .collect();
    assert_eq!(
        shown,
        [
            ("requested", "requested".to_owned()),
            ("received", "received".to_owned()),
            ("accepted", "accepted".to_owned()),
            ("rejected", "rejected".to_owned()),
            ("on-hold", "on-hold".to_owned()),
            ("cancelled", "cancelled".to_owned()),
            ("completed", "completed".to_owned()),
        ]
    );
    for status in ReferralStatus::ALL {
        assert_eq!(serde_json::to_value(status).unwrap(), status.code());
    }
}

#[test]
fn a_refused_move_names_both_statuses_by_their_codes() {
    let error = ReferralError::InvalidTransition {
        from: ReferralStatus::OnHold,
        to: ReferralStatus::Completed,
    };
    assert_eq!(
        error.to_string(),
        "a referral that is on-hold cannot become completed"
    );
}

#[test]
fn every_referral_event_keeps_its_stable_name_at_version_one() {
    let at = t("2026-03-03T11:00:00Z");
    let events = [
        raised(),
        acknowledged(),
        accepted(),
        ReferralEvent::ReferralDeclined {
            reason: text("out of area"),
            at,
        },
        ReferralEvent::InformationRequested {
            question: text("Any stairs?"),
            at,
        },
        ReferralEvent::InformationProvided {
            answer: text("Twelve"),
            at,
        },
        ReferralEvent::ReferralWithdrawn {
            reason: text("going home with family"),
            at,
        },
        ReferralEvent::CareStarted { at },
        ReferralEvent::ReferralEscalated { at, respond_by: at },
    ];
    let names: Vec<_> = events
        .iter()
        .map(|e| (e.event_type(), e.event_version()))
        .collect();
    assert_eq!(
        names,
        [
            ("ReferralRaised", "1"),
            ("ReferralAcknowledged", "1"),
            ("ReferralAccepted", "1"),
            ("ReferralDeclined", "1"),
            ("InformationRequested", "1"),
            ("InformationProvided", "1"),
            ("ReferralWithdrawn", "1"),
            ("CareStarted", "1"),
            ("ReferralEscalated", "1"),
        ]
    );
}
