//! Chaos: real `baton serve` processes in production mode (one, or two
//! sharing the database and stream) on a private PostgreSQL
//! (`baton_tests::pg_instance`) and a three-node JetStream cluster
//! (`baton_tests::cluster`), under HTTP load of spell and referral commands
//! sent with idempotency keys and retried until acknowledged, while, round
//! after round:
//!
//! 1. the relay leader's Baton is SIGKILLed and started again;
//! 2. the stream leader's nats node is SIGKILLed, then started again;
//! 3. the (new) stream leader's node is SIGSTOPped for 5 s (with two
//!    Batons, the one not leading the relay is restarted meanwhile);
//! 4. PostgreSQL crashes (`pg_ctl stop -m immediate`), a Baton is started
//!    while it is down (it must come up and answer `/readyz` 503) and
//!    PostgreSQL comes back (that Baton must become ready by itself);
//! 5. all three nats nodes are SIGKILLed (or SIGSTOPped, by turns), a Baton
//!    is restarted while they are down, and they come back.
//!
//! After each fault every process must be ready again within 20 s, and
//! faults that touch only NATS must leave the relay leadership where it
//! was. Afterwards the outbox must drain, every acknowledged command must
//! be in the store exactly once, the store's events on the stream exactly
//! once and in order, and every process's boards (at the stream head) must
//! equal a fold of the stream, ward by ward and team by team.
//!
//! CI runs one round with 4 clients (about a minute for both tests, on 2
//! cores). The long form is the same test with knobs:
//!
//! ```sh
//! BATON_CHAOS_SECONDS=60 BATON_CHAOS_CLIENTS=8 \
//!   cargo test --release -p api --test chaos -- --nocapture
//! ```
//!
//! - `BATON_CHAOS_SECONDS` (default 0): keep repeating the fault schedule
//!   until this many seconds of load have passed (at least one round).
//! - `BATON_CHAOS_CLIENTS` (default 4): concurrent HTTP clients.
//! - `BATON_CHAOS_HOLD_MS` (default 2000): how long each outage lasts.
//! - `BATON_CHAOS_KEEP_LOGS` (set to anything): keep the processes' logs
//!   even when nothing was found.
//! - `BATON_TEST_NATS_SERVER`, `BATON_TEST_PG_BIN`: the binaries.
//!
//! A broken guarantee does not stop the run: it is recorded as a finding,
//! the run goes on to check everything else, and the test fails at the end
//! listing every finding (and keeps the processes' logs).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)] // test code

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use baton_tests::cluster::{NatsCluster, NODES};
use baton_tests::pg_instance::PgInstance;
use chrono::Utc;
use domain::reference::Ward;
use domain::values::{HospitalCode, TeamCode, Text, WardCode};
use futures::StreamExt;
use infra::auth::{Principal, Role};
use infra::feed::{Feed, FeedEvent};
use infra::outbox;
use infra::store::Database;
use infra::stream::{StreamSettings, Target};
use serde_json::{json, Value};
use tokio::time::Instant;

/// Wards of the reference data: code, hospital.
const WARDS: [(&str, &str); 3] = [("W1", "POOLE"), ("W2", "POOLE"), ("X1", "DCH")];
/// Beds per ward.
const BEDS: u16 = 30;
/// Teams of the reference data: code, the service clients refer for.
const TEAMS: [(&str, &str); 2] = [("REAB", "reablement"), ("DN", "district_nursing")];
/// Beds each client owns (so clients never compete for a bed).
const BEDS_PER_CLIENT: usize = 8;
/// How long one command may take, retries included, before it counts as
/// never acknowledged.
const COMMAND_DEADLINE: Duration = Duration::from_secs(120);
/// How long a recovery may take before it counts as not having happened.
const RECOVERY: Duration = Duration::from_secs(60);
/// How long after a fault is over (the stream has a leader again, every
/// process runs) each process must be ready again: its boards following
/// the stream. Catching up takes a second or two; a feed that silently
/// stopped delivering after a failover shows as much longer.
const READY_AGAIN: Duration = Duration::from_secs(20);
/// How long the relay leadership is watched while all of NATS is down: past
/// the relay's 5 s lease, so a follower that would unseat a leader stalled
/// on NATS gets the chance to.
const LEADERSHIP_WATCH: Duration = Duration::from_secs(7);
/// At least this long a paused node stays paused: past JetStream's election
/// timeouts, so the leaderships it held move to the others (a failover).
const NODE_PAUSE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
struct Knobs {
    seconds: u64,
    clients: usize,
    hold: Duration,
}

impl Knobs {
    fn from_env() -> Self {
        let number = |name: &str, default: u64| -> u64 {
            match std::env::var(name) {
                Ok(v) => v
                    .parse()
                    .unwrap_or_else(|_| panic!("{name} must be a whole number, not {v:?}")),
                Err(_) => default,
            }
        };
        Self {
            seconds: number("BATON_CHAOS_SECONDS", 0),
            clients: number("BATON_CHAOS_CLIENTS", 4).max(1) as usize,
            hold: Duration::from_millis(number("BATON_CHAOS_HOLD_MS", 2000)),
        }
    }
}

/// Broken guarantees, collected so one run reports all of them.
#[derive(Debug, Default)]
struct Findings {
    /// Which scenario, in progress lines.
    tag: String,
    found: Mutex<Vec<String>>,
}

impl Findings {
    fn add(&self, finding: impl Into<String>) {
        let finding = finding.into();
        eprintln!("{} FINDING: {finding}", self.tag);
        self.found.lock().unwrap().push(finding);
    }

    fn all(&self) -> Vec<String> {
        self.found.lock().unwrap().clone()
    }
}

// ---------------------------------------------------------------------------
// Baton processes

/// One `baton serve` child process slot: killed and started again under
/// the same settings and on the same port, as behind a load balancer.
/// (Its port is fixed rather than 0 because a Baton that cannot reach
/// PostgreSQL listens, answering 503, before it logs its address.)
#[derive(Debug)]
struct Baton {
    slot: usize,
    port: u16,
    envs: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
    /// `http://127.0.0.1:<port>` while the process runs; clients read it.
    base: Arc<RwLock<Option<String>>>,
    starts: usize,
}

impl Baton {
    fn new(slot: usize, envs: Vec<(String, String)>, log: PathBuf) -> Self {
        Self {
            slot,
            port: baton_tests::cluster::restartable_port(),
            envs,
            log,
            child: None,
            base: Arc::new(RwLock::new(None)),
            starts: 0,
        }
    }

