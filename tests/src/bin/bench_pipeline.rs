//! Pipeline benchmark (issue 3): commands per second and commit-to-stream
//! latency with 1, 16 and 64 concurrent writers on distinct spells, beside
//! the bare postgres-es `CqrsFramework` doing the same commands without
//! reservations or outbox; then commit-to-stream latency at a paced 1,000
//! commands per second. Prints a table and writes docs/benchmarks.md.
//!
//! Run: `cargo run --release -p baton-tests --bin bench-pipeline`
//! (needs the PostgreSQL and nats-server that `.ci/run` starts).
#![allow(clippy::unwrap_used, clippy::print_stdout)]

baton_tests::bench_allocator!();

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use baton_tests::bench::{bare_framework, cycle, issued, ms, percentile, BareCqrs};
use baton_tests::cpu::{CpuTimes, PerCommand};
use baton_tests::fixtures::catalogue;
use baton_tests::nats::NatsServer;
use baton_tests::postgres::TestDatabase;
use domain::spell::SpellCommand;
use domain::values::SpellId;
use futures::StreamExt;
use infra::commands::CommandBus;
use infra::feed::Feed;
use infra::metrics::RelayMetrics;
use infra::relay::{Relay, Sink};
use infra::store::{BatonRepository, Database, ReservationRules};
use infra::stream::{StreamSettings, Target};

/// Each row alternates bare and Baton in slices of this length, `SLICES`
/// times each, so both see the same disk: this machine's fsync time drifts
/// by a factor of two from minute to minute. Which goes first alternates
/// too (bare, Baton, Baton, bare, ...), so a drift within a row, or a
/// checkpoint, favours neither.
const SLICE: Duration = Duration::from_secs(2);
const SLICES: u32 = 6;

#[derive(Clone)]
enum Path {
    Baton(Arc<CommandBus>),
    Bare(Arc<BareCqrs>),
}

impl Path {
    /// Executes and returns the commit instant keyed as the stream's msg id.
    async fn execute(&self, id: &str, command: SpellCommand) -> Option<(String, u64)> {
        match self {
            Path::Baton(bus) => {
                let done = bus
                    .spell(&SpellId::parse(id).unwrap(), issued(command), None)
                    .await
                    .unwrap();
                Some((id.to_owned(), done.version))
            }
            Path::Bare(cqrs) => {
                cqrs.execute(id, issued(command)).await.unwrap();
                None
            }
        }
    }
}

type Commits = Arc<Mutex<HashMap<(String, u64), Instant>>>;

/// Runs `writers` writers for one `SLICE` (or `per_writer_rate` commands per second
/// each, if given) and returns how many commands they executed.
async fn drive(
    path: &Path,
    writers: u32,
    label: &str,
    per_writer_rate: Option<f64>,
    commits: &Commits,
) -> (usize, Duration) {
    let started = Instant::now();
    let tasks = (0..writers).map(|w| {
        let path = path.clone();
        let commits = commits.clone();
        let label = label.to_owned();
        tokio::spawn(async move {
            let mut done = 0usize;
            let mut round = 0u32;
            let interval = per_writer_rate.map(|r| Duration::from_secs_f64(1.0 / r));
            let mut next = Instant::now();
            while started.elapsed() < SLICE {
                let spell = format!("{label}-w{w}-s{round}");
                for command in cycle(&spell, w) {
                    if let Some(interval) = interval {
                        next += interval;
                        if let Some(wait) = next.checked_duration_since(Instant::now()) {
                            tokio::time::sleep(wait).await;
                        }
                    }
                    if let Some(key) = path.execute(&spell, command).await {
                        commits.lock().unwrap().insert(key, Instant::now());
                    }
                    done += 1;
                }
                round += 1;
            }
            done
        })
    });
    let mut total = 0;
    for task in futures::future::join_all(tasks).await {
        total += task.unwrap();
    }
    (total, started.elapsed())
}

struct Row {
    writers: u32,
    bare: f64,
    baton: f64,
    bare_cpu: PerCommand,
    baton_cpu: PerCommand,
    p50: Duration,
    p99: Duration,
}

