//! The web pages in a real browser: Baton spawned on the embedded default,
//! a little of a hospital's day loaded through the API, then
//! `tests/browser/pages.mjs` drives Debian's headless Chromium (through
//! playwright-core) through every page: sign-in, the ward's beds and actions
//! with API errors at their field, live updates from another session that
//! keep what a user is typing, a team's inbox, the leaders' pages, keyboard
//! use and tablet width, and a shift on a tablet for a ward and for a team
//! (deep links, focus, confirmations, corrections, pages a sign-in may not
//! see, double clicks, the inbox's order), a care transfer hub raising and
//! withdrawing a referral on its live board, and a trust's ward moving
//! between its hospitals' wards, each page checked by axe-core. It
//! saves a full-page screenshot of each page (into `docs/screenshots` when
//! `BATON_UPDATE_SCREENSHOTS=1`).
//!
//! Nothing here is skipped: without node, the npm modules
//! (`npm ci --prefix tests/browser`) or Chromium (`apt-get install chromium`,
//! or `BATON_CHROMIUM=/path`) the test fails and says what to install.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use baton_tests::fixtures::nhs_number;
use baton_tests::http::{Client, Stack, TestApp};
use infra::auth::Role;
use serde_json::json;

/// How long the whole browser script may take.
const SCRIPT_LIMIT: Duration = Duration::from_secs(300);

fn at(minutes_ago: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::minutes(minutes_ago)).to_rfc3339()
}

fn day(offset: i64) -> String {
    (chrono::Utc::now().date_naive() + chrono::Duration::days(offset)).to_string()
}

/// Admits patient `n` (family name `family`) to `ward` bed `bed`, `days` ago.
async fn admit(
    ward: &Client,
    n: u32,
    family: &str,
    given: &str,
    at_ward: &str,
    bed: u32,
    days: i64,
) -> String {
    ward.post(
        "/api/v1/spells",
        json!({
            "nhs_number": nhs_number(n).digits(),
            "family_name": family,
            "given_name": given,
            "date_of_birth": "1941-03-02",
            "ward": at_ward,
            "bed": bed.to_string(),
            "admitted_at": at(days * 24 * 60),
        }),
    )
    .await
    .expect(201)
    .id()
}

/// What the script is told about the seeded data.
struct Seeded {
    /// The family name of the patient in W1 bed 1.
    family_name: String,
    /// The referral of that patient to REAB.
    referral: String,
    /// Every family name seeded (none may show on the system page).
    family_names: Vec<String>,
    /// The team's inbox: `role=referral id` pairs (see `seed_inbox`).
    inbox: Vec<(String, String)>,
    /// The consistency token of the last command.
    last: String,
}

/// A patient besides the one the script works with: number, family and
/// given name, ward, bed, days in, EDD (days from today), meets the criteria
/// to reside, pathway, open delay's reason.
type Other = (
    u32,
    &'static str,
    &'static str,
    &'static str,
    u32,
    i64,
    i64,
    bool,
    Option<&'static str>,
    Option<&'static str>,
);

#[rustfmt::skip]
const OTHERS: [Other; 6] = [
    (2, "Fairweather", "Thomas", "W1", 10, 9, -2, false, Some("P1"), Some("13")),
    (3, "Nakamura", "Aiko", "W1", 11, 2, 1, true, None, None),
    (4, "Kowalski", "Jan", "W1", 12, 14, -1, false, Some("P3"), Some("15")),
    (5, "Pemberton", "Ruth", "W2", 3, 4, 0, true, Some("P0"), None),
    (6, "Achterberg", "Willem", "W2", 7, 11, -3, false, Some("P2"), Some("14")),
    (7, "Lindqvist", "Sven", "X1", 2, 5, 2, false, Some("P1"), Some("6")),
];

