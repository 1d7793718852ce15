//! HL7 v2 ADT benchmark (issue 16): sustained messages per second into
//! production mode (PostgreSQL, the JetStream relay and the boards'
//! runner) over one and over 8 MLLP connections, each message acknowledged
//! `AA` only once its events are committed; message-to-ACK p50/p99; then,
//! paced at 500 messages/s, message-to-ACK and message-to-board p99 (the
//! board includes the message's spell version). Beside it, in the same run,
//! the same commands (admit, discharge) through the HTTP command path from
//! 8 connections. Prints the figures and writes its section of
//! docs/benchmarks.md.
//!
//! Each connection owns beds of its own and cycles them: an A01 admits a
//! new visit to the bed, an A03 discharges it, the next visit takes the bed.
//!
//! Run: `cargo run --release -p baton-tests --bin bench-hl7`
//! (needs the PostgreSQL and nats-server that `.ci/run` starts).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

baton_tests::bench_allocator!();

use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_tests::bench::{bed_of, gather, ms, percentile};
use baton_tests::fixtures::nhs_number;
use baton_tests::http::{admission, Stack, TestApp};
use baton_tests::mllp::{ack_code, MllpClient};
use baton_tests::wire::WireClient;
use domain::values::VisitNumber;
use infra::auth::Role;
use infra::commands::ConsistencyToken;
use infra::runner::Boards;
use serde_json::json;

const SLICE: Duration = Duration::from_secs(5);
const CONNECTIONS: u32 = 8;
/// Beds: W1, W2 and X1 have 30 each.
const BEDS: u32 = 90;
const FACILITY: &str = "BENCH";

fn ts(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y%m%d%H%M%S+0000").to_string()
}

/// An ADT message of `trigger` for `visit` in `bed`; `pv1_tail` is what
/// follows PV1-19 (the admit and discharge times, the disposition).
fn adt(trigger: &str, control: &str, visit: &str, bed: u32, pv1_tail: &str) -> Vec<u8> {
    let (ward, label) = bed_of(bed);
    let t = ts(chrono::Utc::now());
    format!(
        "MSH|^~\\&|PAS|{FACILITY}|BATON|DORSET|{t}||ADT^{trigger}^ADT_{trigger}|{control}|P|2.4\r\
         EVN|{trigger}|{t}\r\
         PID|1||{nhs}^^^NHS^NH||Patient{bed}^Alex||19410302|U\r\
         PV1|1|I|{ward}^^{label}||||||||||||||||{visit}^^^{FACILITY}^VN{pv1_tail}\r",
        nhs = nhs_number(bed).digits(),
    )
    .into_bytes()
}

fn a01(control: &str, visit: &str, bed: u32) -> Vec<u8> {
    let admitted = ts(chrono::Utc::now() - chrono::Duration::hours(2));
    adt(
        "A01",
        control,
        visit,
        bed,
        &format!("{}{admitted}", "|".repeat(25)),
    )
}

fn a03(control: &str, visit: &str, bed: u32) -> Vec<u8> {
    let now = chrono::Utc::now();
    let admitted = ts(now - chrono::Duration::hours(2));
    let tail = format!(
        "{}01{}{admitted}|{}",
        "|".repeat(17),
        "|".repeat(8),
        ts(now)
    );
    adt("A03", control, visit, bed, &tail)
}

/// What was measured of one message: message to ACK, and (when paced)
/// message to board.
type Timing = (Duration, Option<Duration>);

/// One connection cycling its beds for `run_for`, at most one message
/// every `pace` (none: as fast as the ACKs come back).
async fn connection(
    port: u16,
    boards: Arc<Boards>,
    label: String,
    beds: Vec<u32>,
    run_for: Duration,
    pace: Option<Duration>,
) -> Vec<Timing> {
    let mut pas = MllpClient::connect(port).await;
    let mut timings = Vec::new();
    let started = Instant::now();
    let mut next = Instant::now();
    let mut round = 0u32;
    while started.elapsed() < run_for {
        for &bed in &beds {
            let visit = format!("{label}R{round}B{bed}");
            let spell =
                infra::hl7::feed::spell_id(FACILITY, &VisitNumber::parse(&visit).unwrap()).unwrap();
            for (version, message) in [
                (1, a01(&format!("{visit}A"), &visit, bed)),
                (2, a03(&format!("{visit}D"), &visit, bed)),
            ] {
                if let Some(pace) = pace {
                    next += pace;
                    if let Some(wait) = next.checked_duration_since(Instant::now()) {
                        tokio::time::sleep(wait).await;
                    }
                }
                let sent = Instant::now();
                let ack = pas.send(&message).await.expect("an acknowledgement");
                assert_eq!(ack_code(&ack), "AA", "{ack}");
                let acked = sent.elapsed();
                let mut on_board = None;
                if pace.is_some() {
                    let token = ConsistencyToken {
                        aggregate_type: "spell".into(),
                        aggregate_id: spell.to_string(),
                        version,
                    };
                    if boards.wait_for(&token, Duration::from_secs(10)).await {
                        on_board = Some(sent.elapsed());
                    }
                }
                timings.push((acked, on_board));
            }
        }
        round += 1;
    }
    timings
}

/// What `connections` connections did, the beds shared out among them:
/// messages per second, and the sorted message-to-ACK and message-to-board
/// times.
struct Fed {
    rate: f64,
    messages: usize,
    acks: Vec<Duration>,
    boards: Vec<Duration>,
}

