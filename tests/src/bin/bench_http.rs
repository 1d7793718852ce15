//! HTTP benchmark (issue 5): commands per second and latency p50/p99 through
//! the whole HTTP stack (JWT verification, authorisation, strict bodies,
//! the command bus, reservations, outbox, the relay to JetStream and the
//! boards' runner all running) at 64 concurrent clients, beside the bare
//! postgres-es `CqrsFramework` doing the same commands in the same run,
//! alternating in slices so both meet the same disk. Then the latency of
//! an audited read (a spell, with its access-log row written first).
//! Prints a table and writes its section of docs/benchmarks.md.
//!
//! Run: `cargo run --release -p baton-tests --bin bench-http`
//! (needs the PostgreSQL and nats-server that `.ci/run` starts).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

/// The allocator `baton` itself runs with (see `api/src/main.rs`), so the
/// figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_tests::bench::{bare_framework, bed_of, cycle, issued, ms, percentile, BareCqrs};
use baton_tests::cpu::CpuTimes;
use baton_tests::http::{admission, Stack, TestApp};
use baton_tests::postgres::TestDatabase;
use baton_tests::wire::WireClient;
use infra::auth::Role;
use serde_json::json;

const WRITERS: u32 = 64;
const SLICE: Duration = Duration::from_secs(3);
const SLICES: u32 = 6;

/// One spell's life over HTTP: the same 9 commands as `cycle`.
async fn http_cycle(
    client: &mut WireClient,
    writer: u32,
    round: u32,
    latencies: &mut Vec<Duration>,
) -> usize {
    let (ward, bed) = bed_of(writer);
    let now = chrono::Utc::now().to_rfc3339();
    let today = chrono::Utc::now().date_naive();
    let mut timed = |started: Instant| latencies.push(started.elapsed());
    let started = Instant::now();
    let admitted = client
        .post(
            "/api/v1/spells",
            &admission(10_000 + writer + round * 100, ward, bed),
        )
        .await
        .ok();
    timed(started);
    let id = admitted.json()["id"].as_str().unwrap().to_owned();
    let steps = [
        (
            "expected-discharge-date",
            json!({ "date": (today + chrono::Duration::days(3)).to_string() }),
        ),
        (
            "criteria-review",
            json!({ "meets_criteria_to_reside": false, "at": now }),
        ),
        ("pathway", json!({ "pathway": "P1" })),
        ("delays", json!({ "reason_code": "13", "at": now })),
        ("delays/D1/resolve", json!({ "at": now })),
        (
            "expected-discharge-date",
            json!({ "date": (today + chrono::Duration::days(1)).to_string() }),
        ),
        ("pathway", json!({ "pathway": "P0" })),
        (
            "discharge",
            json!({ "at": now, "destination": "usual_residence" }),
        ),
    ];
    for (tail, body) in steps {
        let started = Instant::now();
        client
            .post(&format!("/api/v1/spells/{id}/{tail}"), &body)
            .await
            .ok();
        timed(started);
    }
    9
}

async fn drive_http(app: &TestApp, round_base: u32) -> (usize, Duration, Vec<Duration>) {
    let mut clients = Vec::new();
    for w in 0..WRITERS {
        let hospital = if bed_of(w).0 == "X1" { "DCH" } else { "POOLE" };
        let token = app.token(Role::Ward, Some(hospital));
        clients.push(WireClient::connect(&app.base, &token).await);
    }
    let started = Instant::now();
    let tasks = clients.into_iter().enumerate().map(|(w, mut client)| {
        let w = u32::try_from(w).unwrap();
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut done = 0;
            let mut round = round_base;
            while started.elapsed() < SLICE {
                done += http_cycle(&mut client, w, round, &mut latencies).await;
                round += 1;
            }
            (done, latencies)
        })
    });
    let mut total = 0;
    let mut all = Vec::new();
    for task in futures::future::join_all(tasks).await {
        let (done, latencies) = task.unwrap();
        total += done;
        all.extend(latencies);
    }
    (total, started.elapsed(), all)
}

