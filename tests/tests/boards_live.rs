//! The boards fed from the real pipeline (PostgreSQL, a per-test
//! nats-server): live updates awaited by consistency token, change
//! announcements, redelivery, restart from a checkpoint, rebuild equality
//! after thousands of random commands, and two processes agreeing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;
use std::time::Duration;

use baton_tests::eventually;
use baton_tests::fixtures::{admit, catalogue, issued, nurse, spell_id};
use baton_tests::nats::NatsServer;
use baton_tests::postgres::TestDatabase;
use domain::referral::ReferralCommand;
use domain::spell::SpellCommand;
use domain::values::{
    DelayId, DelayReasonCode, Destination, Pathway, ReferralId, ServiceKind, TeamCode, Text,
    WardCode,
};
use futures::StreamExt;
use infra::commands::CommandBus;
use infra::feed::Feed;
use infra::metrics::RelayMetrics;
use infra::relay::{Relay, Sink};
use infra::runner::{rebuild, BoardKey, Boards, Runner};
use infra::store::{BatonRepository, Database, ReservationRules};
use infra::stream::{StreamSettings, Target};
use tokio::sync::watch;

struct Live {
    _pg: TestDatabase,
    _nats: NatsServer,
    db: Database,
    bus: Arc<CommandBus>,
    feed: Feed,
    _relay: watch::Sender<bool>,
}

async fn live() -> Live {
    let pg = TestDatabase::create().await;
    let db = Database::postgres(&pg.url, 20).unwrap();
    let (repo, bus) = baton_tests::fixtures::store_and_bus(&db).await;
    let nats = NatsServer::start().await;
    let client = async_nats::connect(nats.url()).await.unwrap();
    let target = Arc::new(Target {
        context: async_nats::jetstream::new(client),
        settings: StreamSettings::default(),
    });
    let (stop, stopped) = watch::channel(false);
    let relay = Relay::new(
        db.clone(),
        Sink::JetStream(target.clone()),
        repo.relay_signals(),
        Arc::new(RelayMetrics::default()),
    );
    tokio::spawn(relay.run(stopped));
    Live {
        _pg: pg,
        _nats: nats,
        db,
        bus,
        feed: Feed::JetStream(target),
        _relay: stop,
    }
}

