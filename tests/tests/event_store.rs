//! The event store under concurrency, on real PostgreSQL and on SQLite:
//! cross-aggregate rules hold, concurrent commands on one aggregate are never
//! lost, and a refused commit leaves nothing behind.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_tests::fixtures::{self, admit, catalogue, issued, spell_id};
use baton_tests::postgres::TestDatabase;
use domain::reservation::ReservationConflict;
use domain::spell::{SpellCommand, SpellError};
use domain::values::{Destination, Pathway, ReferralId, ServiceKind, SpellId, TeamCode, Text};
use futures::future::join_all;
use infra::commands::{CommandBus, CommandError, RaiseRefusal};
use infra::store::{BatonRepository, Database, ReservationRules};

#[derive(Debug, Clone, Copy)]
enum Backend {
    Postgres,
    Sqlite,
}

struct Harness {
    bus: Arc<CommandBus>,
    db: Database,
    _pg: Option<TestDatabase>,
    _dir: Option<tempfile::TempDir>,
}

async fn harness(backend: Backend) -> Harness {
    let (db, pg, dir) = match backend {
        Backend::Postgres => {
            let pg = TestDatabase::create().await;
            (Database::postgres(&pg.url, 20).unwrap(), Some(pg), None)
        }
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            (Database::sqlite(dir.path()).await.unwrap(), None, Some(dir))
        }
    };
    db.migrate().await.unwrap();
    let repo = BatonRepository::new(db.clone(), ReservationRules::baton());
    Harness {
        bus: Arc::new(CommandBus::new(repo, catalogue())),
        db,
        _pg: pg,
        _dir: dir,
    }
}

async fn count(db: &Database, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    match db {
        Database::Postgres(pool) => sqlx::query_scalar(&sql).fetch_one(pool).await.unwrap(),
        Database::Sqlite(pool) => sqlx::query_scalar(&sql).fetch_one(pool).await.unwrap(),
    }
}

macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                super::$name(super::Backend::Postgres).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::$name(super::Backend::Sqlite).await
            }
        }
    )*};
}

on_both_stores!(
    concurrent_admissions_to_one_bed_admit_exactly_one_patient,
    concurrent_admissions_of_one_patient_open_exactly_one_spell,
    a_bed_freed_by_discharge_can_be_taken_again,
    concurrent_commands_on_one_spell_are_all_kept,
    commands_from_two_processes_on_one_spell_are_all_kept,
    with_an_expected_version_exactly_one_concurrent_command_wins,
    with_an_expected_version_two_processes_racing_at_commit_get_one_winner,
    a_referral_racing_a_discharge_is_ordered_before_it_or_refused,
    one_spell_has_one_active_referral_per_team,
    an_admission_is_cancelled_only_once_its_referrals_have_ended,
    a_referral_racing_a_cancelled_admission_leaves_no_referral_for_it,
    a_command_on_a_spell_another_process_discharged_is_refused_as_discharged,
    a_refusal_on_what_this_process_last_saw_is_decided_again_on_what_is_stored,
    nothing_to_change_on_what_this_process_last_saw_is_decided_again_on_what_is_stored,
    an_expected_version_another_process_reached_is_checked_against_what_is_stored,
    a_caller_denied_on_what_this_process_last_saw_is_checked_again_on_what_is_stored,
    an_admission_under_an_id_another_process_admitted_is_refused_as_already_admitted,
    a_bed_refused_to_what_this_process_last_saw_is_decided_again_on_what_is_stored,
);

/// A second bus over the same database: another Baton process, which
/// commits behind the first bus's back (its memory of the spell goes stale).
fn other_process(h: &Harness) -> CommandBus {
    CommandBus::new(
        BatonRepository::new(h.db.clone(), ReservationRules::baton()),
        catalogue(),
    )
}

async fn two_processes(backend: Backend) -> (Harness, CommandBus) {
    let h = harness(backend).await;
    let other = other_process(&h);
    (h, other)
}

/// Spell `name` of patient `n`, admitted by `bus` to bed `bed` of W1.
async fn admitted(bus: &CommandBus, name: &str, n: u32, bed: u32) -> SpellId {
    let id = spell_id(name);
    bus.spell(&id, issued(admit(name, n, "W1", bed)), None)
        .await
        .unwrap();
    id
}

