//! Every read of a stored event goes through its enum's one upcast point
//! (`domain::upcast`, issue 14): the command bus loading a record, a spell's
//! history, the reservation rules and the boards' feed. An older shape
//! (`PatientAdmitted` version 1, before the visit number) is read by each of
//! them as the current event it upcasts to; an event stored at a version
//! this build does not know (a newer Baton wrote it) is refused by each of
//! them with the same error, never read as if it were current.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::borrow::Cow;

use baton_tests::fixtures::{patient, placement};
use baton_tests::http::{Stack, TestApp};
use cqrs_es::persist::SerializedEvent;
use domain::spell::{Spell, SpellError, SpellEvent};
use domain::upcast::ReadError;
use domain::values::{Instant, Pathway, SpellId};
use domain::{Actor, DomainEvent, Recorded};
use infra::auth::Role;
use infra::commands::CommandError;
use infra::store::{BatonRepository, ReservationRules};
use serde_json::json;

fn pathway_set() -> serde_json::Value {
    serde_json::to_value(Recorded {
        by: Actor::new("u1", "Nurse"),
        recorded_at: "2026-03-01T10:00:00Z".parse().unwrap(),
        event: SpellEvent::DischargePathwaySet {
            pathway: Pathway::P1,
            previous: None,
        },
    })
    .unwrap()
}

/// Stores, beside Baton, the spell's next event at `version`.
async fn store_event(app: &TestApp, spell: &str, sequence: i64, version: &str) {
    // Our own JSON holds no single quote.
    let payload = pathway_set().to_string();
    app.execute_sql(&format!(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
         event_version, payload, metadata) VALUES ('spell', '{spell}', {sequence}, \
         'DischargePathwaySet', '{version}', '{payload}', '{{}}')"
    ))
    .await;
}

fn unknown_version(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(ReadError::UnknownVersion { version, .. }) = e.downcast_ref::<ReadError>() {
            return version == "9";
        }
        cause = e.source();
    }
    false
}

async fn an_event_of_an_unknown_version_is_refused_by_every_read_path(stack: Stack) {
    let app = TestApp::seeded(stack).await;
    let ward = app.as_(Role::Ward, Some("POOLE"));
    let spell = ward.admit(1, "W1", 1).await.id();
    // A current event stored the same way is read like any other.
    store_event(&app, &spell, 2, "1").await;
    let history = ward
        .get(&format!("/api/v1/spells/{spell}/history"))
        .await
        .expect(200);
    assert_eq!(history.body.as_array().unwrap().len(), 2);

    store_event(&app, &spell, 3, "9").await;
    // The command bus, loading the record.
    let id = SpellId::parse(&spell).unwrap();
    match app.bus.load_spell(&id).await {
        Err(CommandError::<SpellError>::Internal(source)) => {
            assert!(unknown_version(source.as_ref()), "{source:?}")
        }
        other => panic!("expected an internal error, got {other:?}"),
    }
    // Its history, through the same load: an internal error, not a guess.
    let refused = ward.get(&format!("/api/v1/spells/{spell}/history")).await;
    assert_eq!(refused.status, 500, "{:#}", refused.body);
    assert_eq!(refused.body["type"], "/problems/internal");
    app.stop().await;
}

baton_tests::on_both_stacks!(
    #[tokio::test]
    an_event_of_an_unknown_version_is_refused_by_every_read_path =>
    an_event_of_an_unknown_version_is_refused_by_every_read_path_on_sqlite,
    an_event_of_an_unknown_version_is_refused_by_every_read_path_on_postgres
);

/// Spell `s1`'s event as the boards decode it from the feed.
fn decode(sequence: u64, event_type: &str, version: &str, payload: &[u8]) -> projections::Envelope {
    projections::decode("spell", "s1", sequence, event_type, version, payload)
        .unwrap()
        .unwrap()
}

#[test]
fn the_reservation_rules_and_the_boards_read_through_the_same_upcast_point() {
    let event = |version: &str| SerializedEvent {
        aggregate_id: "s1".into(),
        sequence: 2,
        aggregate_type: "spell".into(),
        event_type: "DischargePathwaySet".into(),
        event_version: version.into(),
        payload: pathway_set(),
        metadata: serde_json::json!({}),
    };
    let rules = ReservationRules::baton();
    assert!(rules.changes(&[event("1")]).unwrap().is_empty());
    assert!(matches!(
        rules.changes(&[event("9")]),
        Err(ReadError::UnknownVersion { version, .. }) if version == "9"
    ));
    // The boards' decode refuses it the same way (projections/tests/boards.rs).
    let bytes = pathway_set().to_string();
    // And each path reads the current version as the domain's own read does.
    let read =
        domain::upcast::read::<SpellEvent>("DischargePathwaySet", "1", Cow::Owned(pathway_set()))
            .unwrap();
    assert_eq!(read.event.event_type(), "DischargePathwaySet");
    let decoded = decode(2, "DischargePathwaySet", "1", bytes.as_bytes());
    assert_eq!(decoded.change, projections::Change::Spell(read.event));
}

/// A spell's admission exactly as version 1 of `PatientAdmitted` stored it
/// (until issue 14): no `visit_number`. Written out, not serialised from
/// today's type, so it stays the old shape whatever the type becomes.
fn admitted_v1(
    spell: &str,
    by: &Actor,
    recorded_at: Instant,
    admitted_at: Instant,
) -> SerializedEvent {
    let p = patient(40);
    SerializedEvent {
        aggregate_id: spell.to_owned(),
        sequence: 1,
        aggregate_type: "spell".into(),
        event_type: "PatientAdmitted".into(),
        event_version: "1".into(),
        payload: json!({
            "by": { "id": by.id, "name": by.name },
            "recorded_at": recorded_at,
            "event": { "PatientAdmitted": {
                "spell_id": spell,
                "patient": {
                    "nhs_number": p.nhs_number.digits(),
                    "family_name": p.family_name.as_str(),
                    "given_name": p.given_name.as_str(),
                    "date_of_birth": p.date_of_birth,
                },
                "placement": { "hospital": "POOLE", "ward": "W1", "bed": "7" },
                "admitted_at": admitted_at,
            } }
        }),
        metadata: json!({}),
    }
}

