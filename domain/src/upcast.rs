//! The one place where a stored event becomes the current event.
//!
//! Every read of a stored event (the command bus loading an aggregate
//! through cqrs-es, the reservation rules at commit, the boards decoding
//! the feed) goes through [`read`], which asks the event enum's
//! [`DomainEvent::upcast`] to bring the stored payload of that type and
//! version to the current shape, and only then deserialises it. Stored
//! events are never rewritten: an event keeps the version it was written
//! with, and an older shape is read through its upcaster for ever.
//!
//! An event type that has had one shape uses the trait's default `upcast`,
//! which knows version 1 and refuses any other with
//! [`ReadError::UnknownVersion`] (a newer Baton wrote it). When a shape
//! changes, that event's `event_version` moves on and its enum overrides
//! `upcast` with an arm rewriting the older payload into the next version;
//! nothing else changes. So far one has: `PatientAdmitted` 2 added the
//! PAS's visit number (see `SpellEvent::upcast`); the history of every
//! version is in docs/architecture.md (Events and their versions).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

use crate::decider::{DomainEvent, Recorded};

/// Why a stored event could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// A version this build does not know (a newer Baton wrote it).
    #[error("unknown version {version} of {event_type}")]
    UnknownVersion {
        /// The stored event type.
        event_type: String,
        /// The stored version.
        version: String,
    },
    /// The payload does not have the shape of its type and version.
    #[error("malformed {event_type} event: {source}")]
    Malformed {
        /// The stored event type.
        event_type: String,
        /// What serde found.
        #[source]
        source: serde_json::Error,
    },
    /// The payload holds another event than the type stored beside it.
    #[error("an event stored as {stored} holds a {found}")]
    TypeMismatch {
        /// The stored event type.
        stored: String,
        /// The event in the payload.
        found: &'static str,
    },
}

/// The payload as it is, when `version` is `current`: the upcast of an
/// event type that has only ever had one shape.
pub fn only_version<'a>(
    current: &str,
    event_type: &str,
    version: &str,
    payload: Cow<'a, Value>,
) -> Result<Cow<'a, Value>, ReadError> {
    if version == current {
        Ok(payload)
    } else {
        Err(ReadError::UnknownVersion {
            event_type: event_type.to_owned(),
            version: version.to_owned(),
        })
    }
}

/// A stored `Recorded` payload of `variant` with `field` set to `value`: the
/// upcast of a shape that gained a field. A payload that is not shaped like
/// a `Recorded` of `variant` is returned as it is, so that reading it fails
/// as malformed instead of being repaired into some event.
pub fn with_field(mut payload: Value, variant: &str, field: &str, value: Value) -> Value {
    if let Some(fields) = payload
        .get_mut("event")
        .and_then(|event| event.get_mut(variant))
        .and_then(Value::as_object_mut)
    {
        fields.insert(field.to_owned(), value);
    }
    payload
}

/// Reads a stored event (`payload` is the stored `Recorded` JSON) of
/// `event_type` at `version`, through its upcaster.
/// A payload at the current version is read in place, not copied.
pub fn read<E: DomainEvent>(
    event_type: &str,
    version: &str,
    payload: Cow<'_, Value>,
) -> Result<Recorded<E>, ReadError> {
    let current = E::upcast(event_type, version, payload)?;
    let recorded =
        Recorded::<E>::deserialize(current.as_ref()).map_err(|source| ReadError::Malformed {
            event_type: event_type.to_owned(),
            source,
        })?;
    of_type(recorded, event_type)
}

/// As [`read`], from the stored bytes. An event at its type's current
/// version (nearly all of them) is read straight into the typed event, with
/// no JSON tree in between: the boards replay every event this way.
pub fn read_slice<E: DomainEvent>(
    event_type: &str,
    version: &str,
    payload: &[u8],
) -> Result<Recorded<E>, ReadError> {
    let malformed = |source| ReadError::Malformed {
        event_type: event_type.to_owned(),
        source,
    };
    if version == E::current_version(event_type) {
        let recorded: Recorded<E> = serde_json::from_slice(payload).map_err(malformed)?;
        return of_type(recorded, event_type);
    }
    let value: Value = serde_json::from_slice(payload).map_err(malformed)?;
    read(event_type, version, Cow::Owned(value))
}

