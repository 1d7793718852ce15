//! The PAS's HL7 v2 ADT feed through Baton's MLLP listener (issue 16), on
//! both stacks: each message applied once committed and acknowledged `AA`,
//! refused ones `AE` and held, unreadable ones `AR`, retransmissions
//! changing nothing, identity corrections reaching the boards.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use baton_tests::http::{Stack, TestApp};
use baton_tests::mllp::{ack_code, field_of, message_file, send_one, MllpClient};
use domain::spell::SpellStatus;
use domain::values::{SpellId, VisitNumber};
use infra::auth::Role;
use serde_json::{json, Value};

async fn feed_app(stack: Stack) -> TestApp {
    let app = TestApp::spawn_with(stack, |c| c.mllp_listen = Some("127.0.0.1:0".into())).await;
    app.seed_reference().await;
    app
}

fn spell_of(visit: &str) -> SpellId {
    infra::hl7::feed::spell_id("RBD", &VisitNumber::parse(visit).unwrap()).unwrap()
}

async fn placement(app: &TestApp, visit: &str) -> (String, String, SpellStatus) {
    let (spell, _) = app.bus.load_spell(&spell_of(visit)).await.unwrap();
    let stay = spell.stay().expect("the spell exists");
    (
        stay.placement.ward.to_string(),
        stay.placement.bed.to_string(),
        stay.status,
    )
}

/// The ward board once it includes the spell's current version.
async fn ward_board(app: &TestApp, ward: &str, visit: &str) -> Value {
    let id = spell_of(visit);
    let (_, version) = app.bus.load_spell(&id).await.unwrap();
    app.as_(Role::Ward, Some("POOLE"))
        .get(&format!(
            "/api/v1/boards/wards/{ward}?consistency_token=spell.{id}.{version}"
        ))
        .await
        .expect(200)
        .body
}

async fn send(app: &TestApp, file: &str) -> String {
    send_one(app.mllp.unwrap(), &message_file(file)).await
}