/// What this build records for the same admission: version 2, no visit
/// number (a ward entered it).
fn admitted_now(spell: &str, admitted_at: Instant) -> SpellEvent {
    SpellEvent::PatientAdmitted {
        spell_id: SpellId::parse(spell).unwrap(),
        patient: patient(40),
        placement: placement("W1", "7"),
        admitted_at,
        visit_number: None,
    }
}

async fn an_admission_of_version_1_is_read_as_today_s_by_every_read_path(stack: Stack) {
    let app = TestApp::seeded(stack).await;
    let ward = app.as_(Role::Ward, Some("POOLE"));
    let spell = uuid::Uuid::new_v4().simple().to_string();
    let of_spell = |tail: &str| format!("/api/v1/spells/{spell}/{tail}");
    let by = Actor::new("ward-POOLE", "Ward POOLE");
    let recorded_at = chrono::Utc::now() - chrono::Duration::hours(1);
    let admitted_at = recorded_at - chrono::Duration::days(2);
    let stored = admitted_v1(&spell, &by, recorded_at, admitted_at);
    let current = admitted_now(&spell, admitted_at);

    // Written as an older Baton wrote it: through the store's commit, which
    // reads it through the reservation rules (the bed, the patient and the
    // open spell are claimed) and queues it for the boards' feed.
    let rules = ReservationRules::baton();
    let as_today = SerializedEvent {
        event_version: current.event_version().to_owned(),
        payload: serde_json::to_value(Recorded {
            by: by.clone(),
            recorded_at,
            event: current.clone(),
        })
        .unwrap(),
        ..stored.clone()
    };
    assert_eq!(as_today.event_version, "2");
    assert_eq!(
        rules.changes(std::slice::from_ref(&stored)).unwrap(),
        rules.changes(std::slice::from_ref(&as_today)).unwrap()
    );
    let repository = BatonRepository::new(app.database().await, rules);
    repository
        .commit(std::slice::from_ref(&stored))
        .await
        .unwrap();
    let taken = ward
        .post("/api/v1/spells", baton_tests::http::admission(41, "W1", 7))
        .await;
    assert_eq!(taken.status, 409, "{:#}", taken.body);
    assert_eq!(taken.body["rule"], "bed_occupied");

    // The command bus loads it as the admission this build would record.
    let id = SpellId::parse(&spell).unwrap();
    let (loaded, version) = app.bus.load_spell(&id).await.unwrap();
    assert_eq!(loaded, domain::decider::replay::<Spell>([&current]));
    assert_eq!(version, 1);
    // And a command on it is decided and recorded after it.
    let pathway = ward
        .post(&of_spell("pathway"), json!({ "pathway": "P1" }))
        .await
        .expect(200);
    assert_eq!(pathway.body["version"], 2);

    // Its history shows it as today's event says it.
    let history = ward.get(&of_spell("history")).await.expect(200);
    let first = &history.body[0];
    assert_eq!(history.body.as_array().unwrap().len(), 2);
    assert_eq!(first["type"], "PatientAdmitted");
    assert_eq!(first["by"], json!({ "id": by.id, "name": by.name }));
    assert_eq!(first["at"], json!(recorded_at));
    assert_eq!(
        first["data"],
        serde_json::to_value(&current).unwrap()["PatientAdmitted"]
    );
    assert_eq!(first["data"]["visit_number"], serde_json::Value::Null);

    // The boards, fed from the stream, fold it like any admission: the bed
    // shows the admission as the version-1 event recorded it.
    let board = ward
        .get_after("/api/v1/boards/wards/W1", &pathway)
        .await
        .expect(200)
        .body;
    assert_eq!(board["totals"]["occupied"], 1);
    let bed = &board["beds"][6];
    let p = patient(40);
    let shown = json!({
        "bed": "7",
        "spell_id": spell,
        "admitted_at": admitted_at,
        "pathway": "P1",
        "patient": {
            "nhs_number": p.nhs_number.digits(),
            "family_name": p.family_name.as_str(),
            "given_name": p.given_name.as_str(),
            "date_of_birth": p.date_of_birth,
        },
    });
    for (field, value) in shown.as_object().unwrap() {
        assert_eq!(&bed[field], value, "{field}");
    }
    app.stop().await;
}

baton_tests::on_both_stacks!(
    #[tokio::test]
    an_admission_of_version_1_is_read_as_today_s_by_every_read_path =>
    an_admission_of_version_1_is_read_as_today_s_by_every_read_path_on_sqlite,
    an_admission_of_version_1_is_read_as_today_s_by_every_read_path_on_postgres
);

#[test]
fn the_boards_decode_an_admission_of_version_1_as_today_s() {
    let by = Actor::new("ward-POOLE", "Ward POOLE");
    let at: Instant = "2026-03-01T10:00:00Z".parse().unwrap();
    let stored = admitted_v1("s1", &by, at, at);
    let decoded = decode(
        1,
        "PatientAdmitted",
        "1",
        stored.payload.to_string().as_bytes(),
    );
    assert_eq!(
        decoded.change,
        projections::Change::Spell(admitted_now("s1", at))
    );
    assert_eq!(decoded.recorded_at, at);
}