    fn log_len(&self) -> u64 {
        std::fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0)
    }

    /// Starts the process; returns the log offset its output begins at.
    fn spawn(&mut self) -> u64 {
        assert!(self.child.is_none(), "Baton {} already runs", self.slot);
        let offset = self.log_len();
        let child = baton_tests::serve_command(env!("CARGO_BIN_EXE_baton"), &self.log)
            .env("BATON_LOG_FORMAT", "json")
            .env("BATON_LISTEN", format!("127.0.0.1:{}", self.port))
            .envs(self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        self.starts += 1;
        *self.base.write().unwrap() = Some(format!("http://127.0.0.1:{}", self.port));
        offset
    }

    /// Waits until the process answers `/healthz`; an error says why not
    /// (it exited, or took too long) with its log's tail.
    async fn wait_up(
        &mut self,
        http: &reqwest::Client,
        offset: u64,
        within: Duration,
    ) -> Result<(), String> {
        let deadline = Instant::now() + within;
        let url = format!("http://127.0.0.1:{}/healthz", self.port);
        loop {
            if let Some(child) = &mut self.child {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    *self.base.write().unwrap() = None;
                    return Err(format!(
                        "Baton {} exited ({status}); its log ends:\n{}",
                        self.slot,
                        self.log_tail(offset, 15)
                    ));
                }
            }
            let answered = http
                .get(&url)
                .timeout(Duration::from_secs(1))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if answered {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "Baton {} did not answer /healthz within {within:?}; its log ends:\n{}",
                    self.slot,
                    self.log_tail(offset, 15)
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn start(&mut self, http: &reqwest::Client, within: Duration) -> Result<(), String> {
        let offset = self.spawn();
        self.wait_up(http, offset, within).await
    }

    fn log_since(&self, offset: u64) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(&self.log) {
            if file.seek(SeekFrom::Start(offset)).is_ok() {
                let _ = file.read_to_string(&mut text);
            }
        }
        text
    }

    fn log_tail(&self, offset: u64, lines: usize) -> String {
        let text = self.log_since(offset);
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// How often this slot's processes logged losing the relay leadership.
    fn leadership_losses(&self) -> usize {
        self.log_since(0)
            .lines()
            .filter(|l| l.contains("outbox relay lost its leadership"))
            .count()
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn base(&self) -> Option<String> {
        self.base.read().unwrap().clone()
    }

    /// SIGKILL: no shutdown code runs.
    fn kill(&mut self) {
        *self.base.write().unwrap() = None;
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Baton {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---------------------------------------------------------------------------
// Load

/// What a command's answer acknowledged.
#[derive(Debug, Clone)]
struct Ack {
    kind: &'static str,
    what: &'static str,
    id: String,
    version: u64,
    token: String,
}

#[derive(Debug)]
struct Tokens {
    admin: String,
    ward: BTreeMap<&'static str, String>,
    team: BTreeMap<&'static str, String>,
}

impl Tokens {
    fn mint(data_dir: &std::path::Path) -> Self {
        let sign = |role: Role, scope: Option<&str>| {
            let principal = Principal {
                sub: format!("chaos-{role}-{}", scope.unwrap_or("all")),
                name: format!("Chaos {role}"),
                role,
                hospital: scope.filter(|_| role == Role::Ward).map(str::to_owned),
                trust: None,
                team: scope.filter(|_| role == Role::Team).map(str::to_owned),
                hub: None,
            };
            infra::auth::sign_local(data_dir, &principal, Duration::from_secs(6 * 3600)).unwrap()
        };
        Self {
            admin: sign(Role::Admin, None),
            ward: ["POOLE", "DCH"]
                .into_iter()
                .map(|h| (h, sign(Role::Ward, Some(h))))
                .collect(),
            team: TEAMS
                .iter()
                .map(|(t, _)| (*t, sign(Role::Team, Some(t))))
                .collect(),
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    attempts: AtomicU64,
    retries: AtomicU64,
}

/// The clients' shared state: where the Batons are, what was acknowledged.
#[derive(Debug)]
struct Load {
    bases: Vec<Arc<RwLock<Option<String>>>>,
    http: reqwest::Client,
    tokens: Tokens,
    acks: Mutex<Vec<Ack>>,
    acked: AtomicU64,
    refused: AtomicU64,
    gave_up: AtomicU64,
    counters: Counters,
    findings: Arc<Findings>,
    stop: AtomicBool,
}

impl Load {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// The Baton to try on `attempt`: the client's own first, then the
    /// others in turn, as a load balancer would.
    fn pick(&self, client: usize, attempt: usize) -> Option<String> {
        let n = self.bases.len();
        (0..n)
            .map(|i| (client + attempt + i) % n)
            .find_map(|i| self.bases[i].read().unwrap().clone())
    }

    /// Sends a command with an idempotency key, retrying failures, 5xx and
    /// timeouts with the same key until it is acknowledged (2xx) or refused
    /// (4xx). Nothing is sent once the load has stopped; a command sent is
    /// seen through. `None` for anything but an acknowledgement (recorded
    /// as a finding: every command of this workload is valid).
    async fn run(
        &self,
        client: usize,
        token: &str,
        kind: &'static str,
        what: &'static str,
        path: String,
        body: Value,
    ) -> Option<Ack> {
        if self.stopped() {
            return None;
        }
        let key = uuid::Uuid::new_v4().to_string();
        let deadline = Instant::now() + COMMAND_DEADLINE;
        let mut last = String::from("never sent");
        for attempt in 0usize.. {
            if Instant::now() >= deadline {
                self.gave_up.fetch_add(1, Ordering::Relaxed);
                self.findings.add(format!(
                    "{what} (POST {path}) was not acknowledged within {COMMAND_DEADLINE:?}: {last}"
                ));
                return None;
            }
            if attempt > 0 {
                self.counters.retries.fetch_add(1, Ordering::Relaxed);
                // A retry's pause, not a wait for a condition.
                let pause = (50 * attempt as u64).min(500);
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            let Some(base) = self.pick(client, attempt) else {
                last = "no Baton process was up".into();
                continue;
            };
            self.counters.attempts.fetch_add(1, Ordering::Relaxed);
            let sent = self
                .http
                .post(format!("{base}{path}"))
                .bearer_auth(token)
                .header("Idempotency-Key", &key)
                .json(&body)
                .send()
                .await;
            let response = match sent {
                Ok(r) => r,
                Err(e) => {
                    last = format!("{base}: {e}");
                    continue;
                }
            };
            let status = response.status().as_u16();
            let bytes = match response.bytes().await {
                Ok(b) => b,
                Err(e) => {
                    last = format!("{base}: {status}, body lost: {e}");
                    continue;
                }
            };
            let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            match status {
                200..=299 => {
                    let (Some(id), Some(version), Some(token)) = (
                        answer["id"].as_str(),
                        answer["version"].as_u64(),
                        answer["consistency_token"].as_str(),
                    ) else {
                        self.findings.add(format!(
                            "{what} (POST {path}) was acknowledged with {status} but not as the \
                             contract says: {answer}"
                        ));
                        return None;
                    };
                    let ack = Ack {
                        kind,
                        what,
                        id: id.to_owned(),
                        version,
                        token: token.to_owned(),
                    };
                    self.acks.lock().unwrap().push(ack.clone());
                    self.acked.fetch_add(1, Ordering::Relaxed);
                    return Some(ack);
                }
                408 | 429 | 500..=599 => {
                    last = format!("{base}: {status} {answer}");
                }
                _ => {
                    self.refused.fetch_add(1, Ordering::Relaxed);
                    self.findings.add(format!(
                        "{what} (POST {path}) was refused with {status} after {} attempt(s) \
                         (every command of this workload is valid, so a retry may have been \
                         recorded as a new command): {answer}",
                        attempt + 1
                    ));
                    return None;
                }
            }
        }
        None
    }
}

/// An open spell a client left in a bed, with its accepted referral.
#[derive(Debug, Clone)]
struct Open {
    spell: String,
    referral: String,
    team: &'static str,
}

/// One client: owns some beds and, bed after bed, admits a patient, sets
/// an EDD, records a review and a pathway, refers them to a team which
/// acknowledges and accepts; every other patient is taken on and
/// discharged at once, the rest stay until the bed comes round again.
async fn client(load: Arc<Load>, c: usize, beds: Vec<(&'static str, &'static str, u16)>) {
    let mut occupants: Vec<Option<Open>> = vec![None; beds.len()];
    let mut poisoned = vec![false; beds.len()];
    let mut episode: u32 = 0;
    while !load.stopped() {
        if poisoned.iter().all(|p| *p) {
            return;
        }
        for (i, (ward, hospital, bed)) in beds.iter().enumerate() {
            if load.stopped() {
                return;
            }
            if poisoned[i] {
                continue;
            }
            let ward_token = load.tokens.ward[hospital].clone();
            if let Some(open) = occupants[i].take() {
                if finish(&load, c, &ward_token, &open).await.is_none() {
                    poisoned[i] = !load.stopped();
                    continue;
                }
            }
            episode += 1;
            let n = (c as u32 + 1) * 1_000_000 + episode;
            let team = TEAMS[(c + episode as usize) % TEAMS.len()];
            match admit_and_refer(&load, c, &ward_token, ward, *bed, n, team).await {
                Some(open) if episode.is_multiple_of(2) => {
                    if finish(&load, c, &ward_token, &open).await.is_none() {
                        poisoned[i] = !load.stopped();
                    }
                }
                Some(open) => occupants[i] = Some(open),
                None => poisoned[i] = !load.stopped(),
            }
        }
    }
}

async fn admit_and_refer(
    load: &Load,
    c: usize,
    ward_token: &str,
    ward: &str,
    bed: u16,
    n: u32,
    (team, service): (&'static str, &'static str),
) -> Option<Open> {
    let now = Utc::now();
    let mut body = baton_tests::http::admission(n, ward, u32::from(bed));
    body["family_name"] = json!(format!("Chaos{n}"));
    let admitted = load
        .run(
            c,
            ward_token,
            "spell",
            "admit",
            "/api/v1/spells".into(),
            body,
        )
        .await?;
    let spell = admitted.id;
    let s = |tail: &str| format!("/api/v1/spells/{spell}/{tail}");
    let edd = now.date_naive() + chrono::Duration::days(1 + i64::from(n % 5));
    load.run(
        c,
        ward_token,
        "spell",
        "set EDD",
        s("expected-discharge-date"),
        json!({ "date": edd }),
    )
    .await?;
    load.run(
        c,
        ward_token,
        "spell",
        "review",
        s("criteria-review"),
        json!({
            "meets_criteria_to_reside": false,
            "at": (Utc::now() - chrono::Duration::minutes(1)).to_rfc3339(),
        }),
    )
    .await?;
    load.run(
        c,
        ward_token,
        "spell",
        "set pathway",
        s("pathway"),
        json!({ "pathway": "P1" }),
    )
    .await?;
    let raised = load
        .run(
            c,
            ward_token,
            "referral",
            "raise referral",
            "/api/v1/referrals".into(),
            json!({
                "spell_id": spell,
                "team": team,
                "service": service,
                "pathway": "P1",
                "summary": "Needs support at home after discharge",
            }),
        )
        .await?;
    let referral = raised.id;
    let team_token = &load.tokens.team[team];
    let r = |tail: &str| format!("/api/v1/referrals/{referral}/{tail}");
    load.run(
        c,
        team_token,
        "referral",
        "acknowledge",
        r("acknowledge"),
        json!({}),
    )
    .await?;
    load.run(
        c,
        team_token,
        "referral",
        "accept",
        r("accept"),
        json!({ "planned_start": Utc::now().date_naive() + chrono::Duration::days(1) }),
    )
    .await?;
    Some(Open {
        spell,
        referral,
        team,
    })
}

async fn finish(load: &Load, c: usize, ward_token: &str, open: &Open) -> Option<()> {
    let team_token = &load.tokens.team[open.team];
    load.run(
        c,
        team_token,
        "referral",
        "start care",
        format!("/api/v1/referrals/{}/start-care", open.referral),
        json!({ "at": Utc::now().to_rfc3339() }),
    )
    .await?;
    load.run(
        c,
        ward_token,
        "spell",
        "discharge",
        format!("/api/v1/spells/{}/discharge", open.spell),
        json!({ "at": Utc::now().to_rfc3339(), "destination": "usual_residence_with_support" }),
    )
    .await?;
    Some(())
}

// ---------------------------------------------------------------------------
// The world: cluster, database, processes, faults

type Owner = (Option<String>, Option<chrono::DateTime<Utc>>);

/// The relay leadership as seen at one moment.
#[derive(Debug, Clone)]
struct Leadership {
    /// Who leads and since when, if anyone does.
    owner: Option<Owner>,
    /// How many times the processes have logged losing it, in all.
    losses: usize,
}

/// (Fields drop in order: the Baton processes are killed before NATS and
/// PostgreSQL go.)
struct World {
    batons: Vec<Baton>,
    knobs: Knobs,
    cluster: NatsCluster,
    pg: PgInstance,
    db: Database,
    stream: String,
    load: Arc<Load>,
    findings: Arc<Findings>,
    faults: Vec<String>,
    injected: usize,
    rounds: usize,
    started: Instant,
    load_started: Instant,
    http: reqwest::Client,
    /// The shared data directory (signing key) and the processes' logs.
    data_dir: Option<tempfile::TempDir>,
}

impl World {
    async fn start(processes: usize, knobs: Knobs) -> Self {
        let started = Instant::now();
        let (cluster, pg) = tokio::join!(NatsCluster::start(), PgInstance::start());
        let db_url = pg.create_database("baton").await;
        let db = Database::postgres(&db_url, 4).unwrap();
        let stream = format!("CHAOS_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let data_dir = tempfile::tempdir().unwrap();
        // The key is created before any process starts, so all share it.
        let tokens = Tokens::mint(data_dir.path());
        let envs = vec![
            ("BATON_DATABASE_URL".to_owned(), db_url.clone()),
            ("BATON_NATS_URL".to_owned(), cluster.urls()),
            ("BATON_STREAM_REPLICAS".to_owned(), "3".to_owned()),
            ("BATON_STREAM".to_owned(), stream.clone()),
            (
                "BATON_DATA_DIR".to_owned(),
                data_dir.path().display().to_string(),
            ),
        ];
        let batons: Vec<Baton> = (0..processes)
            .map(|slot| {
                Baton::new(
                    slot,
                    envs.clone(),
                    data_dir.path().join(format!("baton-{slot}.log")),
                )
            })
            .collect();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let findings = Arc::new(Findings {
            tag: format!("chaos[{processes} Baton]"),
            found: Mutex::default(),
        });
        let load = Arc::new(Load {
            bases: batons.iter().map(|b| b.base.clone()).collect(),
            http: http.clone(),
            tokens,
            acks: Mutex::new(Vec::new()),
            acked: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            gave_up: AtomicU64::new(0),
            counters: Counters::default(),
            findings: findings.clone(),
            stop: AtomicBool::new(false),
        });
        let mut world = Self {
            knobs,
            cluster,
            pg,
            db,
            stream,
            batons,
            load,
            findings,
            faults: Vec::new(),
            injected: 0,
            rounds: 0,
            started,
            load_started: started,
            http,
            data_dir: Some(data_dir),
        };
        world.must_start(0).await;
        world.seed_reference().await;
        for slot in 1..processes {
            world.must_start(slot).await;
        }
        for slot in 0..processes {
            world
                .wait_ready(slot, "after starting", Duration::from_secs(60))
                .await;
        }
        world
    }

    fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Records a step of the schedule that injects a fault.
    fn fault(&mut self, what: impl Into<String>) {
        self.injected += 1;
        self.step(what);
    }

    /// Records a step of the schedule (a fault's end, too).
    fn step(&mut self, what: impl Into<String>) {
        let what = what.into();
        eprintln!("{} {:6.1}s: {what}", self.findings.tag, self.elapsed());
        self.faults.push(format!("{:6.1}s  {what}", self.elapsed()));
    }

    /// Progress, on stderr only (see it with `--nocapture`).
    fn note(&self, what: impl std::fmt::Display) {
        eprintln!("{} {:6.1}s:   ({what})", self.findings.tag, self.elapsed());
    }

    /// Starts a slot and fails the test if it cannot come up (in
    /// conditions where it must).
    async fn must_start(&mut self, slot: usize) {
        if let Err(e) = self.batons[slot]
            .start(&self.http, Duration::from_secs(30))
            .await
        {
            panic!("{e}");
        }
    }

    async fn seed_reference(&self) {
        let admin = &self.load.tokens.admin;
        let mut puts: Vec<(String, Value)> = vec![
            (
                "/api/v1/hospitals/POOLE".into(),
                json!({ "name": "Poole Hospital" }),
            ),
            (
                "/api/v1/hospitals/DCH".into(),
                json!({ "name": "Dorset County Hospital" }),
            ),
        ];
        for (code, hospital) in WARDS {
            puts.push((
                format!("/api/v1/wards/{code}"),
                json!({ "name": format!("Ward {code}"), "hospital": hospital, "beds": BEDS }),
            ));
        }
        puts.push((
            "/api/v1/teams/REAB".into(),
            json!({ "name": "Reablement East", "services": ["reablement", "home_care"],
                    "response_sla_minutes": 120 }),
        ));
        puts.push((
            "/api/v1/teams/DN".into(),
            json!({ "name": "District Nursing", "services": ["district_nursing"],
                    "response_sla_minutes": 240 }),
        ));
        let base = self.batons[0].base().unwrap();
        for (path, body) in puts {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let last = match self
                    .http
                    .put(format!("{base}{path}"))
                    .bearer_auth(admin)
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => break,
                    Ok(r) => format!("{} {}", r.status(), r.text().await.unwrap_or_default()),
                    Err(e) => e.to_string(),
                };
                assert!(
                    Instant::now() < deadline,
                    "PUT {path} was not accepted: {last}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// `/readyz` of a slot, as (status, body); `None` when it did not answer.
    async fn readyz(&self, slot: usize) -> Option<(u16, Value)> {
        let base = self.batons[slot].base()?;
        let response = self.http.get(format!("{base}/readyz")).send().await.ok()?;
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        Some((status, body))
    }

    /// Waits until a slot reports ready; a finding otherwise.
    async fn wait_ready(&self, slot: usize, when: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let mut last = None;
        loop {
            let answer = self.readyz(slot).await;
            if matches!(answer, Some((200, _))) {
                return true;
            }
            last = answer.or(last);
            if Instant::now() >= deadline {
                self.findings.add(format!(
                    "Baton {slot} was not ready within {within:?} {when}; /readyz said {last:?}"
                ));
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The slot whose process holds the relay leadership now, if known.
    async fn relay_leader(&self) -> Option<usize> {
        let owner = outbox::status(&self.db).await.ok()?.relay_owner?;
        let pid: u32 = owner.split(':').nth(1)?.parse().ok()?;
        self.batons.iter().position(|b| b.pid() == Some(pid))
    }

    /// After a fault: the stream has a leader again, every process is up
    /// and ready (its boards within `/readyz`'s lag of the stream), and
    /// commands are being acknowledged again.
    async fn settle(&self, after: &str) {
        if let Err(e) = self.cluster.wait_for_stream(&self.stream, RECOVERY).await {
            self.findings
                .add(format!("the stream did not recover after {after}: {e}"));
        }
        self.note("the stream has a leader");
        for slot in 0..self.batons.len() {
            let base = self.batons[slot].base();
            let healthy = async {
                let Some(base) = &base else { return false };
                matches!(self.http.get(format!("{base}/healthz")).send().await,
                    Ok(r) if r.status().is_success())
            };
            if !healthy.await {
                self.findings
                    .add(format!("Baton {slot} was not alive after {after}"));
            }
        }
        let since = Instant::now();
        for slot in 0..self.batons.len() {
            self.wait_ready(slot, &format!("after {after}"), READY_AGAIN)
                .await;
        }
        self.note(format!(
            "every Baton is ready, {:.1}s after the stream",
            since.elapsed().as_secs_f64()
        ));
        let before = self.load.acked.load(Ordering::Relaxed);
        let wanted = self.knobs.clients as u64;
        let deadline = Instant::now() + RECOVERY;
        while self.load.acked.load(Ordering::Relaxed) < before + wanted {
            if Instant::now() >= deadline {
                self.findings.add(format!(
                    "fewer than {wanted} commands were acknowledged in the {RECOVERY:?} after \
                     {after}"
                ));
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Holds an outage for its scheduled time (a schedule, not a wait for
    /// a condition).
    async fn hold(&self) {
        tokio::time::sleep(self.knobs.hold).await;
    }

    /// SIGKILLs the relay leader's process and starts it again.
    async fn kill_relay_leader(&mut self) {
        let slot = self.relay_leader().await.unwrap_or(0);
        self.fault(format!(
            "SIGKILL Baton {slot} (the relay leader) and start it again"
        ));
        self.batons[slot].kill();
        self.must_start(slot).await;
        self.wait_ready(slot, "after a restart", RECOVERY).await;
        self.settle("a Baton restart").await;
    }

    /// The node leading the stream (where a failover hurts), else `other`.
    async fn stream_leader_or(&self, other: usize) -> (usize, &'static str) {
        match self.cluster.stream_leader(&self.stream).await {
            Some(node) => (node, " (the stream leader)"),
            None => (other, ""),
        }
    }

    /// Who leads the relay and since when (a leadership taken again, even
    /// by the same process, changes `owner_since`), and how many times the
    /// processes have logged losing it.
    async fn leadership(&self) -> Leadership {
        let status = outbox::status(&self.db).await.ok();
        Leadership {
            owner: status
                .map(|s| (s.relay_owner, s.relay_owner_since))
                .filter(|(owner, _)| owner.is_some()),
            losses: self.batons.iter().map(Baton::leadership_losses).sum(),
        }
    }

    /// A fault that touched only NATS (and no relay leader) must leave the
    /// relay leadership where it was: the leader still reaches PostgreSQL.
    async fn leadership_kept(&self, before: &Leadership, during: &str) {
        let after = self.leadership().await;
        if before.owner.is_some() && (after.owner != before.owner || after.losses > before.losses) {
            self.findings.add(format!(
                "the relay leadership changed hands during {during}, though the leader's process \
                 was not touched and PostgreSQL was up: (owner, since) {:?} before, {:?} after; \
                 {} loss(es) of leadership logged meanwhile",
                before.owner,
                after.owner,
                after.losses.saturating_sub(before.losses)
            ));
        }
    }

    async fn kill_nats_node(&mut self, (node, which): (usize, &str)) {
        let before = self.leadership().await;
        self.fault(format!("SIGKILL nats node {node}{which}"));
        self.cluster.kill(node);
        self.hold().await;
        self.step(format!("start nats node {node} again"));
        self.cluster.restart(node).await;
        self.settle("a nats node's crash").await;
        self.leadership_kept(&before, "a nats node's crash").await;
    }

    async fn pause_nats_node(&mut self, (node, which): (usize, &str)) {
        let leader = self.relay_leader().await;
        let mut before = self.leadership().await;
        if leader.is_none() {
            before.owner = None; // nothing to judge by
        }
        self.fault(format!("SIGSTOP nats node {node}{which}"));
        self.cluster.pause(node);
        let paused = Instant::now();
        if self.batons.len() > 1 {
            let other = (leader.unwrap_or(0) + 1) % self.batons.len();
            self.fault(format!(
                "SIGKILL Baton {other} (not the relay leader) and start it again"
            ));
            self.batons[other].kill();
            self.must_start(other).await;
        }
        let left = NODE_PAUSE
            .max(self.knobs.hold)
            .saturating_sub(paused.elapsed());
        tokio::time::sleep(left).await; // the rest of the scheduled pause
        self.step(format!("SIGCONT nats node {node}"));
        self.cluster.resume(node);
        self.settle("a nats node's pause").await;
        self.leadership_kept(&before, "a nats node's pause").await;
    }

    /// SIGKILLs Baton `slot` and starts it again while `what` is down:
    /// whether it came up, and when it was killed.
    async fn restart_while(&mut self, slot: usize, what: &str) -> (bool, Instant) {
        self.fault(format!(
            "SIGKILL Baton {slot} and start it while {what} is down"
        ));
        self.batons[slot].kill();
        let killed = Instant::now();
        let came_up = match self.batons[slot]
            .start(&self.http, Duration::from_secs(30))
            .await
        {
            Ok(()) => true,
            Err(e) => {
                self.findings.add(format!(
                    "a Baton started while {what} was down did not come up: {e}"
                ));
                false
            }
        };
        (came_up, killed)
    }

    /// Crashes PostgreSQL, starts a Baton while it is down (it must come
    /// up and say it is not ready), then starts PostgreSQL again (the
    /// Baton must become ready by itself).
    async fn crash_postgres(&mut self) {
        let slot = self.batons.len() - 1;
        self.fault("crash PostgreSQL (pg_ctl stop -m immediate)");
        self.pg.crash().await;
        let (came_up, outage) = self.restart_while(slot, "PostgreSQL").await;
        if came_up {
            let deadline = Instant::now() + Duration::from_secs(10);
            let answer = loop {
                let answer = self.readyz(slot).await;
                if answer.is_some() || Instant::now() >= deadline {
                    break answer;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            match answer {
                Some((503, body)) if body["event_store"] == false => {}
                other => self.findings.add(format!(
                    "a Baton started while PostgreSQL was down should answer /readyz 503 with \
                     event_store false; it answered {other:?}"
                )),
            }
        }
        let left = self.knobs.hold.saturating_sub(outage.elapsed());
        tokio::time::sleep(left).await; // the rest of the scheduled outage
        self.step("start PostgreSQL again");
        self.pg.start_again().await;
        if came_up {
            self.wait_ready(
                slot,
                "by itself after PostgreSQL came back (it started while PostgreSQL was down)",
                RECOVERY,
            )
            .await;
        } else {
            self.step(format!("start Baton {slot} again, now PostgreSQL is up"));
            self.batons[slot].kill();
            self.must_start(slot).await;
        }
        self.settle("PostgreSQL's crash").await;
    }

    /// Takes all of NATS away (SIGKILL or SIGSTOP, by turns), restarts
    /// a Baton meanwhile, and brings NATS back. The relay leader must keep
    /// its leadership while NATS is away: it can still reach the database.
    async fn stop_all_nats(&mut self, round: usize) {
        // One scenario kills NATS and the other pauses it in CI's single round;
        // longer runs alternate.
        let pause = (round + self.batons.len()).is_multiple_of(2);
        let how = if pause { "SIGSTOP" } else { "SIGKILL" };
        let leader = self.relay_leader().await;
        let before = self.leadership().await;
        self.fault(format!("{how} all {NODES} nats nodes"));
        for node in 0..NODES {
            if pause {
                self.cluster.pause(node);
            } else {
                self.cluster.kill(node);
            }
        }
        // Watched with no process touched, past the relay's lease.
        let mut seen: Vec<_> = before.owner.iter().cloned().collect();
        let watch_until = Instant::now() + LEADERSHIP_WATCH.max(2 * self.knobs.hold);
        while Instant::now() < watch_until {
            if let Some(now) = self.leadership().await.owner {
                if seen.last() != Some(&now) {
                    seen.push(now);
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let losses = self.leadership().await.losses.saturating_sub(before.losses);
        if seen.len() > 1 || losses > 0 {
            self.findings.add(format!(
                "the relay leadership changed while all of NATS was down (no process was \
                 touched; PostgreSQL was up): {losses} loss(es) of leadership logged; \
                 (owner, since) seen in turn: {seen:?}"
            ));
        }
        // With two processes, the one that is not the relay leader.
        let slot = match self.batons.len() {
            1 => 0,
            n => (leader.unwrap_or(0) + 1) % n,
        };
        let (came_up, _) = self.restart_while(slot, "all of NATS").await;
        self.hold().await;
        self.step(format!("bring all {NODES} nats nodes back"));
        if pause {
            for node in 0..NODES {
                self.cluster.resume(node);
            }
        } else {
            self.cluster.start_all().await;
        }
        if let Err(e) = self.cluster.wait_for_meta_leader(RECOVERY).await {
            self.findings.add(format!(
                "JetStream had no meta leader after all of NATS came back: {e}"
            ));
        }
        self.note("JetStream has a meta leader");
        if came_up {
            self.wait_ready(
                slot,
                "by itself after NATS came back (it started while all of NATS was down)",
                RECOVERY,
            )
            .await;
        } else {
            self.batons[slot].kill();
            self.must_start(slot).await;
        }
        self.settle("all of NATS going down").await;
        if self.batons.len() > 1 && leader.is_some() {
            self.leadership_kept(&before, "all of NATS going down")
                .await;
        }
    }

    async fn run_faults(&mut self) {
        self.load_started = Instant::now();
        let wanted = 10 * self.knobs.clients as u64;
        let deadline = Instant::now() + RECOVERY;
        while self.load.acked.load(Ordering::Relaxed) < wanted {
            assert!(
                Instant::now() < deadline,
                "the load did not get going: {} commands acknowledged in {RECOVERY:?}; findings: \
                 {:#?}",
                self.load.acked.load(Ordering::Relaxed),
                self.findings.all()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for round in 0usize.. {
            self.kill_relay_leader().await;
            let node = self.stream_leader_or(round % NODES).await;
            self.kill_nats_node(node).await;
            let node = self.stream_leader_or((round + 1) % NODES).await;
            self.pause_nats_node(node).await;
            self.crash_postgres().await;
            self.stop_all_nats(round).await;
            self.rounds = round + 1;
            if self.load_started.elapsed() >= Duration::from_secs(self.knobs.seconds) {
                break;
            }
        }
        self.step("faults end");
    }
}

// ---------------------------------------------------------------------------
// Checks

/// Calls `f` until it succeeds, for up to `within`: a checker reading the
/// cluster right after a fault meets JetStream 503s ("JetStream system
/// temporarily unavailable") and the like before anything is lost.
async fn retrying<T, E, F, Fut>(what: &str, within: Duration, mut f: F) -> Result<T, String>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + within;
    loop {
        let last = match tokio::time::timeout(Duration::from_secs(30), f()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "no answer within 30 s".to_owned(),
        };
        if Instant::now() >= deadline {
            return Err(format!("{what} failed for {within:?}: {last}"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every event on the stream, read with retries (a fresh ordered consumer
/// after the last event read, on any error).
async fn read_stream(feed: &Feed, head: u64, within: Duration) -> Result<Vec<FeedEvent>, String> {
    let deadline = Instant::now() + within;
    let mut events: Vec<FeedEvent> = Vec::new();
    let mut last = String::new();
    while (events.len() as u64) < head {
        if Instant::now() >= deadline {
            return Err(format!(
                "read {} of the stream's {head} events in {within:?}: {last}",
                events.len()
            ));
        }
        let after = events.last().map(|e| e.position).unwrap_or(0);
        let mut stream = match feed.subscribe(after).await {
            Ok(s) => s,
            Err(e) => {
                last = e.to_string();
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        while (events.len() as u64) < head {
            match tokio::time::timeout(Duration::from_secs(10), stream.next()).await {
                Ok(Some(Ok(event))) => events.push(event),
                Ok(Some(Err(e))) => {
                    last = e.to_string();
                    break;
                }
                Ok(None) => {
                    last = "the feed ended".into();
                    break;
                }
                Err(_) => {
                    last = "the feed stalled for 10 s".into();
                    break;
                }
            }
        }
    }
    Ok(events)
}

type Key = (String, String, u64);

/// The store holds every acknowledged command exactly once.
fn check_store(acks: &[Ack], stored: &[Key], findings: &Findings) {
    let stored_set: BTreeSet<&Key> = stored.iter().collect();
    let mut by_aggregate: BTreeMap<(String, String), Vec<&Ack>> = BTreeMap::new();
    for ack in acks {
        by_aggregate
            .entry((ack.kind.to_owned(), ack.id.clone()))
            .or_default()
            .push(ack);
    }
    let mut stored_max: BTreeMap<(String, String), Vec<u64>> = BTreeMap::new();
    for (t, id, seq) in stored {
        stored_max
            .entry((t.clone(), id.clone()))
            .or_default()
            .push(*seq);
    }
    let mut problems = Vec::new();
    for ((kind, id), acked) in &by_aggregate {
        let mut versions: Vec<u64> = acked.iter().map(|a| a.version).collect();
        versions.sort_unstable();
        if versions.windows(2).any(|w| w[0] == w[1]) {
            let whats: Vec<String> = acked
                .iter()
                .map(|a| format!("{} -> v{}", a.what, a.version))
                .collect();
            problems.push(format!(
                "two commands on {kind} {id} were acknowledged with the same version: {whats:?}"
            ));
        }
        for ack in acked {
            if !stored_set.contains(&(kind.clone(), id.clone(), ack.version)) {
                problems.push(format!(
                    "{} on {kind} {id} was acknowledged as version {} but the store has no \
                     such event",
                    ack.what, ack.version
                ));
            }
        }
        let top = versions.last().copied().unwrap_or(0);
        let mut seqs = stored_max
            .get(&(kind.clone(), id.clone()))
            .cloned()
            .unwrap_or_default();
        seqs.sort_unstable();
        if seqs != (1..=top).collect::<Vec<_>>() {
            problems.push(format!(
                "{kind} {id}: the store holds sequences {seqs:?}, the acknowledged commands \
                 reach version {top} (more events than acknowledged commands: a retry recorded \
                 twice?)"
            ));
        }
    }
    for (kind, id) in stored_max.keys() {
        if !by_aggregate.contains_key(&(kind.clone(), id.clone())) {
            problems.push(format!(
                "{kind} {id} is in the store but no command on it was acknowledged"
            ));
        }
    }
    report(findings, "the event store", problems);
}

/// The stream holds the store's events exactly once, each aggregate's in
/// order from 1, at dense positions.
fn check_stream(events: &[FeedEvent], stored: &[Key], findings: &Findings) {
    let mut problems = Vec::new();
    if events.len() != stored.len() {
        problems.push(format!(
            "the stream holds {} events, the store {}",
            events.len(),
            stored.len()
        ));
    }
    let mut seen: BTreeMap<Key, u64> = BTreeMap::new();
    let mut last: BTreeMap<(String, String), u64> = BTreeMap::new();
    for event in events {
        let key = (
            event.aggregate_type.clone(),
            event.aggregate_id.clone(),
            event.sequence,
        );
        if let Some(first) = seen.insert(key.clone(), event.position) {
            problems.push(format!(
                "{key:?} is on the stream twice: at {first} and at {}",
                event.position
            ));
            continue;
        }
        let previous = last
            .insert((key.0.clone(), key.1.clone()), event.sequence)
            .unwrap_or(0);
        if event.sequence != previous + 1 {
            problems.push(format!(
                "{} {} out of order on the stream: sequence {} after {previous} (position {})",
                key.0, key.1, event.sequence, event.position
            ));
        }
    }
    for (i, event) in events.iter().enumerate() {
        if event.position != i as u64 + 1 {
            problems.push(format!(
                "stream positions are not dense: event {} is at {}",
                i + 1,
                event.position
            ));
            break;
        }
    }
    let on_stream: BTreeSet<&Key> = seen.keys().collect();
    let missing: Vec<&Key> = stored.iter().filter(|k| !on_stream.contains(k)).collect();
    if !missing.is_empty() {
        problems.push(format!(
            "{} stored events never reached the stream, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        ));
    }
    let stored_set: BTreeSet<&Key> = stored.iter().collect();
    let extra: Vec<&&Key> = on_stream
        .iter()
        .filter(|k| !stored_set.contains(**k))
        .collect();
    if !extra.is_empty() {
        problems.push(format!(
            "{} events on the stream are not in the store, e.g. {:?}",
            extra.len(),
            &extra[..extra.len().min(5)]
        ));
    }
    report(findings, "the stream", problems);
}

fn report(findings: &Findings, what: &str, problems: Vec<String>) {
    if problems.is_empty() {
        return;
    }
    let shown: Vec<&String> = problems.iter().take(10).collect();
    findings.add(format!(
        "{what}: {} problem(s), first {}:\n  {}",
        problems.len(),
        shown.len(),
        shown
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n  ")
    ));
}

/// The stable fields of a ward board: which bed holds which spell and
/// patient, and each bed's referrals with their status.
fn ward_view(board: &Value) -> Value {
    let beds = board["beds"].as_array().cloned().unwrap_or_default();
    Value::Array(
        beds.iter()
            .map(|b| {
                let referrals: Vec<Value> = b["referrals"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|r| json!([r["referral_id"], r["status"]]))
                    .collect();
                json!({
                    "bed": b["bed"],
                    "spell_id": b["spell_id"],
                    "nhs_number": b["patient"]["nhs_number"],
                    "referrals": referrals,
                })
            })
            .collect(),
    )
}

/// The stable fields of a team board: counts by status, and the open
/// referrals (id, status, spell), by id.
fn team_view(board: &Value) -> Value {
    let mut referrals: Vec<Value> = board["referrals"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|r| json!([r["id"], r["status"], r["spell_id"]]))
        .collect();
    referrals.sort_by_key(|r| r.to_string());
    json!({ "counts": board["counts"], "referrals": referrals })
}

fn first_difference(ours: &Value, fold: &Value) -> String {
    match (ours, fold) {
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                return format!("{} rows, the fold {}", a.len(), b.len());
            }
            for (x, y) in a.iter().zip(b) {
                if x != y {
                    return format!("{x} where the fold has {y}");
                }
            }
            "equal".into()
        }
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                if b.get(k) != Some(v) {
                    return format!(
                        "{k}: {} where the fold has {}",
                        first_difference(v, b.get(k).unwrap_or(&Value::Null)),
                        b.get(k).unwrap_or(&Value::Null)
                    );
                }
            }
            "equal".into()
        }
        _ => format!("{ours} where the fold has {fold}"),
    }
}

/// A board to compare: its kind and code, the token that reads it, what to
/// compare of it, and the fold's.
type BoardCheck<'a> = (&'a str, &'a str, &'a str, fn(&Value) -> Value, Value);

impl World {
    /// Notes a finding when Baton `slot`'s board of a `kind` (`ward` or
    /// `team`) `code`, seen through `view`, differs from the fold of the
    /// stream's.
    async fn compare_board(
        &self,
        slot: usize,
        (kind, code): (&str, &str),
        token: &str,
        view: fn(&Value) -> Value,
        fold: Value,
    ) {
        let expected = view(&fold);
        let path = format!("/api/v1/boards/{kind}s/{code}");
        match self.get(slot, &path, token).await {
            Ok(board) => {
                let got = view(&board);
                if got != expected {
                    self.findings.add(format!(
                        "Baton {slot}'s board of {kind} {code} differs from the fold of the stream: {}",
                        first_difference(&got, &expected)
                    ));
                }
            }
            Err(e) => self.findings.add(e),
        }
    }

    /// GET as `token`, retrying failures and 5xx.
    async fn get(&self, slot: usize, path: &str, token: &str) -> Result<Value, String> {
        retrying(
            &format!("GET {path} from Baton {slot}"),
            Duration::from_secs(30),
            || async {
                let base = self.batons[slot]
                    .base()
                    .ok_or_else(|| "the process is down".to_owned())?;
                let response = self
                    .http
                    .get(format!("{base}{path}"))
                    .bearer_auth(token)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let status = response.status();
                let body: Value = response.json().await.map_err(|e| e.to_string())?;
                if status.is_success() {
                    Ok(body)
                } else {
                    Err(format!("{status} {body}"))
                }
            },
        )
        .await
    }

    async fn projection_position(&self, slot: usize) -> Option<u64> {
        let base = self.batons[slot].base()?;
        let text = self
            .http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("baton_projection_position "))
            .and_then(|v| v.trim().parse().ok())
    }

    /// A board read with the consistency token of the last acknowledged
    /// command answers (the contract: at once, or 503 after a bounded wait).
    async fn read_your_writes(&self, slot: usize) {
        let Some(last) = self.load.acks.lock().unwrap().last().cloned() else {
            return;
        };
        let Some(base) = self.batons[slot].base() else {
            return;
        };
        let answer = self
            .http
            .get(format!(
                "{base}/api/v1/boards/wards/W1?consistency_token={}",
                last.token
            ))
            .bearer_auth(&self.load.tokens.ward["POOLE"])
            .timeout(Duration::from_secs(15))
            .send()
            .await;
        match answer {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => self.findings.add(format!(
                "Baton {slot}, caught up with the stream, answered a board read with the \
                 consistency token of the last acknowledged command ({} v{}) with {}",
                last.what,
                last.version,
                r.status()
            )),
            Err(e) => self.findings.add(format!(
                "Baton {slot} did not answer a board read with a consistency token: {e}"
            )),
        }
    }

    /// Every process's boards, once at the stream head, equal the fold.
    async fn check_boards(&self, fold: &infra::runner::State, head: u64) {
        let now = Utc::now();
        let occupied: usize = WARDS
            .iter()
            .map(|(code, hospital)| {
                let ward = Ward {
                    code: WardCode::parse(*code).unwrap(),
                    name: Text::parse(format!("Ward {code}")).unwrap(),
                    hospital: HospitalCode::parse(*hospital).unwrap(),
                    beds: BEDS,
                };
                fold.flow
                    .ward_board(&ward, now)
                    .beds
                    .iter()
                    .filter(|b| b.spell_id.is_some())
                    .count()
            })
            .sum();
        if occupied == 0 {
            self.findings.add(
                "the fold of the stream shows no patient in any bed: comparing boards with it \
                 would prove nothing",
            );
        }
        for slot in 0..self.batons.len() {
            let deadline = Instant::now() + RECOVERY;
            let caught_up = loop {
                let answer = self.readyz(slot).await;
                if let Some((200, body)) = &answer {
                    if body["projection_lag"] == 0 {
                        break true;
                    }
                }
                if Instant::now() >= deadline {
                    self.findings.add(format!(
                        "Baton {slot}'s boards did not reach the stream head within {RECOVERY:?} \
                         after the load stopped: they include position {:?} of {head}; /readyz \
                         said {answer:?}",
                        self.projection_position(slot).await
                    ));
                    break false;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            if !caught_up {
                continue;
            }
            self.read_your_writes(slot).await;
            let mut boards: Vec<BoardCheck> = Vec::new();
            for (code, hospital) in WARDS {
                let ward = Ward {
                    code: WardCode::parse(code).unwrap(),
                    name: Text::parse(format!("Ward {code}")).unwrap(),
                    hospital: HospitalCode::parse(hospital).unwrap(),
                    beds: BEDS,
                };
                let folded = serde_json::to_value(fold.flow.ward_board(&ward, now)).unwrap();
                let token = &self.load.tokens.ward[hospital];
                boards.push(("ward", code, token, ward_view, folded));
            }
            for (code, _) in TEAMS {
                let team = TeamCode::parse(code).unwrap();
                let folded = serde_json::to_value(fold.flow.team_board(&team, now)).unwrap();
                let token = &self.load.tokens.team[code];
                boards.push(("team", code, token, team_view, folded));
            }
            for (kind, code, token, view, fold) in boards {
                self.compare_board(slot, (kind, code), token, view, fold)
                    .await;
            }
        }
    }

    async fn check(&self) -> Vec<(String, f64)> {
        let mut phases = Vec::new();
        let t = Instant::now();
        let drained = retrying("the outbox to drain", RECOVERY, || async {
            let status = outbox::status(&self.db).await.map_err(|e| e.to_string())?;
            if status.depth == 0 {
                Ok(status)
            } else {
                Err(format!(
                    "depth {} (oldest {:?} s), relay owner {:?}",
                    status.depth, status.oldest_age_seconds, status.relay_owner
                ))
            }
        })
        .await;
        if let Err(e) = &drained {
            self.findings.add(e.clone());
        }
        phases.push(("outbox drained".to_owned(), t.elapsed().as_secs_f64()));

        let t = Instant::now();
        let Database::Postgres(pool) = &self.db else {
            unreachable!("production mode")
        };
        let stored: Vec<(String, String, i64)> = retrying("reading the events", RECOVERY, || {
            sqlx::query_as::<_, (String, String, i64)>(
                "SELECT aggregate_type, aggregate_id, sequence FROM events \
                 ORDER BY aggregate_type, aggregate_id, sequence",
            )
            .fetch_all(pool)
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        let stored: Vec<Key> = stored
            .into_iter()
            .map(|(t, id, s)| (t, id, s as u64))
            .collect();
        let acks = self.load.acks.lock().unwrap().clone();
        check_store(&acks, &stored, &self.findings);

        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect(self.cluster.server_addrs())
            .await
            .unwrap();
        let target = Arc::new(Target {
            context: async_nats::jetstream::new(client),
            settings: StreamSettings {
                name: self.stream.clone(),
                replicas: 3,
                ..StreamSettings::default()
            },
        });
        let feed = Feed::JetStream(target);
        let head = retrying("reading the stream's head", RECOVERY, || feed.head())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        match read_stream(&feed, head, RECOVERY).await {
            Ok(events) => check_stream(&events, &stored, &self.findings),
            Err(e) => self.findings.add(e),
        }
        phases.push((
            "store and stream checked".to_owned(),
            t.elapsed().as_secs_f64(),
        ));

        let t = Instant::now();
        let fold = retrying("folding the stream", RECOVERY, || {
            infra::runner::rebuild(&feed)
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        if fold.position != head {
            self.findings.add(format!(
                "the fold reached position {} of the stream's head {head}",
                fold.position
            ));
        }
        self.check_boards(&fold, head).await;
        phases.push(("boards checked".to_owned(), t.elapsed().as_secs_f64()));
        phases
    }
}

// ---------------------------------------------------------------------------
// The scenario

async fn chaos(processes: usize) {
    let knobs = Knobs::from_env();
    let mut world = World::start(processes, knobs.clone()).await;
    let setup = world.elapsed();
    let beds: Vec<(&'static str, &'static str, u16)> = WARDS
        .iter()
        .flat_map(|(w, h)| (1..=BEDS).map(move |b| (*w, *h, b)))
        .collect();
    let clients: Vec<_> = (0..knobs.clients)
        .map(|c| {
            let mine: Vec<_> = beds
                .iter()
                .skip(c)
                .step_by(knobs.clients)
                .take(BEDS_PER_CLIENT)
                .copied()
                .collect();
            tokio::spawn(client(world.load.clone(), c, mine))
        })
        .collect();
    world.run_faults().await;
    world.load.stop.store(true, Ordering::SeqCst);
    for c in clients {
        tokio::time::timeout(COMMAND_DEADLINE + Duration::from_secs(10), c)
            .await
            .expect("a client did not stop")
            .unwrap();
    }
    let load_seconds = world.load_started.elapsed().as_secs_f64();
    let phases = world.check().await;

    let acks = world.load.acks.lock().unwrap().clone();
    let mut by_what: BTreeMap<&str, usize> = BTreeMap::new();
    for ack in &acks {
        *by_what.entry(ack.what).or_default() += 1;
    }
    let findings = world.findings.all();
    println!(
        "\nchaos with {processes} Baton process(es), {} clients, nats-server {}:",
        knobs.clients,
        baton_tests::nats::version()
    );
    println!(
        "  commands acknowledged: {} ({} attempts, {} retries, {} refused, {} never acknowledged)",
        acks.len(),
        world.load.counters.attempts.load(Ordering::Relaxed),
        world.load.counters.retries.load(Ordering::Relaxed),
        world.load.refused.load(Ordering::Relaxed),
        world.load.gave_up.load(Ordering::Relaxed),
    );
    println!("  by command: {by_what:?}");
    println!(
        "  faults injected: {} (and recovered from), in {} round(s):\n    {}",
        world.injected,
        world.rounds,
        world.faults.join("\n    ")
    );
    for baton in &world.batons {
        println!(
            "  Baton {}: started {} time(s), logged losing the relay leadership {} time(s)",
            baton.slot,
            baton.starts,
            baton.leadership_losses()
        );
    }
    println!("  time: setup {setup:.1}s, load and faults {load_seconds:.1}s");
    for (phase, seconds) in phases {
        println!("        {phase} {seconds:.1}s");
    }
    println!("        total {:.1}s", world.elapsed());
    println!("  findings: {}", findings.len());
    if !findings.is_empty() || std::env::var_os("BATON_CHAOS_KEEP_LOGS").is_some() {
        if let Some(dir) = world.data_dir.take() {
            println!(
                "  the Baton processes' logs are kept in {}",
                dir.keep().display()
            );
        }
    }
    assert!(
        findings.is_empty(),
        "chaos with {processes} Baton process(es) broke {} guarantee(s):\n- {}",
        findings.len(),
        findings.join("\n- ")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_baton_loses_no_acknowledged_command_and_its_boards_equal_the_stream_under_chaos() {
    chaos(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_batons_lose_no_acknowledged_command_and_their_boards_equal_the_stream_under_chaos() {
    chaos(2).await;
}
