//! Events as the boards receive them: typed, with the aggregate id and
//! sequence that make applying them idempotent. Decoding from the stored
//! JSON happens here, once, so folds only ever see valid domain events.

use domain::referral::{Referral, ReferralEvent};
use domain::spell::{Spell, SpellEvent};
use domain::values::Instant;
use domain::{Decider, Recorded};

/// What changed.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A spell event.
    Spell(SpellEvent),
    /// A referral event.
    Referral(ReferralEvent),
}

/// One event for the boards.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// The aggregate's id.
    pub aggregate_id: String,
    /// The event's sequence within its aggregate.
    pub sequence: u64,
    /// When it was recorded.
    pub recorded_at: Instant,
    /// What happened.
    pub change: Change,
}

impl Envelope {
    /// The aggregate type, as stored.
    pub fn aggregate_type(&self) -> &'static str {
        match self.change {
            Change::Spell(_) => Spell::TYPE,
            Change::Referral(_) => Referral::TYPE,
        }
    }
}

/// Why an event could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// A version this build does not know (a newer Baton wrote it).
    #[error("unknown version {version} of a {aggregate_type} event")]
    UnknownVersion {
        /// The aggregate type.
        aggregate_type: String,
        /// The version.
        version: String,
    },
    /// The JSON does not match the event's shape.
    #[error("malformed {aggregate_type} event: {source}")]
    Malformed {
        /// The aggregate type.
        aggregate_type: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

/// Decodes a stored event. Events of aggregate types the boards do not show
/// are `None`. Version 1 is the only version so far; an older version would
/// be upcast here before decoding.
pub fn decode(
    aggregate_type: &str,
    aggregate_id: &str,
    sequence: u64,
    event_version: &str,
    payload: &[u8],
) -> Result<Option<Envelope>, DecodeError> {
    if aggregate_type != Spell::TYPE && aggregate_type != Referral::TYPE {
        return Ok(None);
    }
    if event_version != "1" {
        return Err(DecodeError::UnknownVersion {
            aggregate_type: aggregate_type.to_owned(),
            version: event_version.to_owned(),
        });
    }
    let malformed = |source| DecodeError::Malformed {
        aggregate_type: aggregate_type.to_owned(),
        source,
    };
    let (recorded_at, change) = if aggregate_type == Spell::TYPE {
        let r: Recorded<SpellEvent> = serde_json::from_slice(payload).map_err(malformed)?;
        (r.recorded_at, Change::Spell(r.event))
    } else {
        let r: Recorded<ReferralEvent> = serde_json::from_slice(payload).map_err(malformed)?;
        (r.recorded_at, Change::Referral(r.event))
    };
    Ok(Some(Envelope {
        aggregate_id: aggregate_id.to_owned(),
        sequence,
        recorded_at,
        change,
    }))
}