fn discharge() -> domain::Issued<SpellCommand> {
    issued(SpellCommand::DischargePatient {
        at: fixtures::now() - Duration::from_secs(60),
        destination: Destination::UsualResidence,
    })
}

fn set_date(days: i64) -> domain::Issued<SpellCommand> {
    let date = chrono::Utc::now().date_naive() + chrono::Duration::days(days);
    issued(SpellCommand::SetExpectedDischargeDate { date })
}

fn set_pathway(pathway: Pathway) -> domain::Issued<SpellCommand> {
    issued(SpellCommand::SetDischargePathway { pathway })
}

/// The first bus decides on the open spell it remembers; its commit loses to
/// the other process's discharge, and the decision on what is stored refuses.
async fn a_command_on_a_spell_another_process_discharged_is_refused_as_discharged(
    backend: Backend,
) {
    let (h, other) = two_processes(backend).await;
    let id = admitted(&h.bus, "stale1", 11, 1).await;
    h.bus.spell(&id, set_date(2), None).await.unwrap();
    other.spell(&id, discharge(), None).await.unwrap();
    let refused = h.bus.spell(&id, set_date(3), None).await;
    assert!(
        matches!(refused, Err(CommandError::Refused(SpellError::Discharged))),
        "{refused:?}"
    );
    assert_eq!(count(&h.db, "events").await, 3);
}

/// The first bus remembers the spell discharged; the other process cancels
/// the discharge. A refusal decided on the memory would be wrong.
async fn a_refusal_on_what_this_process_last_saw_is_decided_again_on_what_is_stored(
    backend: Backend,
) {
    let (h, other) = two_processes(backend).await;
    let id = admitted(&h.bus, "stale2", 12, 2).await;
    h.bus.spell(&id, discharge(), None).await.unwrap();
    let reason = Text::parse("discharged in error").unwrap();
    other
        .spell(&id, issued(SpellCommand::CancelDischarge { reason }), None)
        .await
        .unwrap();
    let committed = h.bus.spell(&id, set_date(2), None).await.unwrap();
    assert_eq!((committed.version, committed.events), (4, 1));
}

/// The first bus remembers pathway 1, so setting it again changes nothing
/// there; but the other process has set pathway 2 since.
async fn nothing_to_change_on_what_this_process_last_saw_is_decided_again_on_what_is_stored(
    backend: Backend,
) {
    let (h, other) = two_processes(backend).await;
    let id = admitted(&h.bus, "stale3", 13, 3).await;
    h.bus
        .spell(&id, set_pathway(Pathway::P1), None)
        .await
        .unwrap();
    other
        .spell(&id, set_pathway(Pathway::P2), None)
        .await
        .unwrap();
    let committed = h
        .bus
        .spell(&id, set_pathway(Pathway::P1), None)
        .await
        .unwrap();
    assert_eq!((committed.version, committed.events), (4, 1));
    let (spell, _) = h.bus.load_spell(&id).await.unwrap();
    assert_eq!(spell.stay().unwrap().pathway, Some(Pathway::P1));
}

/// The caller saw version 2, which the other process made; the first bus
/// remembers version 1.
async fn an_expected_version_another_process_reached_is_checked_against_what_is_stored(
    backend: Backend,
) {
    let (h, other) = two_processes(backend).await;
    let id = admitted(&h.bus, "stale4", 14, 4).await;
    other.spell(&id, set_date(2), None).await.unwrap();
    let committed = h
        .bus
        .spell(&id, set_pathway(Pathway::P3), Some(2))
        .await
        .unwrap();
    assert_eq!(committed.version, 3);
    let mismatch = h.bus.spell(&id, set_pathway(Pathway::P1), Some(2)).await;
    assert!(
        matches!(mismatch, Err(CommandError::VersionMismatch { current: 3 })),
        "{mismatch:?}"
    );
}

/// The caller may act on ward W2 only. The first bus remembers the patient
/// on W1; the other process has moved them to W2.
async fn a_caller_denied_on_what_this_process_last_saw_is_checked_again_on_what_is_stored(
    backend: Backend,
) {
    let (h, other) = two_processes(backend).await;
    let id = admitted(&h.bus, "stale5", 15, 1).await;
    let transfer = SpellCommand::TransferPatient {
        ward: domain::values::WardCode::parse("W2").unwrap(),
        bed: domain::values::BedLabel::parse("1").unwrap(),
        at: fixtures::now() - Duration::from_secs(60),
    };
    other.spell(&id, issued(transfer), None).await.unwrap();
    let on_w2 = |spell: &domain::spell::Spell| match spell.stay() {
        Some(stay) if stay.placement.ward.as_str() == "W2" => Ok(()),
        _ => Err(infra::commands::Denied(Box::new(std::io::Error::other(
            "not your ward",
        )))),
    };
    let committed = h
        .bus
        .spell_guarded(&id, set_date(2), Default::default(), &on_w2)
        .await
        .unwrap();
    assert_eq!(committed.version, 3);
}