struct Suite {
    title: &'static str,
    floor: f64,
    rows: Vec<Row>,
    paced_rate: f64,
    paced_p50: Duration,
    paced_p99: Duration,
    paced_samples: usize,
}

#[tokio::main]
async fn main() {
    let nats = NatsServer::start().await;
    let durable = suite(
        &nats,
        "Durable commits (synchronous_commit on, the production setting)",
        "",
        "d",
    )
    .await;
    let no_flush = suite(
        &nats,
        "Without waiting for WAL flushes (synchronous_commit off on both paths): the cost Baton adds, without the disk's noise",
        "?options=-c%20synchronous_commit%3Doff",
        "n",
    )
    .await;
    write_report(&[durable, no_flush]);
}

async fn suite(nats: &NatsServer, title: &'static str, url_options: &str, tag: &str) -> Suite {
    println!("== {title}");
    let baton_db = TestDatabase::create().await;
    let bare_db = TestDatabase::create().await;
    let baton_url = format!("{}{url_options}", baton_db.url);
    let bare_url = format!("{}{url_options}", bare_db.url);

    let db = Database::postgres(&baton_url, 40).unwrap();
    db.migrate().await.unwrap();
    let repo = BatonRepository::new(db.clone(), ReservationRules::baton());
    let bus = Arc::new(CommandBus::new(repo.clone(), catalogue()));
    let client = async_nats::connect(nats.url()).await.unwrap();
    let target = Arc::new(Target {
        context: async_nats::jetstream::new(client),
        settings: StreamSettings::default(),
    });
    let metrics = Arc::new(RelayMetrics::default());
    let (stop_relay, stop) = tokio::sync::watch::channel(false);
    let relay = Relay::new(
        db.clone(),
        Sink::JetStream(target.clone()),
        repo.relay_signals(),
        metrics,
    );
    let relay = tokio::spawn(relay.run(stop));

    let bare = Path::Bare(bare_framework(&bare_url, 40).await);
    let baton = Path::Baton(bus);

    // Arrivals on the stream, matched to commit instants by aggregate/sequence.
    let commits: Commits = Arc::new(Mutex::new(HashMap::new()));
    let latencies = Arc::new(Mutex::new(Vec::<Duration>::new()));
    // Warm up, and make sure the relay has created the stream.
    drive(&baton, 1, &format!("{tag}warm"), Some(50.0), &commits).await;
    drive(&bare, 1, &format!("{tag}warm"), Some(50.0), &commits).await;
    let drained = || async {
        while infra::outbox::status(&db).await.unwrap().depth > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await; // the last arrivals
    };
    drained().await;
    let consumer = {
        let commits = commits.clone();
        let latencies = latencies.clone();
        let feed = Feed::JetStream(target.clone());
        let mut stream = target.context.get_stream("BATON_EVENTS").await.unwrap();
        let after = stream.info().await.unwrap().state.last_sequence;
        commits.lock().unwrap().clear();
        tokio::spawn(async move {
            let mut events = feed.subscribe(after).await.unwrap();
            while let Some(event) = events.next().await {
                let Ok(event) = event else {
                    continue; // an ordered consumer recovers by itself
                };
                let arrived = Instant::now();
                let key = (event.aggregate_id, event.sequence);
                // The commit instant is recorded when the bus returns; if the
                // event outran that, wait for it briefly.
                for _ in 0..100 {
                    let committed = commits.lock().unwrap().remove(&key);
                    if let Some(committed) = committed {
                        latencies
                            .lock()
                            .unwrap()
                            .push(arrived.saturating_duration_since(committed));
                        break;
                    }
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
            }
        })
    };
    let floor = commit_floor(&bare_url).await;
    println!("commit floor: {floor:.0} single-row transactions/s on one connection");

    let mut rows = Vec::new();
    for writers in [1u32, 16, 64] {
        let (mut bare_n, mut bare_t, mut baton_n, mut baton_t) =
            (0, Duration::ZERO, 0, Duration::ZERO);
        let (mut bare_cpu, mut baton_cpu) = (CpuTimes::default(), CpuTimes::default());
        latencies.lock().unwrap().clear();
        for slice in 0..SLICES {
            let order = if slice % 2 == 0 {
                [&bare, &baton]
            } else {
                [&baton, &bare]
            };
            for path in order {
                let is_baton = matches!(path, Path::Baton(_));
                drained().await;
                let before = CpuTimes::now();
                let name = if is_baton { "baton" } else { "bare" };
                let (n, t) = drive(
                    path,
                    writers,
                    &format!("{tag}{name}{writers}x{slice}"),
                    None,
                    &commits,
                )
                .await;
                let driven = CpuTimes::now();
                if is_baton {
                    baton_n += n;
                    baton_t += t;
                    // Baton's CPU includes relaying what its slice
                    // committed; the machine's busy share is over the
                    // slice alone, not the drain's idle wait.
                    drained().await;
                    let mut spent = CpuTimes::now().since(&before);
                    let slice = driven.since(&before);
                    (spent.machine_busy, spent.machine_total) =
                        (slice.machine_busy, slice.machine_total);
                    baton_cpu = baton_cpu.plus(&spent);
                } else {
                    bare_n += n;
                    bare_t += t;
                    bare_cpu = bare_cpu.plus(&driven.since(&before));
                }
            }
        }
        drained().await;
        let mut lat = std::mem::take(&mut *latencies.lock().unwrap());
        lat.sort_unstable();
        let row = Row {
            writers,
            bare: bare_n as f64 / bare_t.as_secs_f64(),
            baton: baton_n as f64 / baton_t.as_secs_f64(),
            p50: percentile(&lat, 0.50),
            p99: percentile(&lat, 0.99),
            bare_cpu: bare_cpu.per_command(bare_n),
            baton_cpu: baton_cpu.per_command(baton_n),
        };
        println!(
            "     CPU per command: bare {}; Baton {}",
            row.bare_cpu, row.baton_cpu
        );
        println!(
            "{writers:>3} writers: bare {:>7.0}/s  baton {:>7.0}/s  ({:+.1}%)  commit-to-stream p50 {} ms p99 {} ms ({} samples)",
            row.bare,
            row.baton,
            (row.baton / row.bare - 1.0) * 100.0,
            ms(row.p50),
            ms(row.p99),
            lat.len()
        );
        rows.push(row);
    }

    // Paced: 1,000 commands per second from 16 writers.
    drained().await;
    latencies.lock().unwrap().clear();
    let (mut paced_n, mut paced_t) = (0, Duration::ZERO);
    for slice in 0..SLICES {
        let (n, t) = drive(
            &baton,
            16,
            &format!("{tag}paced{slice}"),
            Some(1000.0 / 16.0),
            &commits,
        )
        .await;
        paced_n += n;
        paced_t += t;
    }
    drained().await;
    let mut lat = std::mem::take(&mut *latencies.lock().unwrap());
    lat.sort_unstable();
    let paced_rate = paced_n as f64 / paced_t.as_secs_f64();
    println!(
        "paced: {paced_rate:.0} commands/s, commit-to-stream p50 {} ms, p99 {} ms ({} samples)",
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99)),
        lat.len()
    );
    consumer.abort();
    let _ = stop_relay.send(true);
    let _ = relay.await;
    Suite {
        title,
        floor,
        rows,
        paced_rate,
        paced_p50: percentile(&lat, 0.5),
        paced_p99: percentile(&lat, 0.99),
        paced_samples: lat.len(),
    }
}

