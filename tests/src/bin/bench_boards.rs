//! Boards benchmark (issue 4): replay speed through the folds and end to end
//! from JetStream, time for a board to show a command at 500 commands/s,
//! memory with 100,000 open spells, and board read latency at that scale.
//! Prints figures and writes its section of docs/benchmarks.md.
//!
//! Run: `cargo run --release -p baton-tests --bin bench-boards`
//! (needs the PostgreSQL and nats-server that `.ci/run` starts).
#![allow(clippy::unwrap_used, clippy::print_stdout)]

baton_tests::bench_allocator!();

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_tests::fixtures::{admit, catalogue, issued, spell_id};
use baton_tests::nats::NatsServer;
use baton_tests::postgres::TestDatabase;
use domain::reference::{Team, Ward};
use domain::spell::{Patient, Placement, SpellCommand, SpellEvent};
use domain::values::{
    BedLabel, HospitalCode, NhsNumber, Pathway, PersonName, ServiceKind, SpellId, TeamCode, Text,
    WardCode,
};
use domain::{Actor, DomainEvent as _, Recorded};
use futures::StreamExt;
use infra::commands::CommandBus;
use infra::feed::{Feed, FeedEvent};
use infra::metrics::RelayMetrics;
use infra::relay::{Relay, Sink};
use infra::runner::{Boards, Runner};
use infra::store::{BatonRepository, Database, ReservationRules};
use infra::stream::{self, StreamSettings, Target};

const OPEN_SPELLS: u32 = 100_000;
const WARDS: u32 = 3_500; // England: ~100,000 acute beds in wards of ~29
const BEDS: u16 = 30;

fn ward_code(w: u32) -> WardCode {
    WardCode::parse(format!("W{w:04}")).unwrap()
}

fn hospital_of(w: u32) -> HospitalCode {
    HospitalCode::parse(format!("H{:03}", w / 25)).unwrap()
}

fn wards() -> Vec<Ward> {
    (0..WARDS)
        .map(|w| Ward {
            code: ward_code(w),
            name: Text::parse("ward").unwrap(),
            hospital: hospital_of(w),
            beds: BEDS,
        })
        .collect()
}

fn nhs(n: u32) -> NhsNumber {
    baton_tests::fixtures::nhs_number(n)
}

/// Synthetic stored events: `spells` admissions, each followed by an EDD,
/// a review (a sixth not meeting the criteria) and a pathway: 4 per spell.
fn synthetic(spells: u32) -> Vec<FeedEvent> {
    let by = Actor::new("bench", "Bench");
    let now = chrono::Utc::now();
    let mut events = Vec::with_capacity(spells as usize * 4);
    for i in 0..spells {
        let w = i % WARDS;
        let id = format!("s{i}");
        let placement = Placement {
            hospital: hospital_of(w),
            ward: ward_code(w),
            bed: BedLabel::parse(((i / WARDS) % u32::from(BEDS) + 1).to_string()).unwrap(),
        };
        let admitted_at = now - chrono::Duration::days(i64::from(i % 9) + 1);
        let list = [
            SpellEvent::PatientAdmitted {
                spell_id: SpellId::parse(&id).unwrap(),
                patient: Patient {
                    nhs_number: nhs(i),
                    family_name: PersonName::parse("Family").unwrap(),
                    given_name: PersonName::parse("Given").unwrap(),
                    date_of_birth: "1950-01-01".parse().unwrap(),
                },
                placement,
                admitted_at,
                visit_number: None,
            },
            SpellEvent::ExpectedDischargeDateSet {
                date: now.date_naive() + chrono::Duration::days(i64::from(i % 5) - 2),
                previous: None,
            },
            SpellEvent::CriteriaToResideReviewed {
                meets_criteria_to_reside: i % 6 != 0,
                at: admitted_at + chrono::Duration::hours(20),
                discharge_ready_date: (i % 6 == 0)
                    .then(|| (admitted_at + chrono::Duration::hours(20)).date_naive()),
            },
            SpellEvent::DischargePathwaySet {
                pathway: Pathway::ALL[(i % 4) as usize],
                previous: None,
            },
        ];
        for (n, event) in list.into_iter().enumerate() {
            // The boards read an event through the upcaster of its stored
            // type, and skip one whose payload is of another type.
            let event_type = event.event_type().to_owned();
            let payload = serde_json::to_vec(&Recorded {
                by: by.clone(),
                recorded_at: now,
                event,
            })
            .unwrap()
            .into();
            events.push(FeedEvent {
                position: events.len() as u64 + 1,
                aggregate_type: "spell".into(),
                aggregate_id: id.clone(),
                sequence: n as u64 + 1,
                event_type,
                event_version: "1".into(),
                payload,
            });
        }
    }
    events
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

fn read_latencies(mut f: impl FnMut(), n: usize) -> (Duration, Duration) {
    let mut all = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        f();
        all.push(started.elapsed());
    }
    all.sort_unstable();
    (percentile(&all, 0.5), percentile(&all, 0.99))
}