async fn feed(
    app: &TestApp,
    label: &str,
    connections: u32,
    run_for: Duration,
    pace: Option<Duration>,
) -> Fed {
    let started = Instant::now();
    let tasks = (0..connections).map(|c| {
        let beds: Vec<u32> = (0..BEDS).filter(|b| b % connections == c).collect();
        let label = format!("{label}C{c}");
        let (port, boards) = (app.mllp.unwrap(), app.boards.clone());
        tokio::spawn(async move {
            let timings = connection(port, boards, label, beds, run_for, pace).await;
            (timings.len(), timings)
        })
    });
    let (messages, timings) = gather(tasks).await;
    let rate = messages as f64 / started.elapsed().as_secs_f64();
    let mut acks: Vec<Duration> = timings.iter().map(|t| t.0).collect();
    let mut boards: Vec<Duration> = timings.iter().filter_map(|t| t.1).collect();
    acks.sort_unstable();
    boards.sort_unstable();
    Fed {
        rate,
        messages,
        acks,
        boards,
    }
}

/// The same two commands per bed through the HTTP command path.
async fn http(app: &TestApp, connections: u32) -> (f64, Vec<Duration>) {
    let started = Instant::now();
    let tasks = (0..connections).map(|c| {
        let beds: Vec<u32> = (0..BEDS).filter(|b| b % connections == c).collect();
        let base = app.base.clone();
        let tokens: Vec<(u32, String)> = beds
            .iter()
            .map(|&b| {
                let hospital = if bed_of(b).0 == "X1" { "DCH" } else { "POOLE" };
                (b, app.token(Role::Ward, Some(hospital)))
            })
            .collect();
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut clients = Vec::new();
            for (bed, token) in &tokens {
                clients.push((*bed, WireClient::connect(&base, token).await));
            }
            while started.elapsed() < SLICE {
                for (bed, client) in clients.iter_mut() {
                    let (ward, label_bed) = bed_of(*bed);
                    let sent = Instant::now();
                    let admitted = client
                        .post(
                            "/api/v1/spells",
                            &admission(*bed, ward, label_bed),
                        )
                        .await
                        .ok();
                    latencies.push(sent.elapsed());
                    let id = admitted.json()["id"].as_str().unwrap().to_owned();
                    let sent = Instant::now();
                    client
                        .post(
                            &format!("/api/v1/spells/{id}/discharge"),
                            &json!({ "at": chrono::Utc::now().to_rfc3339(), "destination": "usual_residence" }),
                        )
                        .await
                        .ok();
                    latencies.push(sent.elapsed());
                }
            }
            (latencies.len(), latencies)
        })
    });
    let (n, mut latencies) = gather(tasks).await;
    latencies.sort_unstable();
    (n as f64 / started.elapsed().as_secs_f64(), latencies)
}

#[tokio::main]
async fn main() {
    let load = baton_tests::bench::load_average();
    let app = TestApp::spawn_with(Stack::Production, |c| {
        c.mllp_listen = Some("127.0.0.1:0".into())
    })
    .await;
    app.seed_reference().await;
    // Sustained, over 1 and over 8 connections; HTTP between them.
    let one = feed(&app, "S1", 1, SLICE, None).await;
    let (http_rate, http_latencies) = http(&app, CONNECTIONS).await;
    let eight = feed(&app, "S8", CONNECTIONS, SLICE, None).await;
    // Paced at 500 messages/s over 8 connections.
    let pace = Duration::from_secs_f64(f64::from(CONNECTIONS) / 500.0);
    let paced = feed(&app, "P8", CONNECTIONS, SLICE, Some(pace)).await;
    let (one_rate, eight_rate, paced_rate) = (one.rate, eight.rate, paced.rate);
    let lines = [
        format!(
            "1 connection: {one_rate:.0} messages/s, message to ACK p50 {} ms, p99 {} ms ({} messages)",
            ms(percentile(&one.acks, 0.5)),
            ms(percentile(&one.acks, 0.99)),
            one.messages
        ),
        format!(
            "{CONNECTIONS} connections: {eight_rate:.0} messages/s (target: at least 2,000), message to ACK p50 {} ms, p99 {} ms ({} messages)",
            ms(percentile(&eight.acks, 0.5)),
            ms(percentile(&eight.acks, 0.99)),
            eight.messages
        ),
        format!(
            "the same commands (admit, discharge) through the HTTP command path, {CONNECTIONS} connections of ward tokens in this process: {http_rate:.0} commands/s, p50 {} ms, p99 {} ms",
            ms(percentile(&http_latencies, 0.5)),
            ms(percentile(&http_latencies, 0.99)),
        ),
        format!(
            "paced at 500 messages/s over {CONNECTIONS} connections ({paced_rate:.0}/s achieved): message to ACK p50 {} ms, p99 {} ms (target: p99 under 20 ms); message to board p50 {} ms, p99 {} ms",
            ms(percentile(&paced.acks, 0.5)),
            ms(percentile(&paced.acks, 0.99)),
            ms(percentile(&paced.boards, 0.5)),
            ms(percentile(&paced.boards, 0.99)),
        ),
    ];
    for line in &lines {
        println!("{line}");
    }
    let body = format!(
        "Command: `cargo run --release -p baton-tests --bin bench-hl7`, run on {} (2 cores; \
         PostgreSQL 15, nats-server {} on the same machine, with the MLLP clients in the \
         benchmark's process; load average {} when the run began).\n\n\
         Production mode (PostgreSQL, JetStream relay, boards' runner); every `AA` means the \
         message's events are committed. Each connection cycles beds of its own (W1, W2, X1: 90 \
         in all): an A01 admits a new visit, an A03 discharges it. Slices of {} s.\n\n{}\n",
        chrono::Utc::now().date_naive(),
        baton_tests::nats::version(),
        load,
        SLICE.as_secs(),
        lines
            .iter()
            .map(|l| format!("- {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    baton_tests::write_benchmark_section("## HL7 v2 ADT feed over MLLP (issue 16)", &body);
    println!("wrote docs/benchmarks.md");
    app.stop().await;
}
