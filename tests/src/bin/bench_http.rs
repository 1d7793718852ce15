//! HTTP benchmark (issue 5, issue 14): commands per second and latency
//! p50/p99 through the whole HTTP stack (JWT verification, authorisation,
//! strict bodies, the command bus, reservations, outbox, the relay to
//! JetStream and the boards' runner all running) at 64 concurrent clients,
//! beside the bare postgres-es `CqrsFramework` and Baton's command bus
//! doing the same commands in the same run, alternating in slices so all
//! three meet the same disk. Then the latency of an audited read (a spell,
//! with its access-log row written first). Prints a table and writes its
//! section of docs/benchmarks.md.
//!
//! The HTTP clients run in a process of their own, as a user's load would:
//! this binary runs itself again with `--client`, and hands that process
//! one job per slice (a JSON line on its stdin; the answer, a JSON line on
//! its stdout). Its CPU is counted apart from Baton's.
//!
//! Then the floor: the same client process against a server that only
//! answers (hyper in this process, no router, no sign-in, no command), each
//! answer held back for the HTTP path's median latency so that it runs at
//! the same pace. What any HTTP request costs on this machine (loopback
//! TCP, wake-ups, parsing at both ends) is that floor; Baton's own HTTP
//! layer is what the HTTP path costs beyond the bus and the floor.
//!
//! Run: `cargo run --release -p baton-tests --bin bench-http`
//! (needs the PostgreSQL and nats-server that `.ci/run` starts).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

baton_tests::bench_allocator!();

use std::io::Write as _;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_tests::bench::{bare_framework, bed_of, cycle, gather, issued, ms, percentile, BareCqrs};
use baton_tests::cpu::CpuTimes;
use baton_tests::http::{admission, Stack, TestApp};
use baton_tests::postgres::TestDatabase;
use baton_tests::wire::WireClient;
use infra::auth::Role;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const WRITERS: u32 = 64;
const SLICE: Duration = Duration::from_secs(3);
const SLICES: u32 = 6;

/// What the benchmark asks of its client process: one line of JSON each.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
enum Job {
    /// Whole spells for one slice, a client (connection) per token.
    Spells {
        base: String,
        tokens: Vec<String>,
        round_base: u32,
    },
    /// `GET path` for one slice, from `clients` connections.
    Reads {
        base: String,
        token: String,
        path: String,
        clients: u32,
    },
}

/// What the client process did: one line of JSON per job.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Outcome {
    done: usize,
    elapsed_us: u64,
    latencies_us: Vec<u64>,
}

impl Outcome {
    fn of(done: usize, elapsed: Duration, latencies: &[Duration]) -> Self {
        let us = |d: &Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        Self {
            done,
            elapsed_us: us(&elapsed),
            latencies_us: latencies.iter().map(us).collect(),
        }
    }

    fn elapsed(&self) -> Duration {
        Duration::from_micros(self.elapsed_us)
    }

    fn latencies(&self) -> impl Iterator<Item = Duration> + '_ {
        self.latencies_us.iter().copied().map(Duration::from_micros)
    }
}

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

/// Runs one job in the client process.
async fn run_job(job: Job) -> Outcome {
    match job {
        Job::Spells {
            base,
            tokens,
            round_base,
        } => {
            let mut clients = Vec::new();
            for token in &tokens {
                clients.push(WireClient::connect(&base, token).await);
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
            let (done, latencies) = gather(tasks).await;
            Outcome::of(done, started.elapsed(), &latencies)
        }
        Job::Reads {
            base,
            token,
            path,
            clients,
        } => {
            let mut readers = Vec::new();
            for _ in 0..clients {
                readers.push(WireClient::connect(&base, &token).await);
            }
            let started = Instant::now();
            let tasks = readers.into_iter().map(|mut reader| {
                let path = path.clone();
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    while started.elapsed() < SLICE {
                        let t = Instant::now();
                        reader.get(&path).await.ok();
                        latencies.push(t.elapsed());
                    }
                    (latencies.len(), latencies)
                })
            });
            let (done, latencies) = gather(tasks).await;
            Outcome::of(done, started.elapsed(), &latencies)
        }
    }
}

/// The client process: a job per line on stdin, its outcome per line on
/// stdout, until stdin closes. (Tokio's own stdin wants a feature the
/// workspace does not build; a thread reads it instead.)
async fn client_process() {
    let (lines, mut jobs) = tokio::sync::mpsc::channel::<String>(1);
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            if lines.blocking_send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    while let Some(line) = jobs.recv().await {
        let outcome = run_job(serde_json::from_str(&line).unwrap()).await;
        let mut out = std::io::stdout().lock();
        serde_json::to_writer(&mut out, &outcome).unwrap();
        writeln!(out).unwrap();
        out.flush().unwrap();
    }
}

/// The client process, seen from the benchmark.
struct Clients {
    pid: u32,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    child: tokio::process::Child,
}

