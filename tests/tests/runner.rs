//! The boards' runner applying what the feed delivers: in chunks or one by
//! one to the same state, skipping redeliveries, never stepping over a gap.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use baton_tests::fixtures::{nurse, patient, placement as place};
use domain::spell::SpellEvent;
use domain::values::{Pathway, SpellId};
use domain::Recorded;

fn feed_event(position: u64, id: &str, sequence: u64, event: SpellEvent) -> infra::feed::FeedEvent {
    let (event_type, event_version) = (
        domain::DomainEvent::event_type(&event),
        domain::DomainEvent::event_version(&event),
    );
    let recorded = Recorded {
        by: nurse(),
        recorded_at: "2026-03-01T10:00:00Z".parse().unwrap(),
        event,
    };
    infra::feed::FeedEvent {
        position,
        aggregate_type: "spell".into(),
        aggregate_id: id.into(),
        sequence,
        event_type: event_type.into(),
        event_version: event_version.into(),
        payload: serde_json::to_vec(&recorded).unwrap().into(),
    }
}

/// Patient `n` admitted to bed `bed` of W1 as spell `id`.
fn admitted(id: &str, n: u32, bed: &str) -> SpellEvent {
    SpellEvent::PatientAdmitted {
        spell_id: SpellId::parse(id).unwrap(),
        patient: patient(n),
        placement: place("W1", bed),
        admitted_at: "2026-03-01T09:00:00Z".parse().unwrap(),
        visit_number: None,
    }
}

#[test]
fn applying_a_chunk_equals_applying_its_events_one_by_one_and_skips_redeliveries() {
    let pathway = SpellEvent::DischargePathwaySet {
        pathway: Pathway::P1,
        previous: None,
    };
    let events = vec![
        feed_event(1, "s1", 1, admitted("s1", 1, "1")),
        feed_event(2, "s2", 1, admitted("s2", 2, "2")),
        feed_event(3, "s1", 2, pathway.clone()),
        // A redelivery of position 3.
        feed_event(3, "s1", 2, pathway),
    ];
    let one_by_one = infra::runner::Boards::new();
    for event in &events {
        one_by_one.apply(event).unwrap();
    }
    let chunked = infra::runner::Boards::new();
    chunked.apply_all(&events[..2]).unwrap();
    chunked.apply_all(&events[1..]).unwrap();
    assert_eq!(chunked.position(), 3);
    assert_eq!(chunked.applied_count(), 3);
    let state = |b: &infra::runner::Boards| -> serde_json::Value {
        serde_json::from_str(&b.snapshot(0).unwrap().state).unwrap()
    };
    assert_eq!(state(&chunked), state(&one_by_one));
}

#[test]
fn the_boards_never_step_over_a_position_the_feed_skipped() {
    let events = [
        feed_event(1, "s1", 1, admitted("s1", 1, "1")),
        feed_event(2, "s2", 1, admitted("s2", 2, "2")),
        feed_event(3, "s3", 1, admitted("s3", 3, "3")),
    ];
    let boards = infra::runner::Boards::new();
    let gap = boards
        .apply_all(&[events[0].clone(), events[2].clone()])
        .unwrap_err();
    assert_eq!(gap, infra::runner::FeedGap { after: 1, next: 3 });
    assert_eq!(boards.position(), 1, "what came before the gap is kept");
    assert_eq!(boards.gap_count(), 1);
    // Subscribing again from position 1 delivers 2 and 3.
    boards.apply_all(&events[1..]).unwrap();
    assert_eq!(boards.position(), 3);
    assert_eq!(boards.applied_count(), 3);
}
