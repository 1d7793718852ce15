//! Why a referral refuses a command.

use super::aggregate::ReferralStatus;

/// A refusal by a referral.
/// The variant's name in snake case is the rule's stable name in API answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum ReferralError {
    /// Only raising creates a referral.
    #[error("there is no such referral")]
    UnknownReferral,
    /// A referral id is used once.
    #[error("this referral exists already")]
    AlreadyRaised,
    /// The team must be in the reference data.
    #[error("there is no such team")]
    UnknownTeam,
    /// A team receives referrals only for what it offers.
    #[error("the team does not offer this service")]
    ServiceNotOffered,
    /// Pathway 0 means no new support, so nobody to hand over to.
    #[error("pathway P0 needs no new support: there is no one to refer to")]
    PathwayNeedsNoReferral,
    /// The FHIR Task life cycle forbids this move.
    #[error("a referral that is {from} cannot become {to}")]
    InvalidTransition {
        /// The current status.
        from: ReferralStatus,
        /// The status the command leads to.
        to: ReferralStatus,
    },
    /// Care cannot be planned to start before it was asked for.
    #[error("the planned start is before the referral was raised")]
    PlannedStartBeforeReferral,
    /// Care cannot start before it was asked for.
    #[error("care cannot start before the referral was raised")]
    CareStartBeforeReferral,
    /// Nobody records what has not happened yet.
    #[error("{field} is in the future")]
    InFuture {
        /// The field at fault.
        field: &'static str,
    },
    /// Escalation is for referrals still waiting for acknowledgement.
    #[error("the referral was answered already: there is nothing to escalate")]
    NotAwaitingAcknowledgement,
    /// Escalation waits for the team's response SLA to pass.
    #[error("the team's response time has not passed yet")]
    EscalationNotDue,
    /// A referral is escalated once.
    #[error("the referral was escalated already")]
    AlreadyEscalated,
}