impl Clients {
    async fn start() -> Self {
        let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
            .arg("--client")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Self {
            pid: child.id().unwrap(),
            stdin: child.stdin.take().unwrap(),
            stdout: BufReader::new(child.stdout.take().unwrap()).lines(),
            child,
        }
    }

    async fn run(&mut self, job: &Job) -> Outcome {
        let mut line = serde_json::to_vec(job).unwrap();
        line.push(b'\n');
        self.stdin.write_all(&line).await.unwrap();
        self.stdin.flush().await.unwrap();
        let answer = self
            .stdout
            .next_line()
            .await
            .unwrap()
            .expect("the client process ended");
        serde_json::from_str(&answer).unwrap()
    }

    async fn stop(self) {
        let Self {
            stdin, mut child, ..
        } = self;
        drop(stdin);
        child.wait().await.unwrap();
    }
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
    let (total, all) = gather(tasks).await;
    (total, started.elapsed(), all)
}

/// What one path did over all its slices.
#[derive(Default)]
struct Tally {
    commands: usize,
    time: Duration,
    latencies: Vec<Duration>,
    cpu: CpuTimes,
}

impl Tally {
    fn add(&mut self, commands: usize, time: Duration, latencies: Vec<Duration>, cpu: CpuTimes) {
        self.commands += commands;
        self.time += time;
        self.latencies.extend(latencies);
        self.cpu = self.cpu.plus(&cpu);
    }

    fn rate(&self) -> f64 {
        self.commands as f64 / self.time.as_secs_f64()
    }

    fn p(&self, quantile: f64) -> String {
        ms(percentile(&self.latencies, quantile))
    }
}

/// The floor: a server that answers every request with a fixed body after
/// `hold`, on hyper's HTTP/1.1 connection in this process. Its address.
async fn floor_server(hold: Duration) -> String {
    use http_body_util::BodyExt as _;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            stream.set_nodelay(true).unwrap();
            let service = hyper::service::service_fn(
                move |request: hyper::Request<hyper::body::Incoming>| async move {
                    // Read the whole request, as any server must.
                    let _ = request.into_body().collect().await;
                    tokio::time::sleep(hold).await;
                    hyper::Response::builder()
                        .status(201)
                        .header("content-type", "application/json")
                        .body(http_body_util::Full::new(bytes::Bytes::from_static(
                            br#"{"id":"S-floor","version":1}"#,
                        )))
                },
            );
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            );
        }
    });
    format!("http://{address}")
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("--client") {
        // One thread for the load, as load generators run (wrk, k6): no
        // waking across threads, so the clients take as little of the two
        // cores from Baton as they can.
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(client_process());
    } else {
        tokio::runtime::Runtime::new().unwrap().block_on(bench());
    }
}