async fn journey(stack: Stack) {
    let app = feed_app(stack).await;
    let port = app.mllp.unwrap();
    let mut pas = MllpClient::connect(port).await;
    for file in [
        "a01_admit.hl7",
        "a01_admit_second.hl7",
        "a02_transfer.hl7",
        "a08_update.hl7",
    ] {
        let ack = pas.send(&message_file(file)).await.unwrap();
        assert_eq!(ack_code(&ack), "AA", "{file}: {ack}");
        // MSA-2 echoes the message's control id.
        let sent = String::from_utf8(message_file(file)).unwrap();
        // (MSH-1 is the separator itself, so MSH-10 is the tenth `|`.)
        assert_eq!(field_of(&ack, "MSA", 2), field_of(&sent, "MSH", 9));
    }
    assert_eq!(
        placement(&app, "V1001").await,
        ("W2".into(), "3".into(), SpellStatus::Open)
    );
    // A08: the corrected name (escapes undone) and date of birth reach the board.
    let board = ward_board(&app, "W2", "V1001").await;
    let bed = board["beds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["bed"] == "3")
        .unwrap()
        .clone();
    assert_eq!(bed["patient"]["family_name"], "O'Brien&Smith");
    assert_eq!(bed["patient"]["given_name"], "Mary^Anne");
    assert_eq!(bed["patient"]["date_of_birth"], "1941-03-03");
    // A17: each patient in the other's bed, though each bed was taken.
    let ack = pas.send(&message_file("a17_swap.hl7")).await.unwrap();
    assert_eq!(ack_code(&ack), "AA", "{ack}");
    assert_eq!(
        placement(&app, "V1001").await,
        ("W1".into(), "14".into(), SpellStatus::Open)
    );
    assert_eq!(
        placement(&app, "V1002").await,
        ("W2".into(), "3".into(), SpellStatus::Open)
    );
    // A03 then A13: discharged, then back in the bed.
    let ack = pas.send(&message_file("a03_discharge.hl7")).await.unwrap();
    assert_eq!(ack_code(&ack), "AA", "{ack}");
    let (spell, _) = app.bus.load_spell(&spell_of("V1002")).await.unwrap();
    let discharge = spell.stay().unwrap().discharge.clone().unwrap();
    assert_eq!(
        discharge.destination,
        domain::values::Destination::UsualResidence
    );
    assert_eq!(
        discharge.at,
        infra::hl7::adt::timestamp("20261201155000").unwrap()
    );
    let ack = pas
        .send(&message_file("a13_cancel_discharge.hl7"))
        .await
        .unwrap();
    assert_eq!(ack_code(&ack), "AA", "{ack}");
    assert_eq!(placement(&app, "V1002").await.2, SpellStatus::Open);
    // A11: the admission entered in error.
    let ack = pas
        .send(&message_file("a11_cancel_admit.hl7"))
        .await
        .unwrap();
    assert_eq!(ack_code(&ack), "AA", "{ack}");
    assert_eq!(placement(&app, "V1001").await.2, SpellStatus::Cancelled);
    // The history names the PAS and its user, not a nurse.
    let history = app
        .as_(Role::Ward, Some("POOLE"))
        .get(&format!("/api/v1/spells/{}/history", spell_of("V1001")))
        .await
        .expect(200)
        .body;
    let first = &history[0];
    assert_eq!(first["by"]["id"], "hl7:PAS@RBD", "{history}");
    assert_eq!(
        first["by"]["name"], "PAS at RBD (PAS user JSMITH)",
        "{history}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_pas_journey_is_applied_message_by_message_on_the_embedded_stack() {
    journey(Stack::Embedded).await;
}

#[tokio::test]
async fn a_pas_journey_is_applied_message_by_message_on_the_production_stack() {
    journey(Stack::Production).await;
}

#[tokio::test]
async fn a_cancelled_transfer_puts_the_patient_back_in_the_bed_before() {
    let app = feed_app(Stack::Embedded).await;
    for file in [
        "a01_admit.hl7",
        "a02_transfer.hl7",
        "a12_cancel_transfer.hl7",
    ] {
        assert_eq!(ack_code(&send(&app, file).await), "AA", "{file}");
    }
    assert_eq!(
        placement(&app, "V1001").await,
        ("W1".into(), "12".into(), SpellStatus::Open)
    );
    app.stop().await;
}

async fn retransmission(stack: Stack) {
    let app = feed_app(stack).await;
    assert_eq!(ack_code(&send(&app, "a01_admit.hl7").await), "AA");
    assert_eq!(ack_code(&send(&app, "a02_transfer.hl7").await), "AA");
    let (_, version) = app.bus.load_spell(&spell_of("V1001")).await.unwrap();
    // The sender lost the ACKs and sends both again, on a new connection.
    assert_eq!(ack_code(&send(&app, "a01_admit.hl7").await), "AA");
    let again = send(&app, "a02_transfer.hl7").await;
    assert_eq!(ack_code(&again), "AA", "{again}");
    let (_, after) = app.bus.load_spell(&spell_of("V1001")).await.unwrap();
    assert_eq!(after, version, "a retransmission recorded nothing");
    assert_eq!(
        placement(&app, "V1001").await,
        ("W2".into(), "3".into(), SpellStatus::Open)
    );
    // The transfer is cancelled, so the transfer's retransmission now
    // passes every check of its own (the patient is back where it says
    // they were): the commit refuses its taken control id, and it is
    // acknowledged from the record again, changing nothing.
    assert_eq!(ack_code(&send(&app, "a12_cancel_transfer.hl7").await), "AA");
    let back = placement(&app, "V1001").await;
    let (_, version) = app.bus.load_spell(&spell_of("V1001")).await.unwrap();
    let again = send(&app, "a02_transfer.hl7").await;
    assert_eq!(ack_code(&again), "AA", "{again}");
    let (_, after) = app.bus.load_spell(&spell_of("V1001")).await.unwrap();
    assert_eq!(after, version, "a retransmission recorded nothing");
    assert_eq!(placement(&app, "V1001").await, back);
    let held = app
        .as_(Role::Admin, None)
        .get("/api/v1/feeds/held")
        .await
        .expect(200);
    assert_eq!(held.body["messages"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn a_retransmitted_message_is_acknowledged_again_and_changes_nothing_embedded() {
    retransmission(Stack::Embedded).await;
}

#[tokio::test]
async fn a_retransmitted_message_is_acknowledged_again_and_changes_nothing_production() {
    retransmission(Stack::Production).await;
}

async fn held_then_mapped(stack: Stack) {
    let app = feed_app(stack).await;
    let admin = app.as_(Role::Admin, None);
    let ack = send(&app, "a01_unknown_ward.hl7").await;
    assert_eq!(ack_code(&ack), "AE", "{ack}");
    assert!(
        field_of(&ack, "ERR", 3).starts_with("103^unknown_ward"),
        "{ack}"
    );
    let held = admin.get("/api/v1/feeds/held").await.expect(200).body;
    // Reading held messages is reading patients' details: it is in the
    // access log.
    let audit = admin
        .get("/api/v1/audit?nhs_number=9434765943")
        .await
        .expect(200)
        .body;
    assert!(audit.to_string().contains("read_held_messages"), "{audit}");
    let rows = held["messages"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{held}");
    assert_eq!(rows[0]["control_id"], "ADM0003");
    assert_eq!(rows[0]["sending_facility"], "RBD");
    assert_eq!(rows[0]["ack_code"], "AE");
    assert!(rows[0]["reason"]
        .as_str()
        .unwrap()
        .starts_with("unknown_ward"));
    // The sender sends it again: still one row.
    assert_eq!(ack_code(&send(&app, "a01_unknown_ward.hl7").await), "AE");
    let held = admin.get("/api/v1/feeds/held").await.expect(200).body;
    assert_eq!(held["messages"].as_array().unwrap().len(), 1, "{held}");
    let id = held["messages"][0]["id"].as_i64().unwrap();
    // Mapping only the point of care leaves bed B07 unknown.
    admin
        .put(
            "/api/v1/feeds/locations",
            json!({ "point_of_care": "AMU-3", "ward": "W1" }),
        )
        .await
        .expect(200);
    let retried = admin
        .post(&format!("/api/v1/feeds/held/{id}/retry"), json!({}))
        .await
        .expect(200);
    assert_eq!(retried.body["applied"], false, "{}", retried.body);
    assert_eq!(retried.body["ack_code"], "AE");
    admin
        .put(
            "/api/v1/feeds/locations",
            json!({ "point_of_care": "AMU-3", "pas_bed": "B07", "ward": "W1", "bed": "7" }),
        )
        .await
        .expect(200);
    let held = admin.get("/api/v1/feeds/held").await.expect(200).body;
    let id = held["messages"][0]["id"].as_i64().unwrap();
    let retried = admin
        .post(&format!("/api/v1/feeds/held/{id}/retry"), json!({}))
        .await
        .expect(200);
    assert_eq!(retried.body["applied"], true, "{}", retried.body);
    assert_eq!(
        placement(&app, "V1003").await,
        ("W1".into(), "7".into(), SpellStatus::Open)
    );
    let held = admin.get("/api/v1/feeds/held").await.expect(200).body;
    assert_eq!(held["messages"], json!([]));
    // A mapping to a ward Baton does not know is refused.
    let refused = admin
        .put(
            "/api/v1/feeds/locations",
            json!({ "point_of_care": "AMU-4", "ward": "NOPE" }),
        )
        .await
        .expect(422);
    assert_eq!(refused.body["rule"], "unknown_ward", "{}", refused.body);
    let listed = admin.get("/api/v1/feeds/locations").await.expect(200).body;
    assert_eq!(listed["locations"].as_array().unwrap().len(), 2, "{listed}");
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_ward_is_held_and_applies_on_retry_once_mapped_embedded() {
    held_then_mapped(Stack::Embedded).await;
}

#[tokio::test]
async fn an_unknown_ward_is_held_and_applies_on_retry_once_mapped_production() {
    held_then_mapped(Stack::Production).await;
}

#[tokio::test]
async fn refusals_carry_the_rule_broken() {
    let app = feed_app(Stack::Embedded).await;
    assert_eq!(ack_code(&send(&app, "a01_admit.hl7").await), "AA");
    // Another patient into the same bed.
    let other = String::from_utf8(message_file("a01_admit_second.hl7"))
        .unwrap()
        .replace("W1^^14^POOLE", "W1^^12^POOLE");
    let ack = send_one(app.mllp.unwrap(), other.as_bytes()).await;
    assert_eq!(ack_code(&ack), "AE", "{ack}");
    assert!(
        field_of(&ack, "ERR", 3).starts_with("207^bed_occupied"),
        "{ack}"
    );
    // A transfer of a visit Baton never saw.
    let unknown = String::from_utf8(message_file("a02_transfer.hl7"))
        .unwrap()
        .replace("V1001", "V7777");
    let ack = send_one(app.mllp.unwrap(), unknown.as_bytes()).await;
    assert_eq!(ack_code(&ack), "AE", "{ack}");
    assert!(
        field_of(&ack, "ERR", 3).starts_with("204^unknown_spell"),
        "{ack}"
    );
    // A prior location that is not where Baton has the patient.
    let wrong = String::from_utf8(message_file("a02_transfer.hl7"))
        .unwrap()
        .replace("W1^^12^POOLE", "W1^^13^POOLE")
        .replace("TRF0001", "TRF0002");
    let ack = send_one(app.mllp.unwrap(), wrong.as_bytes()).await;
    assert!(
        field_of(&ack, "ERR", 3).starts_with("207^prior_location_differs"),
        "{ack}"
    );
    // A domain rule: a discharge before the admission.
    let early = String::from_utf8(message_file("a03_discharge.hl7"))
        .unwrap()
        .replace("V1002", "V1001")
        .replace("20261201155000", "20261130000000");
    let ack = send_one(app.mllp.unwrap(), early.as_bytes()).await;
    assert!(
        field_of(&ack, "ERR", 3).starts_with("207^before_admission"),
        "{ack}"
    );
    let held = app
        .as_(Role::Admin, None)
        .get("/api/v1/feeds/held")
        .await
        .expect(200)
        .body;
    assert_eq!(held["messages"].as_array().unwrap().len(), 4, "{held}");
    app.stop().await;
}

#[tokio::test]
async fn garbage_and_oversized_frames_are_answered_ar_and_the_listener_keeps_serving() {
    let app = feed_app(Stack::Embedded).await;
    let port = app.mllp.unwrap();
    let mut client = MllpClient::connect(port).await;
    for garbage in [
        &b"hello"[..],
        b"",
        b"MSH",
        b"MSH|^~\\&|PAS|RBD\rPID|1\r\xff\xfe",
        b"\x00\x01\x02\x0b",
        b"PID|1||9434765919^^^NHS^NH",
    ] {
        let ack = client.send(garbage).await.expect("answered");
        assert_eq!(ack_code(&ack), "AR", "{garbage:?}: {ack}");
    }
    // Not ADT, or no control id: read, but nothing to apply it to.
    let oru = b"MSH|^~\\&|LAB|RBD|BATON|X|20261201||ORU^R01|L1|P|2.4\r";
    assert_eq!(ack_code(&client.send(oru).await.unwrap()), "AR");
    // Still serving on the same connection.
    let ack = client.send(&message_file("a01_admit.hl7")).await.unwrap();
    assert_eq!(ack_code(&ack), "AA", "{ack}");
    // A frame that never ends: AR, then the connection closes.
    let mut flood = MllpClient::connect(port).await;
    let mut big = vec![0x0b];
    big.extend(std::iter::repeat_n(b'A', infra::hl7::mllp::MAX_FRAME + 16));
    flood.send_raw(&big).await;
    let ack = flood.answer().await.expect("an AR before closing");
    assert_eq!(ack_code(&ack), "AR", "{ack}");
    assert_eq!(flood.answer().await, None);
    // Others are served meanwhile and after.
    assert_eq!(ack_code(&send(&app, "a01_admit_second.hl7").await), "AA");
    let held = app
        .as_(Role::Admin, None)
        .get("/api/v1/feeds/held")
        .await
        .expect(200)
        .body;
    assert!(held["messages"].as_array().unwrap().len() >= 6, "{held}");
    app.stop().await;
}

#[tokio::test]
async fn other_events_are_acknowledged_ignored_and_counted() {
    let app = feed_app(Stack::Embedded).await;
    let ack = send(&app, "a04_register.hl7").await;
    assert_eq!(ack_code(&ack), "AA", "{ack}");
    let metrics = app.text("/metrics").await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("baton_hl7_messages_total")
                && l.contains("trigger=\"A04\"")
                && l.contains("outcome=\"ignored\"")
                && l.ends_with(" 1")),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test]
async fn one_connection_is_applied_in_order_and_many_connections_at_once() {
    let app = feed_app(Stack::Production).await;
    let port = app.mllp.unwrap();
    // Ten senders, each admitting a patient then moving them bed by bed:
    // each transfer names the bed before as its prior location, so any
    // reordering within a connection would be refused.
    let mut senders = Vec::new();
    for n in 0..10u32 {
        senders.push(tokio::spawn(async move {
            let mut pas = MllpClient::connect(port).await;
            let nhs = nhs_number(n);
            let visit = format!("VC{n}");
            let admit = format!(
                "MSH|^~\\&|PAS|RBD|BATON|X|20261201080000||ADT^A01|C{n}-0|P|2.4\r\
                 PID|1||{nhs}^^^NHS||Test^P{n}||19500101\r\
                 PV1|1|I|W1^^{}||||||||||||||||{visit}|||||||||||||||||||||||||20261201080000\r",
                n + 1
            );
            assert_eq!(ack_code(&pas.send(admit.as_bytes()).await.unwrap()), "AA");
            for step in 1..=2u32 {
                let (from, to) = (n + 1 + (step - 1) * 10, n + 1 + step * 10);
                let transfer = format!(
                    "MSH|^~\\&|PAS|RBD|BATON|X|20261201090000||ADT^A02|C{n}-{step}|P|2.4\r\
                     EVN|A02|2026120109{step:02}00\r\
                     PID|1||{nhs}^^^NHS||Test^P{n}||19500101\r\
                     PV1|1|I|W1^^{to}|||W1^^{from}|||||||||||||{visit}\r"
                );
                let ack = pas.send(transfer.as_bytes()).await.unwrap();
                assert_eq!(ack_code(&ack), "AA", "{ack}");
            }
        }));
    }
    for sender in senders {
        sender.await.unwrap();
    }
    for n in 0..10u32 {
        let (ward, bed, _) = placement(&app, &format!("VC{n}")).await;
        assert_eq!((ward.as_str(), bed), ("W1", (n + 21).to_string()));
    }
    app.stop().await;
}

/// The `n`th valid NHS number from 943 476 5900 on.
fn nhs_number(n: u32) -> String {
    (9_434_765_900u64..)
        .map(|v| v.to_string())
        .filter(|s| domain::values::NhsNumber::parse(s).is_ok())
        .nth(n as usize)
        .unwrap()
}