/// Where `drive_commands` sends each command.
#[derive(Clone)]
enum Target {
    /// Baton's command bus, without HTTP.
    Bus(Arc<infra::commands::CommandBus>),
    /// postgres-es's framework on a plain events table.
    Bare(Arc<BareCqrs>),
}

impl Target {
    async fn execute(&self, spell: &str, command: domain::spell::SpellCommand) {
        match self {
            Target::Bus(bus) => {
                let id = domain::values::SpellId::parse(spell).unwrap();
                bus.spell(&id, issued(command), None).await.unwrap();
            }
            Target::Bare(bare) => bare.execute(spell, issued(command)).await.unwrap(),
        }
    }
}

/// `WRITERS` writers recording whole spells on `target` for one slice.
async fn drive_commands(target: &Target, label: &str) -> (usize, Duration, Vec<Duration>) {
    let started = Instant::now();
    let tasks = (0..WRITERS).map(|w| {
        let target = target.clone();
        let label = label.to_owned();
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut done = 0;
            let mut round = 0;
            while started.elapsed() < SLICE {
                let spell = format!("{label}-w{w}-s{round}");
                for command in cycle(&spell, w) {
                    let t = Instant::now();
                    target.execute(&spell, command).await;
                    latencies.push(t.elapsed());
                    done += 1;
                }
                round += 1;
            }
            (done, latencies)
        })
    });
    let mut total = 0;
    let mut all = Vec::new();
    for task in futures::future::join_all(tasks).await {
        let (done, latencies) = task.unwrap();
        total += done;
        all.extend(latencies);
    }
    (total, started.elapsed(), all)
}