async fn concurrent_admissions_to_one_bed_admit_exactly_one_patient(backend: Backend) {
    let h = harness(backend).await;
    let attempts = (0..16).map(|i| {
        let bus = h.bus.clone();
        async move {
            let id = spell_id(&format!("s{i}"));
            bus.spell(&id, issued(admit(id.as_str(), i, "W1", 7)), None)
                .await
        }
    });
    let results = join_all(attempts).await;
    let admitted = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(admitted, 1, "{results:?}");
    for result in results.into_iter().filter(Result::is_err) {
        assert!(matches!(
            result,
            Err(CommandError::Reservation(
                ReservationConflict::BedOccupied { .. }
            ))
        ));
    }
    // A refused commit leaves no event and no outbox row behind.
    assert_eq!(count(&h.db, "events").await, 1);
    assert_eq!(count(&h.db, "outbox").await, 1);
}

async fn concurrent_admissions_of_one_patient_open_exactly_one_spell(backend: Backend) {
    let h = harness(backend).await;
    let attempts = (0..12u32).map(|i| {
        let bus = h.bus.clone();
        async move {
            let id = spell_id(&format!("p{i}"));
            // Same patient (n = 42), a different bed each time.
            bus.spell(&id, issued(admit(id.as_str(), 42, "W2", i + 1)), None)
                .await
        }
    });
    let results = join_all(attempts).await;
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert!(results.iter().filter(|r| r.is_err()).all(|r| matches!(
        r,
        Err(CommandError::Reservation(
            ReservationConflict::PatientAlreadyInHospital
        ))
    )));
    // A refused admission holds no bed: on PostgreSQL its claims ran in one
    // statement with its event, and the refusal undid the bed's claim too.
    // Only the winner's bed, patient and open spell are held.
    assert_eq!(count(&h.db, "reservations").await, 3);
    // The other hospital cannot admit them either while the spell is open.
    let elsewhere = spell_id("elsewhere");
    let result = h
        .bus
        .spell(&elsewhere, issued(admit("elsewhere", 42, "X1", 1)), None)
        .await;
    assert!(matches!(
        result,
        Err(CommandError::Reservation(
            ReservationConflict::PatientAlreadyInHospital
        ))
    ));
}

async fn a_bed_freed_by_discharge_can_be_taken_again(backend: Backend) {
    let h = harness(backend).await;
    let first = spell_id("first");
    h.bus
        .spell(&first, issued(admit("first", 1, "W1", 3)), None)
        .await
        .unwrap();
    let second = spell_id("second");
    let taken = h
        .bus
        .spell(&second, issued(admit("second", 2, "W1", 3)), None)
        .await;
    assert!(
        matches!(
            taken,
            Err(CommandError::Reservation(
                ReservationConflict::BedOccupied { .. }
            ))
        ),
        "{taken:?}"
    );
    h.bus
        .spell(
            &first,
            issued(SpellCommand::DischargePatient {
                at: fixtures::now(),
                destination: Destination::UsualResidence,
            }),
            None,
        )
        .await
        .unwrap();
    h.bus
        .spell(&second, issued(admit("second", 2, "W1", 3)), None)
        .await
        .unwrap();
    // Cancelling the first discharge would put two patients in bed 3: refused.
    let reopen = h
        .bus
        .spell(
            &first,
            issued(SpellCommand::CancelDischarge {
                reason: Text::parse("entered in error").unwrap(),
            }),
            None,
        )
        .await;
    assert!(matches!(
        reopen,
        Err(CommandError::Reservation(
            ReservationConflict::BedOccupied { .. }
        ))
    ));
}

