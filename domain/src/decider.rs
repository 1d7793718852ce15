//! The shape every aggregate takes: `decide` is a pure function of state,
//! command, the clock reading and reference data; `evolve` folds an event
//! into state. Nothing here performs I/O, so every rule is testable as
//! given/when/then with no runtime.
//!
//! cqrs-es 0.5 requires tokio (its `EventSink` holds a tokio mutex), so the
//! domain does not implement `cqrs_es::Aggregate` itself: `infra` adapts any
//! [`Decider`] to it with one generic wrapper. The rules stay here, free of
//! any runtime; persistence stays there.

use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::reservation::ReservationChange;
use crate::values::Instant;

/// Who caused a change: the authenticated user, from the command's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// Stable user id (the token's `sub`).
    pub id: String,
    /// Display name at the time of the change.
    pub name: String,
}

impl Actor {
    pub fn new(id: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
        }
    }
}

/// A command with its metadata: who issued it and when it was received.
/// `at` is the recording clock, distinct from the clinical times inside
/// commands (a ward may record at 10:00 a review made at 08:30).
#[derive(Debug, Clone, PartialEq)]
pub struct Issued<C> {
    /// Who issued the command.
    pub by: Actor,
    /// When the command was received.
    pub at: Instant,
    /// The command itself.
    pub command: C,
}

impl<C> Issued<C> {
    /// Wraps a command with its metadata.
    pub fn new(by: Actor, at: Instant, command: C) -> Self {
        Self { by, at, command }
    }
}

/// An event as stored: what happened, who caused it and when it was recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recorded<E> {
    /// Who caused the event.
    pub by: Actor,
    /// When the event was recorded (the command's receipt time).
    pub recorded_at: Instant,
    pub event: E,
}

/// An event type of an aggregate. `event_type` strings are part of the
/// public stream contract and never change; a changed shape gets a new
/// `event_version` and an upcaster, never a rewrite of stored events.
pub trait DomainEvent:
    Serialize + DeserializeOwned + Clone + PartialEq + Debug + Send + Sync
{
    /// The stable name of this event, e.g. `PatientAdmitted`.
    fn event_type(&self) -> &'static str;
    /// The version of this event's shape.
    fn event_version(&self) -> &'static str;
    /// The one upcast point of this event enum: brings a stored payload
    /// (the `Recorded` JSON) of `event_type` at `version` to the current
    /// shape, or says why it cannot (see [`crate::upcast`]).
    ///
    /// Every event type has had one shape so far, so this passes version 1
    /// through; an enum whose shape changes overrides it, with an arm that
    /// rewrites the older payload to the next version.
    fn upcast<'a>(
        event_type: &str,
        version: &str,
        payload: std::borrow::Cow<'a, serde_json::Value>,
    ) -> Result<std::borrow::Cow<'a, serde_json::Value>, crate::upcast::ReadError> {
        crate::upcast::only_version(
            Self::current_version(event_type),
            event_type,
            version,
            payload,
        )
    }
    /// The version events of `event_type` are written at now (what
    /// `event_version` says of each); a stored event at it is read straight
    /// from its bytes, without the upcaster. "1" unless a shape changed.
    fn current_version(event_type: &str) -> &'static str {
        let _ = event_type;
        "1"
    }
    /// The uniqueness reservations this event takes, releases or needs
    /// (see [`crate::reservation`]). `aggregate_id` is the id of the
    /// aggregate the event belongs to.
    fn reservations(&self, aggregate_id: &str) -> Vec<ReservationChange> {
        let _ = aggregate_id;
        Vec::new()
    }
}

/// An event-sourced aggregate whose decisions are pure.
pub trait Decider: Default + Serialize + DeserializeOwned + Clone + Debug + Send + Sync {
    /// The aggregate type's stable name (stored with each event).
    const TYPE: &'static str;
    /// What may be asked of it.
    type Command: Debug + Send + Sync;
    /// What may happen to it.
    type Event: DomainEvent;
    /// Why a command is refused.
    type Error: std::error::Error + Send + Sync + 'static;
    /// What decisions may read besides state: reference data, never I/O handles.
    type Services: ?Sized + Send + Sync;

    /// Decides which events a command causes, or why it is refused.
    /// `now` is the recording clock, used to refuse times in the future.
    fn decide(
        &self,
        command: Self::Command,
        now: Instant,
        services: &Self::Services,
    ) -> Result<Vec<Self::Event>, Self::Error>;

    /// Applies one event to the state. Never fails: events are facts.
    fn evolve(&mut self, event: &Self::Event);
}

/// Decides a command and stamps each resulting event with the command's
/// metadata, so that every stored event says who caused it and when.
pub fn handle<D: Decider>(
    state: &D,
    issued: Issued<D::Command>,
    services: &D::Services,
) -> Result<Vec<Recorded<D::Event>>, D::Error> {
    let Issued { by, at, command } = issued;
    Ok(state
        .decide(command, at, services)?
        .into_iter()
        .map(|event| Recorded {
            by: by.clone(),
            recorded_at: at,
            event,
        })
        .collect())
}

/// Rebuilds an aggregate from its events.
pub fn replay<'a, D: Decider + 'a>(events: impl IntoIterator<Item = &'a D::Event>) -> D {
    let mut state = D::default();
    for event in events {
        state.evolve(event);
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::Catalogue;
    use crate::values::Pathway;
    use crate::{referral::Referral, spell::Spell, spell::SpellCommand, spell::SpellEvent};

    #[test]
    fn every_event_records_the_actor_and_time_of_its_command() {
        let admitted: Instant = "2026-03-01T09:00:00Z".parse().unwrap();
        let catalogue = Catalogue::default();
        let mut spell = Spell::default();
        // Evolve with an admission built by hand: the catalogue has no wards.
        let patient = crate::spell::Patient {
            nhs_number: crate::values::NhsNumber::parse("9912003888").unwrap(),
            family_name: crate::values::PersonName::parse("Smith").unwrap(),
            given_name: crate::values::PersonName::parse("Ada").unwrap(),
            date_of_birth: "1940-01-01".parse().unwrap(),
        };
        spell.evolve(&SpellEvent::PatientAdmitted {
            spell_id: crate::values::SpellId::parse("s1").unwrap(),
            patient,
            placement: crate::spell::Placement {
                hospital: crate::values::HospitalCode::parse("H").unwrap(),
                ward: crate::values::WardCode::parse("W").unwrap(),
                bed: crate::values::BedLabel::parse("1").unwrap(),
            },
            admitted_at: admitted,
            visit_number: None,
        });
        let at: Instant = "2026-03-02T10:00:00Z".parse().unwrap();
        let by = Actor::new("u7", "Coordinator Seven");
        let recorded = handle(
            &spell,
            Issued::new(
                by.clone(),
                at,
                SpellCommand::SetDischargePathway {
                    pathway: Pathway::P2,
                },
            ),
            &catalogue,
        )
        .unwrap();
        assert_eq!(recorded.len(), 1);
        assert_eq!(recorded[0].by, by);
        assert_eq!(recorded[0].recorded_at, at);
        let rebuilt: Spell = replay(
            std::iter::once(&SpellEvent::PatientAdmitted {
                spell_id: spell.stay().unwrap().spell_id.clone(),
                patient: spell.stay().unwrap().patient.clone(),
                placement: spell.stay().unwrap().placement.clone(),
                admitted_at: admitted,
                visit_number: None,
            })
            .chain(recorded.iter().map(|r| &r.event)),
        );
        assert_eq!(rebuilt.stay().unwrap().pathway, Some(Pathway::P2));
        assert!(Referral::default().state().is_none());
    }
}
