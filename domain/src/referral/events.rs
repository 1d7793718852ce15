//! What happened to a referral. `event_type()` strings never change.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::aggregate::Referral;
use super::commands::ReferralSubject;
use crate::decider::{Decider, DomainEvent};
use crate::reservation::{Ledger, ReservationChange, ReservationKey};
use crate::values::{Instant, Pathway, ReferralId, ServiceKind, TeamCode, Text};

/// An event of a referral.
// Built once per command and serialised; boxing the large variant would
// only add noise to every match.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum ReferralEvent {
    /// A referral was raised (status `requested`).
    ReferralRaised {
        referral_id: ReferralId,
        /// The spell, patient and placement.
        subject: ReferralSubject,
        /// The receiving team.
        team: TeamCode,
        /// The service asked for.
        service: ServiceKind,
        /// The pathway it serves.
        pathway: Pathway,
        /// What the team needs to know.
        summary: Text,
        /// When it was raised.
        raised_at: Instant,
        /// The team's response SLA when raised.
        response_sla_minutes: u32,
        /// When acknowledgement is due.
        respond_by: Instant,
    },
    /// The team acknowledged it (`received`).
    ReferralAcknowledged { at: Instant },
    /// The team accepted it (`accepted`).
    ReferralAccepted {
        /// When care is planned to start.
        planned_start: NaiveDate,
        at: Instant,
    },
    /// The team declined it (`rejected`).
    ReferralDeclined { reason: Text, at: Instant },
    /// The team asked for information (`on-hold`).
    InformationRequested { question: Text, at: Instant },
    /// The ward answered (`received`).
    InformationProvided { answer: Text, at: Instant },
    /// The ward withdrew it (`cancelled`).
    ReferralWithdrawn { reason: Text, at: Instant },
    /// The team took the person on (`completed`).
    CareStarted {
        /// When care started.
        at: Instant,
    },
    /// The referral passed its response SLA unacknowledged.
    ReferralEscalated {
        /// When it was escalated.
        at: Instant,
        /// When acknowledgement had been due.
        respond_by: Instant,
    },
}

impl DomainEvent for ReferralEvent {
    fn event_type(&self) -> &'static str {
        match self {
            ReferralEvent::ReferralRaised { .. } => "ReferralRaised",
            ReferralEvent::ReferralAcknowledged { .. } => "ReferralAcknowledged",
            ReferralEvent::ReferralAccepted { .. } => "ReferralAccepted",
            ReferralEvent::ReferralDeclined { .. } => "ReferralDeclined",
            ReferralEvent::InformationRequested { .. } => "InformationRequested",
            ReferralEvent::InformationProvided { .. } => "InformationProvided",
            ReferralEvent::ReferralWithdrawn { .. } => "ReferralWithdrawn",
            ReferralEvent::CareStarted { .. } => "CareStarted",
            ReferralEvent::ReferralEscalated { .. } => "ReferralEscalated",
        }
    }

    fn event_version(&self) -> &'static str {
        "1"
    }

    /// Raising needs the spell open and takes the spell's one active
    /// referral to this team; declining, withdrawing or starting care ends
    /// the referral and gives that key back.
    fn reservations(&self, aggregate_id: &str) -> Vec<ReservationChange> {
        let holder = Ledger::holder_name(Referral::TYPE, aggregate_id);
        match self {
            ReferralEvent::ReferralRaised { subject, team, .. } => vec![
                ReservationChange::Require {
                    key: ReservationKey::OpenSpell {
                        spell: subject.spell_id.clone(),
                    },
                },
                ReservationChange::Claim {
                    key: ReservationKey::ActiveReferral {
                        spell: subject.spell_id.clone(),
                        team: team.clone(),
                    },
                    holder,
                },
            ],
            ReferralEvent::ReferralDeclined { .. }
            | ReferralEvent::ReferralWithdrawn { .. }
            | ReferralEvent::CareStarted { .. } => vec![ReservationChange::ReleaseAll { holder }],
            ReferralEvent::ReferralAcknowledged { .. }
            | ReferralEvent::ReferralAccepted { .. }
            | ReferralEvent::InformationRequested { .. }
            | ReferralEvent::InformationProvided { .. }
            | ReferralEvent::ReferralEscalated { .. } => Vec::new(),
        }
    }
}
