//! Every read of a stored event goes through its enum's one upcast point
//! (`domain::upcast`, issue 14): the command bus loading a record, a spell's
//! history, the reservation rules and the boards' feed. An event stored at
//! a version this build does not know (a newer Baton wrote it) is refused
//! by each of them with the same error, never read as if it were current.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::borrow::Cow;

use baton_tests::http::{admission, Stack, TestApp};
use cqrs_es::persist::SerializedEvent;
use domain::spell::{SpellError, SpellEvent};
use domain::upcast::ReadError;
use domain::values::{Pathway, SpellId};
use domain::{Actor, DomainEvent, Recorded};
use infra::auth::Role;
use infra::commands::CommandError;
use infra::store::ReservationRules;

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
    let app = TestApp::spawn(stack).await;
    app.seed_reference().await;
    let ward = app.as_(Role::Ward, Some("POOLE"));
    let spell = ward
        .post("/api/v1/spells", admission(1, "W1", 1))
        .await
        .expect(201)
        .id();
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

#[tokio::test]
async fn an_event_of_an_unknown_version_is_refused_by_every_read_path_on_sqlite() {
    an_event_of_an_unknown_version_is_refused_by_every_read_path(Stack::Embedded).await;
}

#[tokio::test]
async fn an_event_of_an_unknown_version_is_refused_by_every_read_path_on_postgres() {
    an_event_of_an_unknown_version_is_refused_by_every_read_path(Stack::Production).await;
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
    let decoded = projections::decode(
        "spell",
        "s1",
        2,
        "DischargePathwaySet",
        "1",
        bytes.as_bytes(),
    )
    .unwrap()
    .unwrap();
    assert_eq!(decoded.change, projections::Change::Spell(read.event));
}