fn write_report(suites: &[Suite]) {
    let mut report = String::new();
    let _ = writeln!(
        report,
        "Command: `cargo run --release -p baton-tests --bin bench-pipeline`, run on {} \
         ({} cores; PostgreSQL 15 and nats-server {} on the same machine, over loopback).\n",
        chrono::Utc::now().format("%Y-%m-%d"),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        baton_tests::nats::version()
    );
    let _ = writeln!(
        report,
        "Each writer records whole spells (admit, EDD, criteria review, pathway, delay, resolve, \
         EDD, pathway, discharge: 9 commands) on its own beds. Each row alternates bare and Baton \
         in {} slices of {} s each, so both meet the same disk (this machine's fsync time drifts \
         by a factor of two from minute to minute), and which goes first alternates too, so a \
         drift within a row favours neither. *Bare* is postgres-es's `CqrsFramework` on a \
         plain events table: no reservations, no outbox, no relay. *Baton* is the command bus: \
         the same events plus reservations and outbox rows in the same transaction, with the \
         relay publishing to JetStream meanwhile, on the same two cores. Commit-to-stream is \
         measured from the bus returning to a live JetStream consumer receiving the event.\n",
        SLICES,
        SLICE.as_secs()
    );
    for suite in suites {
        let _ = writeln!(report, "### {}\n", suite.title);
        let _ = writeln!(
            report,
            "Commit floor measured by the same run: {:.0} single-row `BEGIN; INSERT; COMMIT` \
             transactions per second on one connection.\n",
            suite.floor
        );
        let _ = writeln!(
            report,
            "| writers | bare commands/s | Baton commands/s | Baton vs bare | commit-to-stream p50 (ms) | p99 (ms) |\n|---|---|---|---|---|---|"
        );
        for row in &suite.rows {
            let _ = writeln!(
                report,
                "| {} | {:.0} | {:.0} | {:+.1}% | {} | {} |",
                row.writers,
                row.bare,
                row.baton,
                (row.baton / row.bare - 1.0) * 100.0,
                ms(row.p50),
                ms(row.p99)
            );
        }
        let _ = writeln!(
            report,
            "\nCPU per command, from /proc (PostgreSQL's processes + nats-server + the benchmark's \
             process, in µs; Baton's includes relaying its slice), and how busy the machine was:\n\n\
             | writers | bare | Baton |\n|---|---|---|"
        );
        for row in &suite.rows {
            let _ = writeln!(
                report,
                "| {} | {} | {} |",
                row.writers, row.bare_cpu, row.baton_cpu
            );
        }
        let _ = writeln!(
            report,
            "\nPaced at 1,000 commands/s (16 writers): achieved {:.0} commands/s; commit-to-stream \
             p50 {} ms, p99 {} ms ({} samples).\n",
            suite.paced_rate,
            ms(suite.paced_p50),
            ms(suite.paced_p99),
            suite.paced_samples
        );
    }
    // The verdicts are computed from this run's figures, not written by hand.
    let durable = &suites[0];
    let worst = durable
        .rows
        .iter()
        .map(|r| 1.0 - r.baton / r.bare)
        .fold(f64::MIN, f64::max);
    let verdict = |met: bool| if met { "met" } else { "not met" };
    let _ = writeln!(
        report,
        "Targets (issue 3), on the durable figures: outbox and relay cost under 10% of bare \
         throughput: {} (the largest cost in this run is {:.1}%); commit-to-stream p99 under \
         10 ms at 1,000 commands/s: {} ({} ms). Bare does less than Baton: no reservations \
         (one bed and one patient per spell) and no outbox rows, and it has the two cores to \
         itself while Baton shares them with the relay, nats-server and the measuring consumer. \
         Read the figures with the commit floor beside them: this shared VM's fsync time drifts \
         from minute to minute.\n",
        verdict(worst < 0.10),
        worst * 100.0,
        verdict(durable.paced_p99 < Duration::from_millis(10)),
        ms(durable.paced_p99)
    );
    baton_tests::write_benchmark_section(
        "## Pipeline: commands, outbox and relay (issue 3)",
        &report,
    );
    println!("wrote docs/benchmarks.md");
}

/// Single-row transactions per second on one connection: what one commit
/// with its WAL flush costs on this machine.
async fn commit_floor(url: &str) -> f64 {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    sqlx::query("CREATE TABLE floor (id bigserial PRIMARY KEY, v text)")
        .execute(&pool)
        .await
        .unwrap();
    let started = Instant::now();
    let mut n = 0u32;
    while started.elapsed() < Duration::from_secs(3) {
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("INSERT INTO floor (v) VALUES ('x')")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        n += 1;
    }
    f64::from(n) / started.elapsed().as_secs_f64()
}