#[tokio::main]
async fn main() {
    let mut report = String::new();
    let _ = writeln!(
        report,
        "## Boards: replay, freshness, memory and reads (issue 4)\n"
    );
    let _ =
        writeln!(
        report,
        "Command: `cargo run --release -p baton-tests --bin bench-boards`, run on {} ({} cores). \
         Synthetic England-scale system: {OPEN_SPELLS} open spells on {WARDS} wards of {BEDS} beds \
         in {} hospitals, 4 events per spell (admission, EDD, criteria review, pathway).\n",
        chrono::Utc::now().format("%Y-%m-%d"),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        WARDS / 25
    );

    // 1. Replay through the folds, decoding included.
    let events = synthetic(OPEN_SPELLS);
    let rss_before = rss_bytes();
    let boards = Boards::new();
    let started = Instant::now();
    let cpu_before = baton_tests::cpu::CpuTimes::now();
    for event in &events {
        boards.apply(event).unwrap();
    }
    let fold_rate = events.len() as f64 / started.elapsed().as_secs_f64();
    // The replay runs on one thread: per CPU-second of this process it is
    // the fold's own speed, whatever else the machine is doing.
    let fold_cpu = baton_tests::cpu::CpuTimes::now().since(&cpu_before).this;
    let fold_per_cpu = events.len() as f64 / fold_cpu.as_secs_f64().max(0.01);
    // An event the boards cannot read is logged and skipped: a replay that
    // skipped them would measure nothing.
    assert_eq!(
        boards.applied_count(),
        events.len() as u64,
        "the boards skipped events"
    );
    let rss_after = rss_bytes();
    let memory_mib = (rss_after.saturating_sub(rss_before)) as f64 / (1024.0 * 1024.0);
    println!(
        "replay through the folds (decode + apply): {fold_rate:.0} events/s \
         ({fold_per_cpu:.0} per CPU-second)"
    );
    println!("memory for {OPEN_SPELLS} open spells: {memory_mib:.0} MiB (RSS growth)");

    // 2. Reads at that scale.
    let all_wards = wards();
    let teams = vec![Team {
        code: TeamCode::parse("REAB").unwrap(),
        name: Text::parse("Reablement").unwrap(),
        services: [ServiceKind::Reablement].into(),
        response_sla_minutes: 120,
    }];
    let now = chrono::Utc::now();
    let mut w = 0usize;
    let ward_read = read_latencies(
        || {
            w = (w + 7) % all_wards.len();
            let board = boards.read(|f| f.ward_board(&all_wards[w], now));
            std::hint::black_box(serde_json::to_vec(&board).unwrap());
        },
        2_000,
    );
    let hospital_wards: Vec<Ward> = all_wards
        .iter()
        .filter(|w| w.hospital == hospital_of(0))
        .cloned()
        .collect();
    let hospital_read = read_latencies(
        || {
            let board = boards.read(|f| f.hospital_board(&hospital_of(0), &hospital_wards, now));
            std::hint::black_box(serde_json::to_vec(&board).unwrap());
        },
        2_000,
    );
    let system_read = read_latencies(
        || {
            let board = boards.read(|f| f.system_board(&all_wards, &teams, now));
            std::hint::black_box(serde_json::to_vec(&board).unwrap());
        },
        200,
    );
    println!(
        "reads p50/p99 ms: ward {}/{}, hospital {}/{}, system {}/{}",
        ms(ward_read.0),
        ms(ward_read.1),
        ms(hospital_read.0),
        ms(hospital_read.1),
        ms(system_read.0),
        ms(system_read.1)
    );
    drop(boards);

    // 3. End to end from JetStream: publish the same events as the relay
    // would, then time a fresh runner's feed from the start to the head.
    let nats = NatsServer::start().await;
    let client = async_nats::connect(nats.url()).await.unwrap();
    let target = Arc::new(Target {
        context: async_nats::jetstream::new(client),
        settings: StreamSettings::default(),
    });
    stream::ensure_stream(&target.context, &target.settings)
        .await
        .unwrap();
    let mut acks = Vec::new();
    for (i, event) in events.iter().enumerate() {
        let row = infra::outbox::OutboxRow {
            position: i as i64 + 1,
            aggregate_type: event.aggregate_type.clone(),
            aggregate_id: event.aggregate_id.clone(),
            sequence: event.sequence as i64,
            event_type: event.event_type.clone(),
            event_version: "1".into(),
            payload: event.json().unwrap(),
            committed_at: now,
        };
        let message = async_nats::jetstream::message::PublishMessage::build()
            .payload(event.payload.clone())
            .headers(stream::message_headers(&row));
        let subject = stream::subject("baton.events", &row.aggregate_type, &row.aggregate_id);
        acks.push(target.context.send_publish(subject, message).await.unwrap());
        if acks.len() >= 4096 {
            for ack in acks.drain(..) {
                ack.await.unwrap();
            }
        }
    }
    for ack in acks.drain(..) {
        ack.await.unwrap();
    }
    let feed = Feed::JetStream(target.clone());
    let head = feed.head().await.unwrap();
    let boards = Boards::new();
    let started = Instant::now();
    // As the runner does: whatever the feed has ready, applied in one go.
    let mut stream = feed.subscribe(0).await.unwrap().ready_chunks(512);
    while let Some(chunk) = stream.next().await {
        let events: Vec<_> = chunk.into_iter().map(Result::unwrap).collect();
        boards.apply_all(&events).unwrap();
        if boards.position() >= head {
            break;
        }
    }
    let e2e_rate = head as f64 / started.elapsed().as_secs_f64();
    assert_eq!(boards.applied_count(), head, "the boards skipped events");
    println!("end to end from JetStream into the boards: {e2e_rate:.0} events/s ({head} events)");
    drop(boards);
    drop(events);

    // 4. Freshness: a command's time to show on the boards at 500/s.
    let pg = TestDatabase::create().await;
    let db = Database::postgres(&pg.url, 32).unwrap();
    db.migrate().await.unwrap();
    let repo = BatonRepository::new(db.clone(), ReservationRules::baton());
    let bus = Arc::new(CommandBus::new(repo.clone(), catalogue()));
    let live_nats = NatsServer::start().await;
    let live_client = async_nats::connect(live_nats.url()).await.unwrap();
    let live_target = Arc::new(Target {
        context: async_nats::jetstream::new(live_client),
        settings: StreamSettings::default(),
    });
    let (_stop, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(
        Relay::new(
            db.clone(),
            Sink::JetStream(live_target.clone()),
            repo.relay_signals(),
            Arc::new(RelayMetrics::default()),
        )
        .run(stop.clone()),
    );
    let live_boards = Boards::new();
    tokio::spawn(
        Runner::new(
            live_boards.clone(),
            Feed::JetStream(live_target),
            db.clone(),
        )
        .run(stop),
    );
    let writers = 16u32;
    let per_writer = 500.0 / f64::from(writers);
    let run_for = Duration::from_secs(8);
    let tasks = (0..writers).map(|w| {
        let bus = bus.clone();
        let boards = live_boards.clone();
        tokio::spawn(async move {
            let interval = Duration::from_secs_f64(1.0 / per_writer);
            let started = Instant::now();
            let mut next = Instant::now();
            let mut lat = Vec::new();
            let mut k = 0u32;
            let name = format!("f{w}");
            bus.spell(
                &spell_id(&name),
                issued(admit(
                    &name,
                    500 + w,
                    ["W1", "W2"][(w % 2) as usize],
                    w / 2 + 1,
                )),
                None,
            )
            .await
            .unwrap();
            while started.elapsed() < run_for {
                next += interval;
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    tokio::time::sleep(wait).await;
                }
                k += 1;
                let date =
                    chrono::Utc::now().date_naive() + chrono::Duration::days(i64::from(k % 20) + 1);
                let done = bus
                    .spell(
                        &spell_id(&name),
                        issued(SpellCommand::SetExpectedDischargeDate { date }),
                        None,
                    )
                    .await
                    .unwrap();
                let committed = Instant::now();
                if boards.wait_for(&done.token, Duration::from_secs(10)).await {
                    lat.push(committed.elapsed());
                }
            }
            lat
        })
    });
    let mut freshness = Vec::new();
    for task in futures::future::join_all(tasks).await {
        freshness.extend(task.unwrap());
    }
    freshness.sort_unstable();
    let achieved = freshness.len() as f64 / run_for.as_secs_f64();
    println!(
        "command to board at ~500/s ({achieved:.0}/s achieved): p50 {} ms, p99 {} ms",
        ms(percentile(&freshness, 0.5)),
        ms(percentile(&freshness, 0.99))
    );

    let _ = writeln!(report, "| measure | result | target |\n|---|---|---|");
    let _ = writeln!(report, "| replay through the folds (decode + apply) | {fold_rate:.0} events/s ({fold_per_cpu:.0} per CPU-second of the replaying thread's process) | 200,000 events/s |");
    let _ = writeln!(
        report,
        "| end to end from JetStream into the boards | {e2e_rate:.0} events/s | 100,000 events/s |"
    );
    let _ = writeln!(
        report,
        "| command to board, paced 500 commands/s ({achieved:.0}/s achieved) | p50 {} ms, p99 {} ms | p99 under 20 ms |",
        ms(percentile(&freshness, 0.5)),
        ms(percentile(&freshness, 0.99))
    );
    let _ = writeln!(report, "| memory, {OPEN_SPELLS} open spells (RSS growth while folding) | {memory_mib:.0} MiB | under 1 GiB |");
    for (read, (p50, p99)) in [
        ("ward board read + JSON".to_owned(), ward_read),
        (
            "hospital board read + JSON, 25 wards".to_owned(),
            hospital_read,
        ),
        (
            format!("system board read + JSON, all {WARDS} wards"),
            system_read,
        ),
    ] {
        let _ = writeln!(
            report,
            "| {read} (p50 / p99) | {} / {} ms | p99 under 5 ms |",
            ms(p50),
            ms(p99)
        );
    }
    report.push('\n');
    let _ = writeln!(
        report,
        "Command-to-board includes the pipeline (commit, relay, JetStream) and the runner; it is \
         measured from the command bus returning to the boards including the command's consistency \
         token.\n"
    );

    let body = report
        .split_once('\n')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    baton_tests::write_benchmark_section(
        "## Boards: replay, freshness, memory and reads (issue 4)",
        body,
    );
    println!("wrote docs/benchmarks.md");
}
