//! Go-live (issue 16): a PAS's census of current inpatients, as CSV, is
//! checked by a dry run that changes nothing, then imported; sent again it
//! admits nobody twice; and the feed's next message for an imported visit
//! finds its spell.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use baton_tests::http::{admission, Stack, TestApp};
use baton_tests::mllp::{ack_code, send_one};
use domain::values::{SpellId, VisitNumber};
use infra::auth::Role;
use serde_json::Value;

const CENSUS: &str = "\
Visit_Number,nhs_number,family_name,given_name,date_of_birth,point_of_care,bed,admitted_at,consultant
V2001,943 476 5919,O'Brien,Mary,1941-03-03,W1,5,2026-11-28T09:30:00Z,Dr Who
V2002,9876543210,Smith,\"John, Paul\",1950-07-01,W2,7,202611291415,Dr No
V2003,1234567890,Bad,Number,1960-01-01,W1,6,2026-11-29T10:00:00Z,
V2004,4501234504,Jones,Ann,1970-01-01,W1,5,2026-11-30T10:00:00Z,
V2005,4501234512,Brown,Bob,1980-01-01,NOWARD,1,2026-11-30T10:00:00Z,
";

fn spell_of(visit: &str) -> SpellId {
    infra::hl7::feed::spell_id("RBD", &VisitNumber::parse(visit).unwrap()).unwrap()
}

async fn census_app(stack: Stack) -> TestApp {
    let app = TestApp::spawn_with(stack, |c| c.mllp_listen = Some("127.0.0.1:0".into())).await;
    app.seed_reference().await;
    app
}

async fn send_census(
    app: &TestApp,
    token: String,
    query: &str,
    content_type: &str,
    csv: &str,
) -> (u16, Value) {
    let answer = app
        .client
        .post(format!("{}/api/v1/feeds/census?{query}", app.base))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(csv.to_owned())
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap())
}

fn admin(app: &TestApp) -> String {
    app.token(Role::Admin, None)
}

