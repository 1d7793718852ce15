//! Property tests over random command sequences. A small "world" of spells
//! shares four beds and three NHS numbers; each command is decided by its
//! spell and its events' reservations are applied to a [`Ledger`] exactly as
//! the event store applies them in the commit's transaction. Whatever the
//! sequence:
//! - a bed never holds two patients, and an NHS number never has two open spells;
//! - the discharge ready date is never before the admission date;
//! - delay days are never negative and always equal discharge date minus DRD;
//! - a discharged spell accepts no change but a correction.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use domain::decider::{Decider, DomainEvent};
use domain::reservation::Ledger;
use domain::spell::{Spell, SpellCommand, SpellStatus};
use domain::values::{days_between, local_date, DelayId, Destination, Instant, Pathway};
use proptest::prelude::*;

const NHS: [&str; 3] = ["9912003888", "9434765919", "4010232137"];
const SPELLS: usize = 5;

#[derive(Debug, Clone)]
enum Op {
    Admit { nhs: usize, bed: u8 },
    Transfer { ward: u8, bed: u8 },
    Edd { days: i64 },
    Review { meets: bool },
    Pathway(u8),
    Delay { reason: u8 },
    Resolve { delay: u8 },
    Discharge,
    CancelAdmission,
    CancelTransfer,
    CancelDischarge,
}

#[derive(Debug, Clone)]
struct Step {
    spell: usize,
    /// Minutes the recording clock moves on before this step.
    advance: i64,
    /// Minutes before the recording clock that the clinical time lies
    /// (0 to 3 days: some fall before an admission and must be refused).
    lag: i64,
    op: Op,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..NHS.len(), 1..=4u8).prop_map(|(nhs, bed)| Op::Admit { nhs, bed }),
        2 => (0..2u8, 1..=4u8).prop_map(|(ward, bed)| Op::Transfer { ward, bed }),
        1 => (-2..10i64).prop_map(|days| Op::Edd { days }),
        3 => any::<bool>().prop_map(|meets| Op::Review { meets }),
        1 => (0..4u8).prop_map(Op::Pathway),
        1 => (1..=18u8).prop_map(|reason| Op::Delay { reason }),
        1 => (1..=3u8).prop_map(|delay| Op::Resolve { delay }),
        2 => Just(Op::Discharge),
        1 => Just(Op::CancelAdmission),
        1 => Just(Op::CancelTransfer),
        1 => Just(Op::CancelDischarge),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    (0..SPELLS, 0..2_000i64, 0..4_320i64, op()).prop_map(|(spell, advance, lag, op)| Step {
        spell,
        advance,
        lag,
        op,
    })
}

fn command(spell: usize, op: &Op, at: Instant) -> SpellCommand {
    let reason_text = text("correction");
    match op {
        Op::Admit { nhs, bed: b } => SpellCommand::AdmitPatient {
            spell_id: spell_id(&format!("s{spell}")),
            patient: patient_with(NHS[*nhs]),
            ward: ward("W1"),
            bed: bed(&b.to_string()),
            admitted_at: at,
            visit_number: None,
        },
        Op::Transfer { ward: w, bed: b } => SpellCommand::TransferPatient {
            ward: ward(if *w == 0 { "W1" } else { "W2" }),
            bed: bed(&b.to_string()),
            at,
        },
        Op::Edd { days } => SpellCommand::SetExpectedDischargeDate {
            date: local_date(at) + chrono::Duration::days(*days),
        },
        Op::Review { meets } => SpellCommand::RecordCriteriaReview {
            meets_criteria_to_reside: *meets,
            at,
        },
        Op::Pathway(p) => SpellCommand::SetDischargePathway {
            pathway: Pathway::ALL[usize::from(*p)],
        },
        Op::Delay { reason: r } => SpellCommand::RecordDelay {
            reason_code: reason(&r.to_string()),
            note: None,
            at,
        },
        Op::Resolve { delay } => SpellCommand::ResolveDelay {
            delay_id: DelayId::parse(format!("D{delay}")).unwrap(),
            at,
        },
        Op::Discharge => SpellCommand::DischargePatient {
            at,
            destination: Destination::UsualResidence,
        },
        Op::CancelAdmission => SpellCommand::CancelAdmission {
            reason: reason_text,
        },
        Op::CancelTransfer => SpellCommand::CancelTransfer {
            reason: reason_text,
        },
        Op::CancelDischarge => SpellCommand::CancelDischarge {
            reason: reason_text,
        },
    }
}