struct Running {
    boards: Arc<Boards>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

fn start(l: &Live) -> Running {
    let boards = Boards::new();
    let (stop, stopped) = watch::channel(false);
    let runner = Runner::new(boards.clone(), l.feed.clone(), l.db.clone())
        .snapshot_every(Duration::from_millis(200));
    Running {
        boards,
        stop,
        task: tokio::spawn(runner.run(stopped)),
    }
}

impl Running {
    async fn stop(self) {
        self.stop.send(true).unwrap();
        self.task.await.unwrap();
    }
}

/// Admits `count` patients, one at a time, to beds 1.. of `ward`: spells
/// `{prefix}0`.., patients numbered from `first`.
async fn admit_in_turn(l: &Live, (prefix, first): (&str, u32), count: u32, ward: &str) {
    for i in 0..count {
        let name = format!("{prefix}{i}");
        l.bus
            .spell(
                &spell_id(&name),
                issued(admit(&name, first + i, ward, i + 1)),
                None,
            )
            .await
            .unwrap();
    }
}

/// A runner that saw `count` admissions to W1 (spells `{prefix}0`..), caught
/// up and stopped, leaving its checkpoint.
async fn ran_and_stopped(l: &Live, prefix: &str, count: u32) {
    let first = start(l);
    admit_in_turn(l, (prefix, 0), count, "W1").await;
    caught_up(l, &first.boards).await;
    first.stop().await;
}

async fn caught_up(l: &Live, boards: &Boards) {
    eventually(
        "the boards to catch up with the stream",
        Duration::from_secs(30),
        || async {
            infra::outbox::status(&l.db).await.unwrap().depth == 0
                && boards.position() == l.feed.head().await.unwrap()
        },
    )
    .await;
}

fn ward(code: &str) -> domain::reference::Ward {
    catalogue().ward(&WardCode::parse(code).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_command_is_on_the_board_once_its_token_is_awaited_and_the_change_is_announced() {
    let l = live().await;
    let r = start(&l);
    let mut changes = r.boards.subscribe();
    let done = l
        .bus
        .spell(&spell_id("s1"), issued(admit("s1", 1, "W1", 5)), None)
        .await
        .unwrap();
    assert!(
        r.boards
            .wait_for(&done.token, Duration::from_secs(10))
            .await
    );
    let board = r
        .boards
        .read(|f| f.ward_board(&ward("W1"), chrono::Utc::now()));
    assert_eq!(board.beds[4].spell_id.as_deref(), Some("s1"));
    let change = tokio::time::timeout(Duration::from_secs(5), changes.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(change
        .boards
        .contains(&BoardKey::Ward(WardCode::parse("W1").unwrap())));
    assert!(change.boards.contains(&BoardKey::System));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redelivered_event_changes_nothing() {
    let l = live().await;
    let r = start(&l);
    admit_in_turn(&l, ("s", 0), 5, "W1").await;
    caught_up(&l, &r.boards).await;
    let before = r.boards.read(Clone::clone);
    let applied = r.boards.applied_count();
    let mut again = l.feed.subscribe(0).await.unwrap();
    for _ in 0..5 {
        let event = again.next().await.unwrap().unwrap();
        r.boards.apply(&event).unwrap();
    }
    assert_eq!(r.boards.read(Clone::clone), before);
    assert_eq!(r.boards.applied_count(), applied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_runner_resumes_from_its_checkpoint_instead_of_replaying() {
    let l = live().await;
    ran_and_stopped(&l, "a", 20).await;

    admit_in_turn(&l, ("b", 100), 7, "W2").await;
    let second = start(&l);
    caught_up(&l, &second.boards).await;
    assert_eq!(
        second.boards.applied_count(),
        7,
        "only what came after the checkpoint"
    );
    let rebuilt = rebuild(&l.feed).await.unwrap();
    assert_eq!(second.boards.read(Clone::clone), rebuilt.flow);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_checkpoint_of_an_older_fold_is_not_restored_and_the_feed_is_replayed() {
    let l = live().await;
    ran_and_stopped(&l, "o", 5).await;
    // The stored checkpoint as a Baton from before formats were recorded
    // wrote it: same generation, no `format`.
    let identity = l.feed.identity();
    let stored = infra::snapshots::load(&l.db, &identity)
        .await
        .unwrap()
        .unwrap();
    let mut state: serde_json::Value = serde_json::from_str(&stored.state).unwrap();
    state.as_object_mut().unwrap().remove("format");
    sqlx::query("UPDATE projection_snapshots SET state = $1 WHERE feed = $2")
        .bind(state.to_string())
        .bind(&identity)
        .execute(match &l.db {
            Database::Postgres(pool) => pool,
            Database::Sqlite(_) => unreachable!(),
        })
        .await
        .unwrap();
    let second = start(&l);
    caught_up(&l, &second.boards).await;
    assert_eq!(second.boards.applied_count(), 5, "replayed from the feed");
    let rebuilt = rebuild(&l.feed).await.unwrap();
    assert_eq!(second.boards.read(Clone::clone), rebuilt.flow);
}

/// A small deterministic generator (splitmix64), so a failure replays.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Random commands from one writer; refusals are part of the mix.
async fn random_commands(bus: Arc<CommandBus>, seed: u64, count: usize) -> usize {
    let mut rng = Rng(seed);
    let mut accepted = 0;
    let now = chrono::Utc::now;
    for _ in 0..count {
        let spell = format!("r{}", rng.below(40));
        let id = spell_id(&spell);
        let n = u32::try_from(rng.below(60)).unwrap();
        let ward = ["W1", "W2"][rng.below(2) as usize];
        let bed = u32::try_from(rng.below(30)).unwrap() + 1;
        let result = match rng.below(12) {
            0 | 1 => bus
                .spell(&id, issued(admit(&spell, n, ward, bed)), None)
                .await
                .is_ok(),
            2 => bus
                .spell(
                    &id,
                    issued(SpellCommand::TransferPatient {
                        ward: WardCode::parse(ward).unwrap(),
                        bed: domain::values::BedLabel::parse(bed.to_string()).unwrap(),
                        at: now(),
                    }),
                    None,
                )
                .await
                .is_ok(),
            3 => bus
                .spell(
                    &id,
                    issued(SpellCommand::SetExpectedDischargeDate {
                        date: now().date_naive() + chrono::Duration::days(rng.below(5) as i64),
                    }),
                    None,
                )
                .await
                .is_ok(),
            4 => bus
                .spell(
                    &id,
                    issued(SpellCommand::RecordCriteriaReview {
                        meets_criteria_to_reside: rng.below(2) == 0,
                        at: now(),
                    }),
                    None,
                )
                .await
                .is_ok(),
            5 => bus
                .spell(
                    &id,
                    issued(SpellCommand::SetDischargePathway {
                        pathway: Pathway::ALL[rng.below(4) as usize],
                    }),
                    None,
                )
                .await
                .is_ok(),
            6 => bus
                .spell(
                    &id,
                    issued(SpellCommand::RecordDelay {
                        reason_code: DelayReasonCode::parse((rng.below(18) + 1).to_string())
                            .unwrap(),
                        note: None,
                        at: now(),
                    }),
                    None,
                )
                .await
                .is_ok(),
            7 => bus
                .spell(
                    &id,
                    issued(SpellCommand::ResolveDelay {
                        delay_id: DelayId::parse(format!("D{}", rng.below(3) + 1)).unwrap(),
                        at: now(),
                    }),
                    None,
                )
                .await
                .is_ok(),
            8 => bus
                .spell(
                    &id,
                    issued(SpellCommand::DischargePatient {
                        at: now(),
                        destination: Destination::UsualResidence,
                    }),
                    None,
                )
                .await
                .is_ok(),
            9 => {
                let correction = match rng.below(3) {
                    0 => SpellCommand::CancelAdmission {
                        reason: Text::parse("error").unwrap(),
                    },
                    1 => SpellCommand::CancelTransfer {
                        reason: Text::parse("error").unwrap(),
                    },
                    _ => SpellCommand::CancelDischarge {
                        reason: Text::parse("error").unwrap(),
                    },
                };
                bus.spell(&id, issued(correction), None).await.is_ok()
            }
            10 => bus
                .raise_referral(
                    &ReferralId::parse(format!("ref{}", rng.below(60))).unwrap(),
                    &id,
                    TeamCode::parse("REAB").unwrap(),
                    ServiceKind::Reablement,
                    Pathway::P1,
                    Text::parse("random").unwrap(),
                    nurse(),
                    now(),
                )
                .await
                .is_ok(),
            _ => {
                let referral = ReferralId::parse(format!("ref{}", rng.below(60))).unwrap();
                let command = match rng.below(5) {
                    0 => ReferralCommand::AcknowledgeReferral,
                    1 => ReferralCommand::AcceptReferral {
                        planned_start: now().date_naive() + chrono::Duration::days(2),
                    },
                    2 => ReferralCommand::DeclineReferral {
                        reason: Text::parse("no").unwrap(),
                    },
                    3 => ReferralCommand::WithdrawReferral {
                        reason: Text::parse("no").unwrap(),
                    },
                    _ => ReferralCommand::StartCare { at: now() },
                };
                bus.referral(&referral, issued(command), None).await.is_ok()
            }
        };
        accepted += usize::from(result);
    }
    accepted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rebuilt_boards_equal_live_boards_after_thousands_of_random_commands_and_two_processes_agree(
) {
    let l = live().await;
    let one = start(&l);
    let two = start(&l);
    let writers = (0..8u64).map(|w| tokio::spawn(random_commands(l.bus.clone(), 7 + w, 300)));
    let mut accepted = 0;
    for writer in writers {
        accepted += writer.await.unwrap();
    }
    assert!(
        accepted > 300,
        "the mix must be mostly valid commands: {accepted}"
    );
    caught_up(&l, &one.boards).await;
    caught_up(&l, &two.boards).await;

    let rebuilt = rebuild(&l.feed).await.unwrap();
    let live_flow = one.boards.read(Clone::clone);
    assert_eq!(live_flow, rebuilt.flow, "rebuilt boards equal live boards");
    assert_eq!(
        two.boards.read(Clone::clone),
        live_flow,
        "two processes agree"
    );
    let now = chrono::Utc::now();
    for code in ["W1", "W2"] {
        assert_eq!(
            one.boards.read(|f| f.ward_board(&ward(code), now)),
            rebuilt.flow.ward_board(&ward(code), now)
        );
    }
    // The boards are not trivially empty.
    let occupied = one
        .boards
        .read(|f| f.ward_totals(&ward("W1"), now).occupied)
        + one
            .boards
            .read(|f| f.ward_totals(&ward("W2"), now).occupied);
    assert!(occupied > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unacknowledged_referral_is_escalated_exactly_once_by_two_processes() {
    let l = live().await;
    let one = start(&l);
    let two = start(&l);
    let other_bus = Arc::new(CommandBus::new(
        BatonRepository::new(l.db.clone(), ReservationRules::baton()),
        catalogue(),
    ));
    l.bus
        .spell(&spell_id("s1"), issued(admit("s1", 1, "W1", 1)), None)
        .await
        .unwrap();
    let referral = ReferralId::parse("late").unwrap();
    let raised = l
        .bus
        .raise_referral(
            &referral,
            &spell_id("s1"),
            TeamCode::parse("REAB").unwrap(),
            ServiceKind::Reablement,
            Pathway::P1,
            Text::parse("needs reablement").unwrap(),
            nurse(),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    assert!(
        one.boards
            .wait_for(&raised.token, Duration::from_secs(10))
            .await
    );
    assert!(
        two.boards
            .wait_for(&raised.token, Duration::from_secs(10))
            .await
    );

    let before_sla = chrono::Utc::now() + chrono::Duration::minutes(119);
    assert_eq!(
        infra::sla::escalate_due(&one.boards, &l.bus, before_sla).await,
        0
    );

    // Both processes' clocks fire past the SLA at the same moment.
    let past_sla = chrono::Utc::now() + chrono::Duration::minutes(121);
    let (a, b) = tokio::join!(
        infra::sla::escalate_due(&one.boards, &l.bus, past_sla),
        infra::sla::escalate_due(&two.boards, &other_bus, past_sla)
    );
    assert_eq!(a + b, 1, "exactly one escalation");
    let (state, version) = l.bus.load_referral(&referral).await.unwrap();
    assert_eq!(version, 2);
    assert!(state.state().unwrap().escalated_at.is_some());

    // Once the boards show it, no clock escalates it again.
    caught_up(&l, &one.boards).await;
    let team = one
        .boards
        .read(|f| f.team_board(&TeamCode::parse("REAB").unwrap(), past_sla));
    assert!(team.referrals[0].escalated && team.referrals[0].sla_breached);
    assert_eq!(
        infra::sla::escalate_due(&one.boards, &l.bus, past_sla).await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rebuild_stored_by_another_process_is_swapped_into_running_boards() {
    let l = live().await;
    let r = start(&l);
    admit_in_turn(&l, ("s", 0), 6, "W1").await;
    caught_up(&l, &r.boards).await;
    // The running boards go wrong (as a bug in a fold would leave them):
    // everything forgotten, at the current position.
    let position = r.boards.position();
    r.boards.replace(infra::runner::State {
        position,
        ..Default::default()
    });
    // Another process (`baton projections rebuild`) stores a rebuild.
    let rebuilt = rebuild(&l.feed).await.unwrap();
    let snapshot = infra::snapshots::Snapshot {
        position: rebuilt.position,
        state: serde_json::to_string(&rebuilt).unwrap(),
        generation: 0,
    };
    infra::snapshots::store(
        &l.db,
        &l.feed.identity(),
        &snapshot,
        infra::snapshots::Write::Rebuild,
    )
    .await
    .unwrap();
    eventually(
        "the running boards to swap the rebuild in",
        Duration::from_secs(10),
        || async { r.boards.read(Clone::clone) == rebuilt.flow },
    )
    .await;
    // Its own checkpoints build on the rebuild, never on the wrong state.
    r.stop().await;
    let stored = infra::snapshots::load(&l.db, &l.feed.identity())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.generation, 1);
    let state: infra::runner::State = serde_json::from_str(&stored.state).unwrap();
    assert_eq!(state.flow, rebuilt.flow);
}