fn outcomes(report: &Value) -> Vec<(String, String, String)> {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["visit_number"].as_str().unwrap().to_owned(),
                r["outcome"].as_str().unwrap().to_owned(),
                r["rule"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

async fn go_live(stack: Stack) {
    let app = census_app(stack).await;
    // A patient the ward entered by hand holds W2's bed 7 already.
    app.as_(Role::Ward, Some("POOLE"))
        .post("/api/v1/spells", admission(77, "W2", 7))
        .await
        .expect(201);
    let (status, dry) = send_census(
        &app,
        admin(&app),
        "facility=RBD&dry_run=true",
        "text/csv",
        CENSUS,
    )
    .await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(dry["dry_run"], true);
    let expected = vec![
        ("V2001".to_owned(), "admit".to_owned(), String::new()),
        (
            "V2002".to_owned(),
            "refused".to_owned(),
            "bed_occupied".to_owned(),
        ),
        (
            "V2003".to_owned(),
            "refused".to_owned(),
            "invalid_value".to_owned(),
        ),
        (
            "V2004".to_owned(),
            "refused".to_owned(),
            "bed_occupied".to_owned(),
        ),
        (
            "V2005".to_owned(),
            "refused".to_owned(),
            "unknown_ward".to_owned(),
        ),
    ];
    assert_eq!(outcomes(&dry), expected, "{dry}");
    assert_eq!(dry["rows"][2]["field"], "nhs_number");
    assert_eq!(dry["rows"][3]["field"], "bed");
    assert_eq!(dry["rows"][0]["line"], 2);
    assert_eq!(
        (dry["admitted"].as_u64(), dry["refused"].as_u64()),
        (Some(1), Some(4))
    );
    // The dry run changed nothing.
    let (spell, version) = app.bus.load_spell(&spell_of("V2001")).await.unwrap();
    assert!(spell.stay().is_none());
    assert_eq!(version, 0);

    let (status, done) = send_census(&app, admin(&app), "facility=RBD", "text/csv", CENSUS).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["dry_run"], false);
    assert_eq!(
        outcomes(&done),
        expected,
        "an import does what its dry run said"
    );
    let (spell, _) = app.bus.load_spell(&spell_of("V2001")).await.unwrap();
    let stay = spell.stay().unwrap();
    assert_eq!(
        (stay.placement.ward.as_str(), stay.placement.bed.as_str()),
        ("W1", "5")
    );
    let history = app
        .as_(Role::Ward, Some("POOLE"))
        .get(&format!("/api/v1/spells/{}/history", spell_of("V2001")))
        .await
        .expect(200)
        .body;
    assert_eq!(history[0]["by"]["id"], "census:RBD", "{history}");

    // Sent again: admits nobody twice.
    let (status, again) = send_census(&app, admin(&app), "facility=RBD", "text/csv", CENSUS).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(outcomes(&again)[0].1, "already_open");
    assert_eq!(again["admitted"], 0);
    let (_, version) = app.bus.load_spell(&spell_of("V2001")).await.unwrap();
    assert_eq!(version, 1, "admitted once, and nothing since");

    // The feed's next message for the imported visit finds its spell.
    let transfer = "MSH|^~\\&|PAS|RBD|BATON|DORSET|20261201120000||ADT^A02^ADT_A02|CEN0001|P|2.4\r\
        EVN|A02|20261201115500\r\
        PID|1||9434765919^^^NHS^NH||O'Brien^Mary\r\
        PV1|1|I|W2^^9^POOLE|||W1^^5^POOLE|||||||||||||V2001^^^RBD^VN\r";
    let ack = send_one(app.mllp.unwrap(), transfer.as_bytes()).await;
    assert_eq!(ack_code(&ack), "AA", "{ack}");
    let (spell, _) = app.bus.load_spell(&spell_of("V2001")).await.unwrap();
    assert_eq!(spell.stay().unwrap().placement.bed.as_str(), "9");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_census_is_checked_by_a_dry_run_then_imported_once_and_the_feed_finds_its_visits_on_the_embedded_default(
) {
    go_live(Stack::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_census_is_checked_by_a_dry_run_then_imported_once_and_the_feed_finds_its_visits_on_postgres_and_jetstream(
) {
    go_live(Stack::Production).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_census_that_is_not_one_is_refused_saying_what_is_wrong_and_only_admins_may_send_one() {
    let app = census_app(Stack::Embedded).await;
    let (status, problem) = send_census(
        &app,
        admin(&app),
        "facility=RBD",
        "application/json",
        CENSUS,
    )
    .await;
    assert_eq!(status, 415);
    assert_eq!(problem["type"], "/problems/unsupported-media-type");
    let (status, problem) = send_census(
        &app,
        admin(&app),
        "facility=RBD",
        "text/csv",
        "visit_number,nhs_number\nV1,9434765919\n",
    )
    .await;
    // A census that is not one is refused by a rule (422), like a body a
    // schema allows but Baton cannot take.
    assert_eq!(status, 422);
    let detail = problem["detail"].as_str().unwrap();
    for column in ["family_name", "point_of_care", "admitted_at"] {
        assert!(detail.contains(column), "{detail}");
    }
    let (status, problem) = send_census(&app, admin(&app), "", "text/csv", CENSUS).await;
    assert_eq!(status, 400, "{problem}");
    let (status, _) = send_census(
        &app,
        admin(&app),
        "facility=RBD&dry_run=true",
        "text/csv",
        "\u{feff}\0\u{1}garbage\"\n\"",
    )
    .await;
    assert_eq!(status, 422);
    for (role, scope) in [(Role::Ward, Some("POOLE")), (Role::System, None)] {
        let token = app.token(role, scope);
        let (status, _) = send_census(&app, token, "facility=RBD", "text/csv", CENSUS).await;
        assert_eq!(status, 403, "{role:?}");
    }
    app.stop().await;
}