async fn concurrent_commands_on_one_spell_are_all_kept(backend: Backend) {
    let h = harness(backend).await;
    let id = admitted(&h.bus, "busy", 5, 1).await;
    let today = chrono::Utc::now().date_naive();
    let commands = (1..=20i64).map(|day| {
        let bus = h.bus.clone();
        let id = id.clone();
        async move {
            let date = today + chrono::Duration::days(day);
            bus.spell(
                &id,
                issued(SpellCommand::SetExpectedDischargeDate { date }),
                None,
            )
            .await
        }
    });
    let results = join_all(commands).await;
    let mut versions: Vec<u64> = results.into_iter().map(|r| r.unwrap().version).collect();
    versions.sort_unstable();
    assert_eq!(
        versions,
        (2..=21).collect::<Vec<_>>(),
        "every command kept, once"
    );
    let (spell, version) = h.bus.load_spell(&id).await.unwrap();
    assert_eq!(version, 21);
    assert!(spell.stay().unwrap().expected_discharge_date.is_some());
}

/// Two buses share nothing but the database, as two Baton processes would:
/// their commands race at commit, and the losers are decided again.
async fn commands_from_two_processes_on_one_spell_are_all_kept(backend: Backend) {
    let h = harness(backend).await;
    let other = Arc::new(CommandBus::new(
        BatonRepository::new(h.db.clone(), ReservationRules::baton()),
        catalogue(),
    ));
    let id = admitted(&h.bus, "shared", 8, 4).await;
    let today = chrono::Utc::now().date_naive();
    let commands = (1..=16i64).map(|day| {
        let bus = if day % 2 == 0 {
            h.bus.clone()
        } else {
            other.clone()
        };
        let id = id.clone();
        async move {
            let date = today + chrono::Duration::days(day);
            bus.spell(
                &id,
                issued(SpellCommand::SetExpectedDischargeDate { date }),
                None,
            )
            .await
        }
    });
    let results = join_all(commands).await;
    let mut versions: Vec<u64> = results.into_iter().map(|r| r.unwrap().version).collect();
    versions.sort_unstable();
    assert_eq!(versions, (2..=17).collect::<Vec<_>>());
    assert_eq!(count(&h.db, "events").await, 17);
}

async fn with_an_expected_version_exactly_one_concurrent_command_wins(backend: Backend) {
    let h = harness(backend).await;
    let id = admitted(&h.bus, "ifmatch", 6, 2).await;
    let commands = Pathway::ALL.into_iter().map(|pathway| {
        let bus = h.bus.clone();
        let id = id.clone();
        async move {
            bus.spell(
                &id,
                issued(SpellCommand::SetDischargePathway { pathway }),
                Some(1),
            )
            .await
        }
    });
    let results = join_all(commands).await;
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    for result in results.iter().filter(|r| r.is_err()) {
        assert!(matches!(
            result,
            Err(CommandError::VersionMismatch { current: 2 })
        ));
    }
}

/// Two buses (two processes) with the same `If-Match`: both load version 1,
/// both decide, and they race at commit; the loser is told the new version.
async fn with_an_expected_version_two_processes_racing_at_commit_get_one_winner(backend: Backend) {
    let h = harness(backend).await;
    let other = Arc::new(CommandBus::new(
        BatonRepository::new(h.db.clone(), ReservationRules::baton()),
        catalogue(),
    ));
    let id = admitted(&h.bus, "race", 7, 3).await;
    for round in 0..5u64 {
        let version = 1 + round;
        let (a, b) = tokio::join!(
            h.bus.spell(
                &id,
                issued(SpellCommand::SetDischargePathway {
                    pathway: Pathway::ALL[(round % 2) as usize * 2]
                }),
                Some(version)
            ),
            other.spell(
                &id,
                issued(SpellCommand::SetDischargePathway {
                    pathway: Pathway::ALL[(round % 2) as usize * 2 + 1]
                }),
                Some(version)
            )
        );
        let results = [a, b];
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "{results:?}"
        );
        let expected_current = version + 1;
        assert!(results.iter().filter(|r| r.is_err()).all(|r| matches!(
            r,
            Err(CommandError::VersionMismatch { current }) if *current == expected_current
        )));
    }
}

