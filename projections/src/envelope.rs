//! Events as the boards receive them: typed, with the aggregate id and
//! sequence that make applying them idempotent. Decoding from the stored
//! JSON happens here, once, so folds only ever see valid domain events.

use domain::access::{AccessEvent, StaffAccess};
use domain::referral::{Referral, ReferralEvent};
use domain::spell::{Spell, SpellEvent};
use domain::upcast::read_slice;
use domain::values::Instant;
use domain::{Actor, Decider};

#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A spell event.
    Spell(SpellEvent),
    /// A referral event.
    Referral(ReferralEvent),
    /// A grant or revocation of a user's access.
    Access(AccessEvent),
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
    /// Who caused it.
    pub by: Actor,
    pub change: Change,
}

impl Envelope {
    /// The aggregate type, as stored.
    pub fn aggregate_type(&self) -> &'static str {
        match self.change {
            Change::Spell(_) => Spell::TYPE,
            Change::Referral(_) => Referral::TYPE,
            Change::Access(_) => StaffAccess::TYPE,
        }
    }
}

pub use domain::upcast::ReadError as DecodeError;

/// Decodes a stored event, through its upcaster ([`domain::upcast`]).
/// Events of aggregate types the boards do not show are `None`.
pub fn decode(
    aggregate_type: &str,
    aggregate_id: &str,
    sequence: u64,
    event_type: &str,
    event_version: &str,
    payload: &[u8],
) -> Result<Option<Envelope>, DecodeError> {
    let (recorded_at, by, change) = if aggregate_type == Spell::TYPE {
        let r = read_slice::<SpellEvent>(event_type, event_version, payload)?;
        (r.recorded_at, r.by, Change::Spell(r.event))
    } else if aggregate_type == Referral::TYPE {
        let r = read_slice::<ReferralEvent>(event_type, event_version, payload)?;
        (r.recorded_at, r.by, Change::Referral(r.event))
    } else if aggregate_type == StaffAccess::TYPE {
        let r = read_slice::<AccessEvent>(event_type, event_version, payload)?;
        (r.recorded_at, r.by, Change::Access(r.event))
    } else {
        return Ok(None);
    };
    Ok(Some(Envelope {
        aggregate_id: aggregate_id.to_owned(),
        sequence,
        recorded_at,
        by,
        change,
    }))
}