fn check_invariants(spells: &[Spell], ledger: &Ledger) -> Result<(), TestCaseError> {
    let mut beds = BTreeSet::new();
    let mut patients = BTreeSet::new();
    for stay in spells.iter().filter_map(Spell::stay) {
        let admitted = local_date(stay.admitted_at);
        if let Some(drd) = stay.discharge_ready_date {
            prop_assert!(drd >= admitted, "DRD {drd} before admission {admitted}");
        }
        if let Some(discharge) = &stay.discharge {
            if let Some(drd) = discharge.discharge_ready_date {
                prop_assert!(drd >= admitted, "reported DRD before admission");
                let days = days_between(drd, local_date(discharge.at));
                prop_assert!(days >= 0, "negative delay days");
                prop_assert_eq!(i64::from(discharge.delay_days), days);
            } else {
                prop_assert_eq!(discharge.delay_days, 0);
            }
        }
        for delay in &stay.delays {
            if let Some(resolved) = delay.resolved_at {
                prop_assert!(resolved >= delay.at, "delay resolved before it began");
            }
        }
        if stay.status == SpellStatus::Open {
            let key = (stay.placement.ward.clone(), stay.placement.bed.clone());
            prop_assert!(beds.insert(key), "two open spells in one bed");
            prop_assert!(
                patients.insert(stay.patient.nhs_number.clone()),
                "two open spells for one NHS number"
            );
            let holder = format!("spell/{}", stay.spell_id);
            let bed_key = domain::reservation::ReservationKey::Bed {
                ward: stay.placement.ward.clone(),
                bed: stay.placement.bed.clone(),
            };
            prop_assert_eq!(ledger.holder(&bed_key), Some(holder.as_str()));
        }
    }
    // And the ledger holds nothing for spells that are not open.
    let held_beds = ledger
        .iter()
        .filter(|(k, _)| matches!(k, domain::reservation::ReservationKey::Bed { .. }))
        .count();
    prop_assert_eq!(held_beds, beds.len());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn random_command_sequences_keep_every_invariant(steps in prop::collection::vec(step(), 1..120)) {
        let catalogue = refs();
        let mut spells: Vec<Spell> = vec![Spell::default(); SPELLS];
        let mut ledger = Ledger::default();
        let mut now = t("2026-03-01T08:00:00Z");
        let mut accepted = BTreeMap::<&'static str, usize>::new();
        for step in steps {
            now += chrono::Duration::minutes(step.advance);
            let at = now - chrono::Duration::minutes(step.lag);
            let spell = &spells[step.spell];
            let was_discharged = spell.stay().is_some_and(|s| s.status == SpellStatus::Discharged);
            let command = command(step.spell, &step.op, at);
            let is_cancel_discharge = matches!(command, SpellCommand::CancelDischarge { .. });
            let Ok(events) = spell.decide(command, now, &catalogue) else {
                continue;
            };
            prop_assert!(
                !was_discharged || is_cancel_discharge || events.is_empty(),
                "a discharged spell accepted {:?}", step.op
            );
            let id = format!("s{}", step.spell);
            let changes: Vec<_> = events.iter().flat_map(|e| e.reservations(&id)).collect();
            if ledger.apply(&changes).is_err() {
                continue;
            }
            for event in &events {
                *accepted.entry(event.event_type()).or_default() += 1;
                spells[step.spell].evolve(event);
            }
            check_invariants(&spells, &ledger)?;
        }
    }
}

/// The generator must reach the interesting states, or the properties above
/// would pass vacuously: over many runs, every event type must occur.
#[test]
fn the_random_sequences_reach_every_kind_of_event() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let catalogue = refs();
    let mut seen = BTreeSet::new();
    let mut runner = TestRunner::deterministic();
    for _ in 0..300 {
        let steps = prop::collection::vec(step(), 60..120)
            .new_tree(&mut runner)
            .unwrap()
            .current();
        let mut spells: Vec<Spell> = vec![Spell::default(); SPELLS];
        let mut ledger = Ledger::default();
        let mut now = t("2026-03-01T08:00:00Z");
        for step in steps {
            now += chrono::Duration::minutes(step.advance);
            let at = now - chrono::Duration::minutes(step.lag);
            let command = command(step.spell, &step.op, at);
            if let Ok(events) = spells[step.spell].decide(command, now, &catalogue) {
                let id = format!("s{}", step.spell);
                let changes: Vec<_> = events.iter().flat_map(|e| e.reservations(&id)).collect();
                if ledger.apply(&changes).is_ok() {
                    for event in &events {
                        seen.insert(event.event_type());
                        spells[step.spell].evolve(event);
                    }
                }
            }
        }
    }
    assert_eq!(seen.len(), 11, "event types reached: {seen:?}");
}
