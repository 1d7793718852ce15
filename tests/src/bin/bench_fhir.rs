//! FHIR benchmark (issue 17): a team's system moving referrals through
//! their life cycle by updating their `Task` (`PUT /fhir/R4/Task/{id}` with
//! `If-Match`: received, accepted with a planned start, completed), beside
//! the same three commands through the JSON API (acknowledge, accept,
//! start care), in one run, alternating in slices, in production mode
//! (PostgreSQL, the JetStream relay and the boards' runner). Each writer
//! raises a new referral for its own spell (through the JSON API, not
//! counted) and makes its three moves. Prints the figures and writes its
//! section of docs/benchmarks.md.
//!
//! Run: `cargo run --release -p baton-tests --bin bench-fhir`
//! (needs the PostgreSQL and nats-server that `.ci/run` starts).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

baton_tests::bench_allocator!();

use std::time::{Duration, Instant};

use baton_tests::bench::{gather, ms, percentile};
use baton_tests::http::{admission, Stack, TestApp};
use baton_tests::wire::WireClient;
use infra::auth::Role;
use serde_json::json;

const WRITERS: u32 = 16;
const SLICE: Duration = Duration::from_secs(3);
const SLICES: u32 = 3;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Path {
    Fhir,
    Json,
}

/// One writer for a slice: referrals raised for `spell` and moved through
/// their life cycle by `path`; the moves' latencies.
async fn writer(
    base: String,
    ward: String,
    team: String,
    spell: String,
    path: Path,
) -> (usize, Vec<Duration>) {
    let mut nurse = WireClient::connect(&base, &ward).await;
    let mut system = WireClient::connect(&base, &team).await;
    let planned = (chrono::Utc::now().date_naive() + chrono::Duration::days(2)).to_string();
    let mut latencies = Vec::new();
    let started = Instant::now();
    while started.elapsed() < SLICE {
        let raised = nurse
            .post(
                "/api/v1/referrals",
                &json!({ "spell_id": spell, "team": "REAB", "service": "reablement", "pathway": "P1", "summary": "stairs" }),
            )
            .await
            .ok();
        let id = raised.json()["id"].as_str().unwrap().to_owned();
        let moves = match path {
            Path::Fhir => [
                json!({ "resourceType": "Task", "id": id, "status": "received" }),
                json!({ "resourceType": "Task", "id": id, "status": "accepted",
                        "output": [{ "type": { "text": "planned-start" }, "valueDate": planned }] }),
                json!({ "resourceType": "Task", "id": id, "status": "completed" }),
            ],
            Path::Json => [
                json!({}),
                json!({ "planned_start": planned }),
                json!({ "at": chrono::Utc::now().to_rfc3339() }),
            ],
        };
        for (n, body) in moves.iter().enumerate() {
            let sent = Instant::now();
            match path {
                Path::Fhir => {
                    let version = format!("W/\"{}\"", n + 1);
                    system
                        .put_fhir(&format!("/fhir/R4/Task/{id}"), body, &version)
                        .await
                        .ok();
                }
                Path::Json => {
                    let action = ["acknowledge", "accept", "start-care"][n];
                    system
                        .post(&format!("/api/v1/referrals/{id}/{action}"), body)
                        .await
                        .ok();
                }
            }
            latencies.push(sent.elapsed());
        }
    }
    (latencies.len(), latencies)
}

#[tokio::main]
async fn main() {
    let load = baton_tests::bench::load_average();
    let app = TestApp::seeded(Stack::Production).await;
    let nurse = app.as_(Role::Ward, Some("POOLE"));
    let mut spells = Vec::new();
    for w in 0..WRITERS {
        let ward = if w % 2 == 0 { "W1" } else { "W2" };
        let spell = nurse
            .post("/api/v1/spells", admission(w + 1, ward, w / 2 + 1))
            .await
            .expect(201)
            .id();
        spells.push(spell);
    }
    let ward = app.token(Role::Ward, Some("POOLE"));
    let team = app.token(Role::Team, Some("REAB"));
    let mut tallies = [
        (0usize, Duration::ZERO, Vec::new()),
        (0, Duration::ZERO, Vec::new()),
    ];
    for slice in 0..SLICES * 2 {
        let path = if slice % 2 == 0 {
            Path::Fhir
        } else {
            Path::Json
        };
        let started = Instant::now();
        let tasks = spells.iter().map(|spell| {
            tokio::spawn(writer(
                app.base.clone(),
                ward.clone(),
                team.clone(),
                spell.clone(),
                path,
            ))
        });
        let (n, latencies) = gather(tasks).await;
        let tally = &mut tallies[usize::from(path == Path::Json)];
        tally.0 += n;
        tally.1 += started.elapsed();
        tally.2.extend(latencies);
    }
    let mut lines = Vec::new();
    let mut rates = Vec::new();
    for (name, tally) in ["FHIR `PUT Task`", "JSON API commands"]
        .iter()
        .zip(tallies.iter_mut())
    {
        tally.2.sort_unstable();
        let rate = tally.0 as f64 / tally.1.as_secs_f64();
        rates.push(rate);
        lines.push(format!(
            "{name} ({WRITERS} writers): {rate:.0} updates/s (the slices include raising each referral, not counted), p50 {} ms, p99 {} ms ({} updates)",
            ms(percentile(&tally.2, 0.5)),
            ms(percentile(&tally.2, 0.99)),
            tally.0
        ));
    }
    lines.push(format!(
        "FHIR against the JSON API: {:+.1}% throughput",
        (rates[0] / rates[1] - 1.0) * 100.0
    ));
    for line in &lines {
        println!("{line}");
    }
    let body = format!(
        "Command: `cargo run --release -p baton-tests --bin bench-fhir`, run on {} (2 cores; \
         PostgreSQL 15, nats-server {} on the same machine, the clients in the benchmark's \
         process, one kept-alive HTTP/1.1 connection each; load average {} when the run \
         began).\n\n\
         Each writer has a spell of its own; it raises a referral to a team (JSON API, not \
         counted) and the team's system makes the three moves of its life cycle: by `PUT \
         /fhir/R4/Task/{{id}}` with `If-Match` (received, accepted with a planned start, \
         completed), or by the JSON API's acknowledge, accept and start-care. The two \
         alternate in {} slices of {} s each.\n\n{}\n",
        chrono::Utc::now().date_naive(),
        baton_tests::nats::version(),
        load,
        SLICES * 2,
        SLICE.as_secs(),
        lines
            .iter()
            .map(|l| format!("- {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    baton_tests::write_benchmark_section(
        "## FHIR Task updates beside the JSON API (issue 17)",
        &body,
    );
    println!("wrote docs/benchmarks.md");
    app.stop().await;
}