async fn a_referral_racing_a_discharge_is_ordered_before_it_or_refused(backend: Backend) {
    let h = harness(backend).await;
    for round in 0..10u32 {
        let spell = format!("race{round}");
        let id = spell_id(&spell);
        h.bus
            .spell(
                &id,
                issued(admit(&spell, 100 + round, "W1", round + 1)),
                None,
            )
            .await
            .unwrap();
        let referral = ReferralId::parse(format!("ref{round}")).unwrap();
        let discharge = {
            let bus = h.bus.clone();
            let id = id.clone();
            async move {
                bus.spell(
                    &id,
                    issued(SpellCommand::DischargePatient {
                        at: fixtures::now(),
                        destination: Destination::UsualResidenceWithSupport,
                    }),
                    None,
                )
                .await
            }
        };
        let raise = raise_for(&h.bus, referral.as_str(), &id);
        let (discharged, raised) = tokio::join!(discharge, raise);
        discharged.unwrap();
        match raised {
            Ok(_) => {
                // It committed while the spell was open: its outbox row comes
                // before the discharge's.
                let order = outbox_order(&h.db, &spell, referral.as_str()).await;
                assert_eq!(order, ["referral", "spell"], "round {round}");
            }
            Err(CommandError::Refused(RaiseRefusal::Spell(SpellError::Discharged)))
            | Err(CommandError::Reservation(ReservationConflict::SpellNotOpen { .. })) => {}
            Err(other) => panic!("round {round}: {other:?}"),
        }
    }
}

async fn outbox_order(db: &Database, spell: &str, referral: &str) -> Vec<String> {
    let sql = "SELECT o.aggregate_type FROM outbox o JOIN events e ON \
               e.aggregate_type = o.aggregate_type AND e.aggregate_id = o.aggregate_id AND \
               e.sequence = o.sequence WHERE (o.aggregate_type = 'referral' AND \
               o.aggregate_id = $1) OR (o.aggregate_type = 'spell' AND o.aggregate_id = $2 AND \
               e.event_type = 'PatientDischarged') ORDER BY o.position";
    match db {
        Database::Postgres(pool) => sqlx::query_scalar(sql)
            .bind(referral)
            .bind(spell)
            .fetch_all(pool)
            .await
            .unwrap(),
        Database::Sqlite(pool) => sqlx::query_scalar(&sql.replace('$', "?"))
            .bind(referral)
            .bind(spell)
            .fetch_all(pool)
            .await
            .unwrap(),
    }
}

async fn one_spell_has_one_active_referral_per_team(backend: Backend) {
    let h = harness(backend).await;
    let id = admitted(&h.bus, "refs", 9, 9).await;
    let names: Vec<String> = (0..6).map(|n| format!("r{n}")).collect();
    let results = join_all(names.iter().map(|name| raise_for(&h.bus, name, &id))).await;
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert!(results.iter().filter(|r| r.is_err()).all(|r| matches!(
        r,
        Err(CommandError::Reservation(
            ReservationConflict::ReferralAlreadyActive { .. }
        ))
    )));
}

/// Raises a referral to the reablement team for `spell`.
async fn raise_for(
    bus: &CommandBus,
    referral: &str,
    spell: &SpellId,
) -> Result<infra::commands::Committed, CommandError<RaiseRefusal>> {
    bus.raise_referral(
        &ReferralId::parse(referral).unwrap(),
        spell,
        TeamCode::parse("REAB").unwrap(),
        ServiceKind::Reablement,
        Pathway::P1,
        Text::parse("needs reablement").unwrap(),
        fixtures::nurse(),
        fixtures::now(),
    )
    .await
}

fn cancel_admission() -> domain::Issued<SpellCommand> {
    issued(SpellCommand::CancelAdmission {
        reason: Text::parse("entered in error").unwrap(),
    })
}

async fn an_admission_is_cancelled_only_once_its_referrals_have_ended(backend: Backend) {
    let h = harness(backend).await;
    let id = admitted(&h.bus, "oops", 11, 11).await;
    raise_for(&h.bus, "oops-r", &id).await.unwrap();
    let refused = h.bus.spell(&id, cancel_admission(), None).await;
    assert!(
        matches!(
            refused,
            Err(CommandError::Reservation(
                ReservationConflict::ReferralsStillActive
            ))
        ),
        "{refused:?}"
    );
    // Nothing of the refused commit was kept: the bed is still taken.
    let bed_taken = h
        .bus
        .spell(
            &spell_id("other"),
            issued(admit("other", 12, "W1", 11)),
            None,
        )
        .await;
    assert!(
        matches!(
            &bed_taken,
            Err(CommandError::Reservation(ReservationConflict::BedOccupied { ward, bed }))
                if ward.as_str() == "W1" && bed.as_str() == "11"
        ),
        "{bed_taken:?}"
    );
    h.bus
        .referral(
            &ReferralId::parse("oops-r").unwrap(),
            issued(domain::referral::ReferralCommand::WithdrawReferral {
                reason: Text::parse("admission entered in error").unwrap(),
            }),
            None,
        )
        .await
        .unwrap();
    h.bus.spell(&id, cancel_admission(), None).await.unwrap();
}

