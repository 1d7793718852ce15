//! Which reservations a stored event takes, by aggregate type. The store
//! derives them from the events it is about to write, so every writer
//! (the command bus, a migration, a test) is held to the same rules; no
//! caller can forget to pass them.

use std::collections::HashMap;

use cqrs_es::persist::SerializedEvent;
use domain::reservation::ReservationChange;
use domain::upcast::ReadError;
use domain::{Decider, DomainEvent};

type RuleFn = fn(&SerializedEvent) -> Result<Vec<ReservationChange>, ReadError>;

/// The reservation rules of each aggregate type the store knows.
#[derive(Clone, Default)]
pub struct ReservationRules {
    by_type: HashMap<&'static str, RuleFn>,
}

impl std::fmt::Debug for ReservationRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.by_type.keys()).finish()
    }
}

fn rules_of<D: Decider>(event: &SerializedEvent) -> Result<Vec<ReservationChange>, ReadError> {
    let recorded = domain::upcast::read::<D::Event>(
        &event.event_type,
        &event.event_version,
        std::borrow::Cow::Borrowed(&event.payload),
    )?;
    Ok(recorded.event.reservations(&event.aggregate_id))
}

impl ReservationRules {
    /// The rules of Baton's aggregates: spells and referrals.
    pub fn baton() -> Self {
        Self::default()
            .with::<domain::spell::Spell>()
            .with::<domain::referral::Referral>()
    }

    /// Adds an aggregate type's rules.
    pub fn with<D: Decider>(mut self) -> Self {
        self.by_type.insert(D::TYPE, rules_of::<D>);
        self
    }

    /// Every change the events declare, in event order. Events of aggregate
    /// types without rules declare none.
    pub fn changes(&self, events: &[SerializedEvent]) -> Result<Vec<ReservationChange>, ReadError> {
        let mut changes = Vec::new();
        for event in events {
            if let Some(rule) = self.by_type.get(event.aggregate_type.as_str()) {
                changes.extend(rule(event)?);
            }
        }
        Ok(changes)
    }
}