#[tokio::main]
async fn main() {
    let app = TestApp::spawn(Stack::Production).await;
    app.seed_reference().await;
    let bare_db = TestDatabase::create().await;
    let bare = bare_framework(&bare_db.url, 40).await;
    let (mut http_n, mut http_t, mut http_lat) = (0, Duration::ZERO, Vec::new());
    let (mut bare_n, mut bare_t, mut bare_lat) = (0, Duration::ZERO, Vec::new());
    let (mut bus_n, mut bus_t, mut bus_lat) = (0, Duration::ZERO, Vec::new());
    let (mut bus_cpu, mut bare_cpu, mut http_cpu) = Default::default();
    // Each slice runs all three, in an order that rotates, so a drift of
    // the disk or a checkpoint favours none of them.
    for slice in 0..SLICES {
        for turn in 0..3 {
            let before = CpuTimes::now();
            match (slice + turn) % 3 {
                0 => {
                    let target = Target::Bus(app.bus.clone());
                    let (n, t, l) = drive_commands(&target, &format!("bus{slice}")).await;
                    bus_n += n;
                    bus_t += t;
                    bus_lat.extend(l);
                    bus_cpu = CpuTimes::now().since(&before).plus(&bus_cpu);
                }
                1 => {
                    let target = Target::Bare(bare.clone());
                    let (n, t, l) = drive_commands(&target, &format!("bare{slice}")).await;
                    bare_n += n;
                    bare_t += t;
                    bare_lat.extend(l);
                    bare_cpu = CpuTimes::now().since(&before).plus(&bare_cpu);
                }
                _ => {
                    let (n, t, l) = drive_http(&app, slice * 10_000).await;
                    http_n += n;
                    http_t += t;
                    http_lat.extend(l);
                    http_cpu = CpuTimes::now().since(&before).plus(&http_cpu);
                }
            }
        }
    }
    let (bus_cpu, bare_cpu, http_cpu): (CpuTimes, CpuTimes, CpuTimes) =
        (bus_cpu, bare_cpu, http_cpu);
    let cpu_line = format!(
        "CPU per command (from /proc; Baton and the clients share one process): HTTP {}; bus {}; bare {}",
        http_cpu.per_command(http_n),
        bus_cpu.per_command(bus_n),
        bare_cpu.per_command(bare_n)
    );
    http_lat.sort();
    bare_lat.sort();
    bus_lat.sort();
    let bus_rate = bus_n as f64 / bus_t.as_secs_f64();
    let http_rate = http_n as f64 / http_t.as_secs_f64();
    let bare_rate = bare_n as f64 / bare_t.as_secs_f64();
    let cost = (1.0 - http_rate / bare_rate) * 100.0;
    // Audited reads: one spell each, 64 clients, one slice.
    let ward = app.token(Role::Ward, Some("POOLE"));
    let spell = WireClient::connect(&app.base, &ward)
        .await
        .post("/api/v1/spells", &admission(99_999, "W1", 30))
        .await
        .ok();
    let path = format!("/api/v1/spells/{}", spell.json()["id"].as_str().unwrap());
    let mut readers = Vec::new();
    for _ in 0..WRITERS {
        readers.push(WireClient::connect(&app.base, &ward).await);
    }
    let started = Instant::now();
    let readers = readers.into_iter().map(|mut reader| {
        let path = path.clone();
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            while started.elapsed() < SLICE {
                let t = Instant::now();
                reader.get(&path).await.ok();
                latencies.push(t.elapsed());
            }
            latencies
        })
    });
    let mut reads: Vec<Duration> = Vec::new();
    for task in futures::future::join_all(readers).await {
        reads.extend(task.unwrap());
    }
    let read_rate = reads.len() as f64 / started.elapsed().as_secs_f64();
    reads.sort();
    let lines = [
        format!(
            "HTTP ({WRITERS} clients): {http_rate:.0} commands/s, latency p50 {} ms, p99 {} ms ({} commands)",
            ms(percentile(&http_lat, 0.5)),
            ms(percentile(&http_lat, 0.99)),
            http_lat.len()
        ),
        format!(
            "bare postgres-es ({WRITERS} writers): {bare_rate:.0} commands/s, latency p50 {} ms, p99 {} ms",
            ms(percentile(&bare_lat, 0.5)),
            ms(percentile(&bare_lat, 0.99)),
        ),
        format!(
            "Baton's command bus without HTTP ({WRITERS} writers, same app, relay and runner running): {bus_rate:.0} commands/s, latency p50 {} ms, p99 {} ms",
            ms(percentile(&bus_lat, 0.5)),
            ms(percentile(&bus_lat, 0.99)),
        ),
        format!("HTTP against bare: {cost:.1}% less throughput (target: under 20%); of which the HTTP layer (the client, loopback TCP, HTTP parsing, JWT, policy, JSON, the request log; no idempotency keys are sent) against the bus: {:.1}%, and the write side (reservations, outbox, relay, boards) against bare: {:.1}%",
            (1.0 - http_rate / bus_rate) * 100.0, (1.0 - bus_rate / bare_rate) * 100.0),
        cpu_line,
        format!(
            "audited spell reads ({WRITERS} clients): {read_rate:.0}/s, p50 {} ms, p99 {} ms",
            ms(percentile(&reads, 0.5)),
            ms(percentile(&reads, 0.99)),
        ),
    ];
    for line in &lines {
        println!("{line}");
    }
    let body = format!(
        "Command: `cargo run --release -p baton-tests --bin bench-http`, run on {} (2 cores; PostgreSQL 15, \
         nats-server {} on the same machine; the clients run in the same process as Baton, so they share \
         the two cores; each client is one kept-alive HTTP/1.1 connection written and read with no \
         general-purpose client library, `tests/src/wire.rs`).\n\nEach client records whole spells over HTTP (admit, EDD, criteria review, pathway, \
         delay, resolve, EDD, pathway, discharge: 9 commands) with a ward token, on its own bed; Baton runs \
         in production mode (PostgreSQL, JetStream relay, boards' runner). The bare figure is postgres-es's \
         `CqrsFramework` doing the same commands on a plain events table (no HTTP, auth, reservations or \
         outbox), and Baton's command bus called directly; the three alternate in {SLICES} slices of {} s each, in an order that rotates from slice to slice.\n\n{}\n",
        chrono::Utc::now().date_naive(),
        baton_tests::nats::version(),
        SLICE.as_secs(),
        lines.iter().map(|l| format!("- {l}")).collect::<Vec<_>>().join("\n")
    );
    baton_tests::write_benchmark_section(
        "## HTTP API: commands through the whole stack (issue 5)",
        &body,
    );
    println!("wrote docs/benchmarks.md");
    app.stop().await;
}