async fn a_referral_racing_a_cancelled_admission_leaves_no_referral_for_it(backend: Backend) {
    let h = harness(backend).await;
    for round in 0..10u32 {
        let name = format!("void{round}");
        let id = spell_id(&name);
        h.bus
            .spell(
                &id,
                issued(admit(&name, 200 + round, "W2", round + 1)),
                None,
            )
            .await
            .unwrap();
        let referral = format!("void-r{round}");
        let (cancelled, raised) = tokio::join!(
            h.bus.spell(&id, cancel_admission(), None),
            raise_for(&h.bus, &referral, &id)
        );
        // Exactly one of the two stands, never both.
        match (cancelled.is_ok(), raised.is_ok()) {
            (true, false) | (false, true) => {}
            other => panic!("round {round}: {other:?} {cancelled:?} {raised:?}"),
        }
        if let Err(error) = cancelled {
            assert!(
                matches!(
                    error,
                    CommandError::Reservation(ReservationConflict::ReferralsStillActive)
                ),
                "round {round}: {error:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_creating_command_sent_to_another_id_is_refused() {
    let h = harness(Backend::Sqlite).await;
    let result = h
        .bus
        .spell(
            &spell_id("elsewhere"),
            issued(admit("s1", 1, "W1", 1)),
            None,
        )
        .await;
    assert!(
        matches!(result, Err(CommandError::IdMismatch)),
        "{result:?}"
    );
    assert_eq!(count(&h.db, "events").await, 0);
}

#[tokio::test]
async fn an_unreachable_postgres_fails_commands_fast_as_unavailable() {
    // Nothing listens on port 1: every connection attempt is refused.
    let db = Database::postgres("postgres://postgres@127.0.0.1:1/none", 2).unwrap();
    let bus = CommandBus::new(
        BatonRepository::new(db, ReservationRules::baton()),
        catalogue(),
    );
    let started = Instant::now();
    let result = bus
        .spell(&spell_id("s"), issued(admit("s", 1, "W1", 1)), None)
        .await;
    assert!(
        matches!(result, Err(CommandError::Unavailable(_))),
        "{result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

/// The relay reads the outbox on every pass: its read must look events up
/// by key, not hash the whole events table (which once cost 2 to 19 ms a
/// pass and put commit-to-stream p99 near 100 ms). Checked on a table large
/// enough to tempt the planner, before any statistics are gathered.
#[tokio::test]
async fn the_relays_read_looks_events_up_by_key_however_large_the_table() {
    let pg = TestDatabase::create().await;
    let db = Database::postgres(&pg.url, 2).unwrap();
    db.migrate().await.unwrap();
    let Database::Postgres(pool) = &db else {
        unreachable!()
    };
    sqlx::raw_sql(
        "INSERT INTO events SELECT 'Spell', 'S' || g, 1, 'X', '1', '{}', '{}' \
         FROM generate_series(1, 50000) g; \
         INSERT INTO outbox (aggregate_type, aggregate_id, sequence) \
         SELECT 'Spell', 'S' || g, 1 FROM generate_series(1, 50000) g; \
         DELETE FROM outbox WHERE position <= 49990;",
    )
    .execute(pool)
    .await
    .unwrap();
    let plan: Vec<String> =
        sqlx::query_scalar(&format!("EXPLAIN {}", infra::outbox::POSTGRES_READY))
            .bind(512_i64)
            .bind(vec![1_i64, 2])
            .fetch_all(pool)
            .await
            .unwrap();
    let plan = plan.join("\n");
    assert!(plan.contains("Index Scan using events_pkey"), "{plan}");
    assert!(!plan.contains("Seq Scan on events"), "{plan}");
    let rows = infra::outbox::ready(&db, 512, &[]).await.unwrap();
    assert_eq!(rows.len(), 10);
    assert!(rows.windows(2).all(|w| w[0].position < w[1].position));
}

/// Each pass removes the rows the sink acknowledged since the last one in
/// the same statement as its read, and records the progress; the read does
/// not hand them out again although its snapshot still holds them.
#[tokio::test]
async fn the_relays_read_removes_the_rows_the_sink_acknowledged() {
    let pg = TestDatabase::create().await;
    let db = Database::postgres(&pg.url, 2).unwrap();
    db.migrate().await.unwrap();
    let Database::Postgres(pool) = &db else {
        unreachable!()
    };
    sqlx::raw_sql(
        "INSERT INTO events SELECT 'Spell', 'S' || g, 1, 'X', '1', '{}', '{}' \
         FROM generate_series(1, 10) g; \
         INSERT INTO outbox (aggregate_type, aggregate_id, sequence) \
         SELECT 'Spell', 'S' || g, 1 FROM generate_series(1, 10) g;",
    )
    .execute(pool)
    .await
    .unwrap();
    let first = infra::outbox::ready(&db, 4, &[]).await.unwrap();
    assert_eq!(first.len(), 4);

    let next = infra::outbox::ready(&db, 512, &first).await.unwrap();

    assert_eq!(next.len(), 6);
    assert!(next.iter().all(|row| !first.contains(row)));
    let status = infra::outbox::status(&db).await.unwrap();
    assert_eq!(status.depth, 6);
    assert_eq!(status.last_published_position, first[3].position);
    assert_eq!(status.published_total, 4);

    // Removing them again (a read whose answer was lost) counts nothing twice.
    infra::outbox::ready(&db, 512, &first).await.unwrap();
    let status = infra::outbox::status(&db).await.unwrap();
    assert_eq!(status.depth, 6);
    assert_eq!(status.published_total, 4);

    // The relay vacuums the queue itself; the rows waiting stay.
    infra::outbox::vacuum(&db).await.unwrap();
    assert_eq!(infra::outbox::ready(&db, 512, &[]).await.unwrap(), next);
}

/// The first bus has never seen the spell, so it presumes it new and does
/// not load it; the other process admitted it already, into another bed.
/// Even with the first bus's bed taken by a third patient, the answer is
/// the domain's, decided on what is stored.
async fn an_admission_under_an_id_another_process_admitted_is_refused_as_already_admitted(
    backend: Backend,
) {
    let (h, other) = two_processes(backend).await;
    let id = spell_id("twice");
    other
        .spell(&id, issued(admit("twice", 16, "W1", 1)), None)
        .await
        .unwrap();
    let refused = h
        .bus
        .spell(&id, issued(admit("twice", 16, "W1", 2)), None)
        .await;
    assert!(
        matches!(
            refused,
            Err(CommandError::Refused(SpellError::AlreadyAdmitted))
        ),
        "{refused:?}"
    );
    h.bus
        .spell(
            &spell_id("third"),
            issued(admit("third", 17, "W1", 3)),
            None,
        )
        .await
        .unwrap();
    // A third process, which has not seen the spell either.
    let third = other_process(&h);
    let refused = third
        .spell(&id, issued(admit("twice", 16, "W1", 3)), None)
        .await;
    assert!(
        matches!(
            refused,
            Err(CommandError::Refused(SpellError::AlreadyAdmitted))
        ),
        "{refused:?}"
    );
    assert_eq!(count(&h.db, "events").await, 2);
}

/// The first bus remembers the patient in hospital; the other process has
/// discharged them and admitted someone else into the bed asked for. The
/// bed is taken, but the answer is that the patient has gone home.
async fn a_bed_refused_to_what_this_process_last_saw_is_decided_again_on_what_is_stored(
    backend: Backend,
) {
    let (h, other) = two_processes(backend).await;
    let id = admitted(&h.bus, "gone", 18, 5).await;
    other.spell(&id, discharge(), None).await.unwrap();
    other
        .spell(&spell_id("next"), issued(admit("next", 19, "W1", 6)), None)
        .await
        .unwrap();
    let transfer = SpellCommand::TransferPatient {
        ward: domain::values::WardCode::parse("W1").unwrap(),
        bed: domain::values::BedLabel::parse("6").unwrap(),
        at: fixtures::now() - Duration::from_secs(30),
    };
    let refused = h.bus.spell(&id, issued(transfer), None).await;
    assert!(
        matches!(refused, Err(CommandError::Refused(SpellError::Discharged))),
        "{refused:?}"
    );
}
