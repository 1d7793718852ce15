//! A given/when/then harness for deciders, in the manner of cqrs-es's
//! `TestFramework` but synchronous and runtime-free:
//!
//! ```
//! # use domain::testing::given;
//! # use domain::referral::{Referral, ReferralCommand, ReferralError};
//! # use domain::reference::Catalogue;
//! # let now = "2026-01-01T10:00:00Z".parse().unwrap();
//! given::<Referral>([])
//!     .when(ReferralCommand::AcknowledgeReferral, now, &Catalogue::default())
//!     .then_refused(ReferralError::UnknownReferral);
//! ```

use std::fmt::Debug;

use crate::decider::Decider;
use crate::values::Instant;

/// An aggregate built from past events.
#[derive(Debug)]
pub struct Given<D: Decider> {
    state: D,
}

/// Starts a scenario from past events.
pub fn given<D: Decider>(events: impl IntoIterator<Item = D::Event>) -> Given<D> {
    let mut state = D::default();
    for event in events {
        state.evolve(&event);
    }
    Given { state }
}

impl<D: Decider> Given<D> {
    /// Decides a command at `now` against reference data.
    pub fn when(self, command: D::Command, now: Instant, services: &D::Services) -> Then<D> {
        Then {
            result: self.state.decide(command, now, services),
        }
    }

    /// The state the events built.
    pub fn state(&self) -> &D {
        &self.state
    }
}

/// The outcome of a decision, to assert on.
#[derive(Debug)]
pub struct Then<D: Decider> {
    result: Result<Vec<D::Event>, D::Error>,
}

impl<D: Decider> Then<D> {
    /// Asserts the command caused exactly these events.
    pub fn then_expect(self, expected: Vec<D::Event>) {
        match self.result {
            Ok(events) => assert_eq!(events, expected, "unexpected events"),
            Err(error) => assert_eq!(Err::<(), _>(format!("{error:?}")), Ok(()), "refused"),
        }
    }

    /// Asserts the command was refused with this error.
    pub fn then_refused(self, expected: D::Error)
    where
        D::Error: PartialEq + Debug,
    {
        match self.result {
            Ok(events) => assert_eq!(Ok::<_, D::Error>(events), Err(expected), "accepted"),
            Err(error) => assert_eq!(error, expected, "refused for another reason"),
        }
    }

    /// The outcome itself, for assertions of another shape.
    pub fn outcome(self) -> Result<Vec<D::Event>, D::Error> {
        self.result
    }
}