/// The patient the script works with (W1 bed 1, referred to REAB), and a few
/// more in other beds and wards so the pages look like a day on a ward.
async fn seed(app: &TestApp) -> Seeded {
    let poole = app.as_(Role::Ward, Some("POOLE"));
    let dch = app.as_(Role::Ward, Some("DCH"));
    let spell = admit(&poole, 1, "Hartley", "Margaret", "W1", 1, 6).await;
    let raised = poole
        .post(
            "/api/v1/referrals",
            json!({ "spell_id": spell, "team": "REAB", "service": "reablement",
                    "pathway": "P1", "summary": "Lives alone; needs help with washing and dressing twice a day" }),
        )
        .await
        .expect(201);
    let referral = raised.id();
    let mut last = raised.token();
    let mut family_names = vec!["Hartley".to_owned()];

    let mut spells = std::collections::HashMap::new();
    for (n, family, given, ward_code, bed, days, edd, meets, pathway, reason) in OTHERS {
        let client = if ward_code == "X1" { &dch } else { &poole };
        let spell = admit(client, n, family, given, ward_code, bed, days).await;
        spells.insert(family, spell.clone());
        family_names.push(family.to_owned());
        let s = |tail: &str| format!("/api/v1/spells/{spell}/{tail}");
        client
            .post(&s("expected-discharge-date"), json!({ "date": day(edd) }))
            .await
            .ok();
        let reviewed = client
            .post(
                &s("criteria-review"),
                json!({ "meets_criteria_to_reside": meets, "at": at(if meets { 60 } else { 2 * 24 * 60 }) }),
            )
            .await
            .ok();
        last = reviewed.token();
        if let Some(pathway) = pathway {
            last = client
                .post(&s("pathway"), json!({ "pathway": pathway }))
                .await
                .ok()
                .token();
        }
        if let Some(reason) = reason {
            last = client
                .post(
                    &s("delays"),
                    json!({ "reason_code": reason, "note": "awaiting a package of care", "at": at(24 * 60) }),
                )
                .await
                .ok()
                .token();
        }
    }
    // A discharge of W1 five hours ago (to correct from the ward page), and a
    // transfer within W2 yesterday (to find by name and correct).
    let discharged = admit(&poole, 8, "Quartermain", "Edith", "W1", 20, 3).await;
    poole
        .post(
            &format!("/api/v1/spells/{discharged}/discharge"),
            json!({ "at": at(5 * 60), "destination": "usual_residence" }),
        )
        .await
        .ok();
    let moved = admit(&poole, 9, "Villanueva", "Rosa", "W2", 9, 2).await;
    poole
        .post(
            &format!("/api/v1/spells/{moved}/transfer"),
            json!({ "ward": "W2", "bed": "15", "at": at(24 * 60) }),
        )
        .await
        .ok();
    family_names.extend(["Quartermain".to_owned(), "Villanueva".to_owned()]);
    // For the hub and the trust's ward: a discharge-ready patient at each of
    // the Royal Bournemouth (hub EAST, trust UHD) and Dorset County (neither).
    let trust = app.as_trust("UHD");
    for (client, n, family, given, ward_code, bed) in [
        (&trust, 30, "Oyelaran", "Grace", "R1", 4),
        (&dch, 31, "Brennan", "Patrick", "X1", 3),
    ] {
        let spell = admit(client, n, family, given, ward_code, bed, 5).await;
        last = client
            .post(
                &format!("/api/v1/spells/{spell}/criteria-review"),
                json!({ "meets_criteria_to_reside": false, "at": at(24 * 60) }),
            )
            .await
            .ok()
            .token();
        family_names.push(family.to_owned());
    }
    let (inbox, last) = seed_inbox(app, &spells, last).await;
    Seeded {
        family_name: "Hartley".to_owned(),
        referral,
        family_names,
        inbox,
        last,
    }
}

/// More of REAB's inbox, for its order and its live changes: a referral
/// raised while REAB's response time was 1 minute (`breaching`: it breaches
/// a minute after seeding), two to acknowledge (`double`: by a double click;
/// `concurrent`: while another session does), one received, one accepted,
/// and one whose patient has since been discharged from DCH.
async fn seed_inbox(
    app: &TestApp,
    spells: &std::collections::HashMap<&str, String>,
    mut last: String,
) -> (Vec<(String, String)>, String) {
    let poole = app.as_(Role::Ward, Some("POOLE"));
    let dch = app.as_(Role::Ward, Some("DCH"));
    let admin = app.as_(Role::Admin, None);
    let team = app.as_(Role::Team, Some("REAB"));
    let reab = |minutes: u32| json!({ "name": "Reablement East", "services": ["reablement", "home_care"], "response_sla_minutes": minutes });
    let refer = |family: &str, summary: &str| {
        json!({ "spell_id": spells[family], "team": "REAB", "service": "reablement",
                "pathway": "P1", "summary": summary })
    };
    admin.put("/api/v1/teams/REAB", reab(1)).await.ok();
    let breaching = poole
        .post(
            "/api/v1/referrals",
            refer(
                "Fairweather",
                "Home alone since his wife died; stairs to the bathroom",
            ),
        )
        .await
        .expect(201)
        .id();
    admin.put("/api/v1/teams/REAB", reab(120)).await.ok();
    let mut inbox = vec![("breaching".to_owned(), breaching)];
    for (role, family, client, summary) in [
        (
            "received",
            "Pemberton",
            &poole,
            "Needs a morning call to prompt medication",
        ),
        (
            "accepted",
            "Achterberg",
            &poole,
            "Transfers with one; daughter visits daily",
        ),
        (
            "double",
            "Kowalski",
            &poole,
            "Frail after a fall; needs help to wash and dress",
        ),
        (
            "concurrent",
            "Nakamura",
            &poole,
            "Short-term help with meals after a hip replacement",
        ),
        (
            "discharged",
            "Lindqvist",
            &dch,
            "Lives with his son; needs a shower assessment",
        ),
    ] {
        let id = client
            .post("/api/v1/referrals", refer(family, summary))
            .await
            .expect(201)
            .id();
        let r = |tail: &str| format!("/api/v1/referrals/{id}/{tail}");
        if role == "received" || role == "accepted" {
            last = team.post(&r("acknowledge"), json!({})).await.ok().token();
        }
        if role == "accepted" {
            last = team
                .post(&r("accept"), json!({ "planned_start": day(2) }))
                .await
                .ok()
                .token();
        }
        if role == "discharged" {
            let spell = &spells[family];
            last = dch
                .post(
                    &format!("/api/v1/spells/{spell}/discharge"),
                    json!({ "at": at(30), "destination": "usual_residence" }),
                )
                .await
                .ok()
                .token();
        }
        inbox.push((role.to_owned(), id));
    }
    (inbox, last)
}

