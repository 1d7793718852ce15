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
//! Every event type is at version 1 so far, so both enums use the trait's
//! default `upcast`, which knows version 1 and refuses any other with
//! [`ReadError::UnknownVersion`] (a newer Baton wrote it). When a shape
//! changes, its event's `event_version` moves to 2 and that enum overrides
//! `upcast` with an arm rewriting a version-1 payload into version 2;
//! nothing else changes.

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
    let found = recorded.event.event_type();
    if found != event_type {
        return Err(ReadError::TypeMismatch {
            stored: event_type.to_owned(),
            found,
        });
    }
    Ok(recorded)
}

/// As [`read`], from the stored bytes.
pub fn read_slice<E: DomainEvent>(
    event_type: &str,
    version: &str,
    payload: &[u8],
) -> Result<Recorded<E>, ReadError> {
    let value: Value = serde_json::from_slice(payload).map_err(|source| ReadError::Malformed {
        event_type: event_type.to_owned(),
        source,
    })?;
    read(event_type, version, Cow::Owned(value))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::spell::SpellEvent;
    use crate::values::Pathway;
    use crate::Actor;

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
