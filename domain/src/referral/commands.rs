//! What wards and teams ask of a referral.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::spell::{Patient, Placement};
use crate::values::{Instant, Pathway, ReferralId, ServiceKind, SpellId, TeamCode, Text};

/// The spell a referral is about, as the team needs to see it: who, where.
/// Made by [`crate::spell::Spell::referral_subject`], which refuses a spell
/// that is not open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferralSubject {
    pub spell_id: SpellId,
    /// The patient (minimum detail the team needs to act).
    pub patient: Patient,
    /// Where the patient is.
    pub placement: Placement,
}

/// A command to a referral.
// Built once per command and serialised; boxing the large variant would
// only add noise to every match.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum ReferralCommand {
    /// The ward (or transfer of care hub) asks a team to take the person on.
    RaiseReferral {
        /// The new referral's id, chosen by the caller so retries are idempotent.
        referral_id: ReferralId,
        subject: ReferralSubject,
        /// The receiving team.
        team: TeamCode,
        /// The service asked for.
        service: ServiceKind,
        /// The discharge pathway it serves.
        pathway: Pathway,
        /// What the team needs to know.
        summary: Text,
    },
    /// The team confirms it has the referral.
    AcknowledgeReferral,
    /// The team will take the person on from `planned_start`.
    AcceptReferral {
        /// When care is planned to start.
        planned_start: NaiveDate,
    },
    /// The team will not take the person on.
    DeclineReferral { reason: Text },
    /// The team needs more information before it can decide.
    RequestInformation {
        /// What it asks.
        question: Text,
    },
    /// The ward answers the team's question.
    ProvideInformation { answer: Text },
    /// The ward no longer needs the referral.
    WithdrawReferral { reason: Text },
    /// The team has taken the person on.
    StartCare {
        /// When care started.
        at: Instant,
    },
    /// The team has not acknowledged within its response SLA.
    EscalateReferral,
}