async fn bench() {
    let load = baton_tests::bench::load_average();
    let app = TestApp::spawn(Stack::Production).await;
    app.seed_reference().await;
    let bare_db = TestDatabase::create().await;
    let bare = bare_framework(&bare_db.url, 40).await;
    let mut clients = Clients::start().await;
    let pids = [clients.pid];
    let (mut http, mut bare_tally, mut bus) =
        (Tally::default(), Tally::default(), Tally::default());
    // Each slice runs all three, in an order that rotates, so a drift of
    // the disk or a checkpoint favours none of them.
    for slice in 0..SLICES {
        for turn in 0..3 {
            let before = CpuTimes::now_with_clients(&pids);
            let (tally, (n, t, l)) = match (slice + turn) % 3 {
                0 => {
                    let target = Target::Bus(app.bus.clone());
                    let label = format!("bus{slice}");
                    (&mut bus, drive_commands(&target, &label).await)
                }
                1 => {
                    let target = Target::Bare(bare.clone());
                    let label = format!("bare{slice}");
                    (&mut bare_tally, drive_commands(&target, &label).await)
                }
                _ => {
                    let tokens = (0..WRITERS)
                        .map(|w| {
                            let hospital = if bed_of(w).0 == "X1" { "DCH" } else { "POOLE" };
                            app.token(Role::Ward, Some(hospital))
                        })
                        .collect();
                    let job = Job::Spells {
                        base: app.base.clone(),
                        tokens,
                        round_base: slice * 10_000,
                    };
                    let outcome = clients.run(&job).await;
                    let l = outcome.latencies().collect();
                    (&mut http, (outcome.done, outcome.elapsed(), l))
                }
            };
            tally.add(n, t, l, CpuTimes::now_with_clients(&pids).since(&before));
        }
    }
    let cpu_line = format!(
        "CPU per command (from /proc; *this process* is Baton, and for the bus and bare also \
         their writers; *clients* is the HTTP clients' own process): HTTP {}; bus {}; bare {}",
        http.cpu.per_command(http.commands),
        bus.cpu.per_command(bus.commands),
        bare_tally.cpu.per_command(bare_tally.commands)
    );
    for tally in [&mut http, &mut bare_tally, &mut bus] {
        tally.latencies.sort_unstable();
    }
    let (http_rate, bare_rate, bus_rate) = (http.rate(), bare_tally.rate(), bus.rate());
    // The floor, at the HTTP path's pace: two slices.
    let hold = percentile(&http.latencies, 0.5);
    let floor_base = floor_server(hold).await;
    let mut floor = Tally::default();
    for slice in 0..2 {
        let before = CpuTimes::now_with_clients(&pids);
        let outcome = clients
            .run(&Job::Spells {
                base: floor_base.clone(),
                tokens: (0..WRITERS).map(|w| format!("floor-{w}")).collect(),
                round_base: 90_000 + slice * 10_000,
            })
            .await;
        let l = outcome.latencies().collect();
        floor.add(
            outcome.done,
            outcome.elapsed(),
            l,
            CpuTimes::now_with_clients(&pids).since(&before),
        );
    }
    let (http_cpu, bus_cpu, floor_cpu) = (
        http.cpu.per_command(http.commands),
        bus.cpu.per_command(bus.commands),
        floor.cpu.per_command(floor.commands),
    );
    let floor_line = format!(
        "HTTP floor (the same client process against a server in this process that only answers, \
         each answer held {} ms, the HTTP path's median): {:.0} requests/s, CPU per request {floor_cpu}; \
         the HTTP path's CPU per command beyond the bus: {:.0} µs (Baton's process {:.0}, clients {:.0}), \
         of which the floor {:.0} µs (server side {:.0}, clients {:.0}) and Baton's own HTTP layer the rest, {:.0} µs",
        ms(hold),
        floor.rate(),
        http_cpu.total() - bus_cpu.total(),
        http_cpu.this - bus_cpu.this,
        http_cpu.clients,
        floor_cpu.total(),
        floor_cpu.this,
        floor_cpu.clients,
        (http_cpu.total() - bus_cpu.total()) - floor_cpu.total(),
    );
    let cost = (1.0 - http_rate / bare_rate) * 100.0;
    // Audited reads: one spell each, 64 clients, one slice.
    let ward = app.token(Role::Ward, Some("POOLE"));
    let spell = WireClient::connect(&app.base, &ward)
        .await
        .post("/api/v1/spells", &admission(99_999, "W1", 30))
        .await
        .ok();
    let path = format!("/api/v1/spells/{}", spell.json()["id"].as_str().unwrap());
    let read = clients
        .run(&Job::Reads {
            base: app.base.clone(),
            token: ward,
            path,
            clients: WRITERS,
        })
        .await;
    clients.stop().await;
    let read_rate = read.done as f64 / read.elapsed().as_secs_f64();
    let mut reads: Vec<Duration> = read.latencies().collect();
    reads.sort_unstable();
    let lines = [
        format!(
            "HTTP ({WRITERS} clients): {http_rate:.0} commands/s, latency p50 {} ms, p99 {} ms ({} commands)",
            http.p(0.5),
            http.p(0.99),
            http.commands
        ),
        format!(
            "bare postgres-es ({WRITERS} writers): {bare_rate:.0} commands/s, latency p50 {} ms, p99 {} ms",
            bare_tally.p(0.5),
            bare_tally.p(0.99),
        ),
        format!(
            "Baton's command bus without HTTP ({WRITERS} writers, same app, relay and runner running): {bus_rate:.0} commands/s, latency p50 {} ms, p99 {} ms",
            bus.p(0.5),
            bus.p(0.99),
        ),
        format!("HTTP against bare: {cost:.1}% less throughput (target: under 10%); of which the HTTP layer (loopback TCP, HTTP parsing, JWT, policy, JSON, request ids and metrics; no idempotency keys are sent, and no log subscriber is installed, so the request log line is not written) against the bus: {:.1}%, and the write side (reservations, outbox, relay, boards) against bare: {:.1}%",
            (1.0 - http_rate / bus_rate) * 100.0, (1.0 - bus_rate / bare_rate) * 100.0),
        cpu_line,
        floor_line,
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
         nats-server {} on the same machine; the HTTP clients run in a process of their own, as a \
         user's load would, on the same two cores; each client is one kept-alive HTTP/1.1 connection \
         on hyper's client connection, `tests/src/wire.rs`; load average {} when the run began).\n\n\
         Each client records whole spells over HTTP (admit, EDD, criteria review, pathway, delay, \
         resolve, EDD, pathway, discharge: 9 commands) with a ward token, on its own bed; Baton runs \
         in production mode (PostgreSQL, JetStream relay, boards' runner). The bare figure is \
         postgres-es's `CqrsFramework` doing the same commands on a plain events table (no HTTP, \
         auth, reservations or outbox), and Baton's command bus called directly; the three alternate \
         in {SLICES} slices of {} s each, in an order that rotates from slice to slice.\n\n{}\n",
        chrono::Utc::now().date_naive(),
        baton_tests::nats::version(),
        load,
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