/// The event, if it is of the type stored beside it.
fn of_type<E: DomainEvent>(
    recorded: Recorded<E>,
    event_type: &str,
) -> Result<Recorded<E>, ReadError> {
    let found = recorded.event.event_type();
    if found != event_type {
        return Err(ReadError::TypeMismatch {
            stored: event_type.to_owned(),
            found,
        });
    }
    Ok(recorded)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::spell::SpellEvent;
    use crate::values::Pathway;
    use crate::{Actor, DomainEvent};

    fn stored() -> Value {
        serde_json::to_value(Recorded {
            by: Actor::new("u1", "Nurse"),
            recorded_at: "2026-03-01T10:00:00Z".parse().unwrap(),
            event: SpellEvent::DischargePathwaySet {
                pathway: Pathway::P2,
                previous: None,
            },
        })
        .unwrap()
    }

    #[test]
    fn a_current_event_is_read_in_place() {
        let payload = stored();
        let read = read::<SpellEvent>("DischargePathwaySet", "1", Cow::Borrowed(&payload)).unwrap();
        assert_eq!(
            read.event,
            SpellEvent::DischargePathwaySet {
                pathway: Pathway::P2,
                previous: None
            }
        );
    }

    #[test]
    fn a_version_this_build_does_not_know_is_refused() {
        assert!(matches!(
            read::<SpellEvent>("DischargePathwaySet", "2", Cow::Owned(stored())),
            Err(ReadError::UnknownVersion { event_type, version })
                if event_type == "DischargePathwaySet" && version == "2"
        ));
    }

    #[test]
    fn a_payload_holding_another_event_than_its_type_is_refused() {
        assert!(matches!(
            read::<SpellEvent>("PatientAdmitted", "1", Cow::Owned(stored())),
            Err(ReadError::TypeMismatch { stored, found: "DischargePathwaySet" })
                if stored == "PatientAdmitted"
        ));
    }

    /// A `PatientAdmitted` exactly as version 1 stored it (before issue 14):
    /// no `visit_number`.
    fn admitted_v1() -> Value {
        serde_json::json!({
            "by": { "id": "u1", "name": "Nurse" },
            "recorded_at": "2026-03-01T09:05:00Z",
            "event": { "PatientAdmitted": {
                "spell_id": "s1",
                "patient": {
                    "nhs_number": "9434765919",
                    "family_name": "Smith",
                    "given_name": "Ada",
                    "date_of_birth": "1940-01-01"
                },
                "placement": { "hospital": "POOLE", "ward": "W1", "bed": "1" },
                "admitted_at": "2026-03-01T09:00:00Z"
            } }
        })
    }

    /// The admission as this build records it.
    fn admitted(visit_number: Option<&str>) -> SpellEvent {
        let mut event = admitted_v1()["event"].take();
        event["PatientAdmitted"]["visit_number"] = visit_number.into();
        serde_json::from_value(event).unwrap()
    }

    #[test]
    fn an_admission_of_version_1_is_read_as_version_2_without_a_visit_number() {
        let read = read::<SpellEvent>("PatientAdmitted", "1", Cow::Owned(admitted_v1())).unwrap();
        assert_eq!(read.event, admitted(None));
        assert_eq!(read.by, Actor::new("u1", "Nurse"));
        assert_eq!(read.event.event_version(), "2");
    }

    #[test]
    fn an_admission_of_version_2_keeps_its_visit_number() {
        let mut stored = admitted_v1();
        stored["event"]["PatientAdmitted"]["visit_number"] = "V0042".into();
        let current = read::<SpellEvent>("PatientAdmitted", "2", Cow::Borrowed(&stored)).unwrap();
        assert_eq!(current.event, admitted(Some("V0042")));
        // A version-1 payload that somehow holds the field is still read as
        // version 1 says: the field did not exist then.
        let older = read::<SpellEvent>("PatientAdmitted", "1", Cow::Owned(stored)).unwrap();
        assert_eq!(older.event, admitted(None));
    }

    #[test]
    fn an_admission_of_version_2_must_say_whether_it_has_a_visit_number() {
        assert!(matches!(
            read::<SpellEvent>("PatientAdmitted", "2", Cow::Owned(admitted_v1())),
            Err(ReadError::Malformed { event_type, .. }) if event_type == "PatientAdmitted"
        ));
    }

    #[test]
    fn a_current_event_read_from_its_bytes_is_the_same_as_through_the_upcaster() {
        let bytes = serde_json::to_vec(&stored()).unwrap();
        let fast = read_slice::<SpellEvent>("DischargePathwaySet", "1", &bytes).unwrap();
        let slow = read::<SpellEvent>("DischargePathwaySet", "1", Cow::Owned(stored())).unwrap();
        assert_eq!(fast, slow);
        assert!(matches!(
            read_slice::<SpellEvent>("PatientAdmitted", "2", &bytes),
            Err(ReadError::TypeMismatch {
                found: "DischargePathwaySet",
                ..
            })
        ));
        assert!(matches!(
            read_slice::<SpellEvent>("DischargePathwaySet", "1", b"{"),
            Err(ReadError::Malformed { .. })
        ));
        let v1 = serde_json::to_vec(&admitted_v1()).unwrap();
        let upcast = read_slice::<SpellEvent>("PatientAdmitted", "1", &v1).unwrap();
        assert_eq!(upcast.event, admitted(None));
    }

    #[test]
    fn each_event_is_written_at_its_types_current_version() {
        let pathway: SpellEvent = serde_json::from_value(stored()["event"].clone()).unwrap();
        for event in [admitted(None), pathway] {
            assert_eq!(
                event.event_version(),
                SpellEvent::current_version(event.event_type())
            );
        }
    }

    #[test]
    fn versions_of_an_admission_and_of_other_events_beyond_their_own_are_refused() {
        for (event_type, version) in [("PatientAdmitted", "3"), ("DischargePathwaySet", "2")] {
            let payload = if event_type == "PatientAdmitted" {
                admitted_v1()
            } else {
                stored()
            };
            assert!(matches!(
                read::<SpellEvent>(event_type, version, Cow::Owned(payload)),
                Err(ReadError::UnknownVersion { event_type: t, version: v })
                    if t == event_type && v == version
            ));
        }
    }

    #[test]
    fn a_field_is_added_only_to_a_payload_shaped_like_its_event() {
        let other = serde_json::json!({ "event": { "PatientTransferred": {} } });
        assert_eq!(
            with_field(
                other.clone(),
                "PatientAdmitted",
                "visit_number",
                Value::Null
            ),
            other
        );
        let not_an_object = serde_json::json!({ "event": { "PatientAdmitted": 1 } });
        assert_eq!(
            with_field(
                not_an_object.clone(),
                "PatientAdmitted",
                "visit_number",
                Value::Null
            ),
            not_an_object
        );
        assert!(matches!(
            read::<SpellEvent>("PatientAdmitted", "1", Cow::Owned(not_an_object)),
            Err(ReadError::Malformed { .. })
        ));
    }

    #[test]
    fn a_payload_of_the_wrong_shape_is_malformed() {
        assert!(matches!(
            read_slice::<SpellEvent>("DischargePathwaySet", "1", b"{\"by\": 1}"),
            Err(ReadError::Malformed { .. })
        ));
        assert!(matches!(
            read_slice::<SpellEvent>("DischargePathwaySet", "1", b"not json"),
            Err(ReadError::Malformed { .. })
        ));
    }
}