/// Fails the test, saying what to install, unless node, the npm modules and
/// Chromium are all there.
fn preflight(browser_dir: &Path, chromium: &str) {
    match std::process::Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "`node --version` failed ({}): the browser tests need Node.js 20 or later (apt-get install nodejs npm)",
            out.status
        ),
        Err(e) => panic!(
            "node not found ({e}): the browser tests need Node.js 20 or later (apt-get install nodejs npm)"
        ),
    }
    let module = browser_dir.join("node_modules/playwright-core/package.json");
    assert!(
        module.is_file(),
        "{} is missing: run `npm ci --prefix tests/browser` (bash .ci/run does)",
        module.display()
    );
    assert!(
        Path::new(chromium).is_file(),
        "no Chromium at {chromium}: `apt-get install chromium` (bash .ci/run does), or set BATON_CHROMIUM"
    );
}

/// The browser scripts' folder and the Chromium to drive, once both are
/// there (else the test fails saying what to install).
fn browser_ready() -> (PathBuf, String) {
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
    let chromium =
        std::env::var("BATON_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    preflight(&browser_dir, &chromium);
    (browser_dir, chromium)
}

/// Where screenshots go: `docs/screenshots` when updating them
/// (`BATON_UPDATE_SCREENSHOTS=1`), else the scratch folder.
fn screenshots_dir(scratch: &tempfile::TempDir) -> PathBuf {
    if std::env::var("BATON_UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        dir
    } else {
        scratch.path().join("screenshots")
    }
}

/// `node <script>` in the scripts' folder, told where Baton and Chromium
/// are and given a ward nurse's token; killed if the test ends first.
fn node(
    browser_dir: &Path,
    chromium: &str,
    script: &str,
    app: &TestApp,
) -> tokio::process::Command {
    let mut command = tokio::process::Command::new("node");
    command
        .arg(browser_dir.join(script))
        .current_dir(browser_dir)
        .env("BATON_URL", &app.base)
        .env("BATON_CHROMIUM", chromium)
        .env("BATON_WARD_TOKEN", app.token(Role::Ward, Some("POOLE")))
        .kill_on_drop(true);
    command
}

/// Runs a script to its end (within [`SCRIPT_LIMIT`]): how it exited and
/// what it wrote to standard output and error.
async fn run_to_end(
    mut command: tokio::process::Command,
    script: &str,
) -> (std::process::Output, String, String) {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not start node: {e}"));
    let output = tokio::time::timeout(SCRIPT_LIMIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("tests/browser/{script} did not finish within {SCRIPT_LIMIT:?}"))
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stdout, stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_works_in_a_real_browser() {
    let (browser_dir, chromium) = browser_ready();

    let app = TestApp::spawn_with(Stack::Embedded, |c| {
        c.mllp_listen = Some("127.0.0.1:0".into());
    })
    .await;
    app.seed_reference().await;
    app.seed_scopes().await;
    let seeded = seed(&app).await;
    // A message from the PAS naming a point of care Baton does not know:
    // held, for the admin page to show.
    let ack = baton_tests::mllp::send_one(
        app.mllp.unwrap(),
        &baton_tests::mllp::message_file("a01_unknown_ward.hl7"),
    )
    .await;
    assert_eq!(baton_tests::mllp::ack_code(&ack), "AE", "{ack}");
    // The boards include everything seeded before any page opens.
    for board in ["/api/v1/boards/wards/W1", "/api/v1/boards/teams/REAB"] {
        let scope = if board.contains("teams") {
            (Role::Team, "REAB")
        } else {
            (Role::Ward, "POOLE")
        };
        app.as_(scope.0, Some(scope.1))
            .get(&format!("{board}?consistency_token={}", seeded.last))
            .await
            .expect(200);
    }

    let scratch = tempfile::tempdir().unwrap();
    let screenshots = screenshots_dir(&scratch);
    let failures = scratch.path().join("failures");

    let mut script = node(&browser_dir, &chromium, "pages.mjs", &app);
    script
        .env("BATON_ADMIN_TOKEN", app.token(Role::Admin, None))
        .env("BATON_SEED_FAMILY_NAME", &seeded.family_name)
        .env("BATON_SEED_REFERRAL", &seeded.referral)
        .env("BATON_SEED_FAMILY_NAMES", seeded.family_names.join(","))
        .env(
            "BATON_SEED_INBOX",
            seeded
                .inbox
                .iter()
                .map(|(role, id)| format!("{role}={id}"))
                .collect::<Vec<_>>()
                .join(","),
        )
        .env("BATON_TEAM_TOKEN", app.token(Role::Team, Some("REAB")))
        .env("BATON_SCREENSHOTS", &screenshots)
        .env("BATON_FAILURE_SCREENSHOTS", &failures);
    let (output, stdout, stderr) = run_to_end(script, "pages.mjs").await;
    if !output.status.success() {
        // Keep the failure screenshots for a look.
        let kept = scratch.keep();
        panic!(
            "the browser tests failed ({}); failure screenshots in {}\n--- pages.mjs stdout ---\n{stdout}\n--- pages.mjs stderr ---\n{stderr}",
            output.status,
            kept.join("failures").display()
        );
    }
    eprintln!("{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_says_it_is_not_up_to_date_while_the_boards_lag_and_stops_once_they_catch_up() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let (browser_dir, chromium) = browser_ready();
    let app = TestApp::seeded(Stack::Production).await;
    let nurse = app.as_(Role::Ward, Some("POOLE"));
    admit(&nurse, 1, "Hartley", "Ann", "W1", 1, 2).await;
    let scratch = tempfile::tempdir().unwrap();
    let screenshots = screenshots_dir(&scratch);
    let mut child = node(&browser_dir, &chromium, "stale.mjs", &app)
        .env("BATON_SECOND_FAMILY", "Okafor")
        .env("BATON_SCREENSHOTS", &screenshots)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("could not start node: {e}"));
    let mut to_script = child.stdin.take().unwrap();
    let mut from_script = BufReader::new(child.stdout.take().unwrap()).lines();
    let nats = app.nats.clone().unwrap();
    let mut said = Vec::new();
    let script = async {
        while let Some(line) = from_script.next_line().await.unwrap() {
            said.push(line.clone());
            match line.as_str() {
                "LIVE" => {
                    nats.freeze();
                    admit(&nurse, 2, "Okafor", "Ben", "W1", 2, 0).await;
                    to_script.write_all(b"FROZEN\n").await.unwrap();
                }
                "STALE" => {
                    nats.thaw();
                    to_script.write_all(b"THAWED\n").await.unwrap();
                }
                _ => {}
            }
        }
    };
    tokio::time::timeout(SCRIPT_LIMIT, script)
        .await
        .unwrap_or_else(|_| panic!("tests/browser/stale.mjs did not finish: {said:#?}"));
    let status = child.wait().await.unwrap();
    // Thawed whatever happened, so the server shuts down cleanly.
    nats.thaw();
    assert!(
        status.success() && said.iter().any(|l| l == "CURRENT"),
        "the stale-board scenario failed ({status}):\n{}",
        said.join("\n")
    );
    eprintln!("{}", said.join("\n"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nurse_signs_in_through_a_real_openid_provider_works_times_out_idle_and_signs_out() {
    let (browser_dir, chromium) = browser_ready();
    const IDLE_SECONDS: u64 = 8;
    let (app, _provider) = baton_tests::oidc::app_with_provider(|config| {
        config.session_idle_seconds = IDLE_SECONDS;
    })
    .await;
    let ward = app.as_(Role::Ward, Some("POOLE"));
    let spell = admit(&ward, 1, "Hartley", "Margaret", "W1", 1, 3).await;
    let mut script = node(&browser_dir, &chromium, "signin.mjs", &app);
    script
        .env("BATON_SPELL", &spell)
        .env("BATON_IDLE_SECONDS", IDLE_SECONDS.to_string());
    let (output, stdout, stderr) = run_to_end(script, "signin.mjs").await;
    assert!(
        output.status.success(),
        "the sign-in scenario failed ({})\n--- signin.mjs stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        output.status
    );
    eprintln!("{stdout}");
}
