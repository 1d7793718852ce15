//! Who may do what: the contract's roles and scopes, in one function.
//!
//! Every handler names the action it is about to take and what it concerns
//! (a hospital, a team) and asks [`authorize`]. Two kinds of "no":
//! - 403 when the caller may know the thing exists (a ward, a board, an
//!   endpoint their role never uses);
//! - 404 when the thing is a patient's record the caller has no business
//!   with, so that a team probing ids learns nothing of who is in hospital.

use domain::values::{HospitalCode, TeamCode};
use infra::auth::{Principal, Role};

use crate::error::ApiError;

/// What a request is about to do.
#[derive(Debug, Clone, Copy)]
pub enum Action<'a> {
    /// Read hospitals, wards, teams, delay reasons.
    ReadReference,
    /// Change them.
    ManageReference,
    /// Admit to a ward of this hospital.
    Admit {
        /// The ward's hospital.
        hospital: &'a HospitalCode,
    },
    /// Read or change a spell (of this hospital, if it exists).
    Spell {
        /// The spell's hospital; `None` when there is no such spell.
        hospital: Option<&'a HospitalCode>,
    },
    /// Raise a referral for a spell of this hospital.
    RaiseReferral {
        /// The spell's hospital; `None` when there is no such spell.
        hospital: Option<&'a HospitalCode>,
    },
    /// Read a referral.
    ReadReferral(Option<ReferralScope<'a>>),
    /// Acknowledge, accept, decline, ask, start care: the team's part.
    AnswerReferral(Option<ReferralScope<'a>>),
    /// Withdraw, provide information: the ward's part.
    WardReferralAction(Option<ReferralScope<'a>>),
    /// List referrals (each then filtered by [`may_see_referral`]).
    ListReferrals,
    /// A ward board of this hospital.
    WardBoard {
        /// The ward's hospital.
        hospital: &'a HospitalCode,
    },
    /// A hospital board.
    HospitalBoard {
        /// Which.
        hospital: &'a HospitalCode,
    },
    /// The system board.
    SystemBoard,
    /// A team board.
    TeamBoard {
        /// Which.
        team: &'a TeamCode,
    },
    /// Who looked at a patient.
    ReadAudit,
    /// Grant or revoke a user's access, and list who has what.
    ManageAccess,
}

/// Whom a referral concerns.
#[derive(Debug, Clone, Copy)]
pub struct ReferralScope<'a> {
    /// The receiving team.
    pub team: &'a TeamCode,
    /// The referring hospital.
    pub hospital: &'a HospitalCode,
}

fn own_hospital(p: &Principal, hospital: &HospitalCode) -> bool {
    p.role == Role::Ward && p.hospital.as_deref() == Some(hospital.as_str())
}

fn own_team(p: &Principal, team: &TeamCode) -> bool {
    p.role == Role::Team && p.team.as_deref() == Some(team.as_str())
}

/// True when the caller may see this referral at all.
pub fn may_see_referral(p: &Principal, scope: ReferralScope<'_>) -> bool {
    own_hospital(p, scope.hospital) || own_team(p, scope.team)
}

/// Allows the action or says why not.
pub fn authorize(p: &Principal, action: Action<'_>) -> Result<(), ApiError> {
    use Action::*;
    let allowed = match action {
        ReadReference => true,
        ManageReference | ReadAudit | ManageAccess => p.role == Role::Admin,
        Admit { hospital } => own_hospital(p, hospital),
        Spell { hospital } | RaiseReferral { hospital } => match p.role {
            // A patient's record: unknown, or another hospital's, reads as
            // "no such record" to wards, and teams never see spells.
            Role::Ward | Role::Team => {
                if hospital.is_some_and(|h| own_hospital(p, h)) {
                    true
                } else {
                    return Err(ApiError::NotFound);
                }
            }
            Role::System | Role::Admin => false,
        },
        ReadReferral(scope) => match p.role {
            Role::Ward | Role::Team => {
                if scope.is_some_and(|s| may_see_referral(p, s)) {
                    true
                } else {
                    return Err(ApiError::NotFound);
                }
            }
            Role::System | Role::Admin => false,
        },
        AnswerReferral(scope) => match (p.role, scope) {
            (Role::Team, Some(s)) if own_team(p, s.team) => true,
            // A ward may see its referral but not answer for the team.
            (Role::Ward, Some(s)) if own_hospital(p, s.hospital) => false,
            (Role::Ward | Role::Team, _) => return Err(ApiError::NotFound),
            (Role::System | Role::Admin, _) => false,
        },
        WardReferralAction(scope) => match (p.role, scope) {
            (Role::Ward, Some(s)) if own_hospital(p, s.hospital) => true,
            (Role::Team, Some(s)) if own_team(p, s.team) => false,
            (Role::Ward | Role::Team, _) => return Err(ApiError::NotFound),
            (Role::System | Role::Admin, _) => false,
        },
        ListReferrals => matches!(p.role, Role::Ward | Role::Team),
        WardBoard { hospital } => own_hospital(p, hospital),
        HospitalBoard { hospital } => own_hospital(p, hospital) || p.role == Role::System,
        SystemBoard => p.role == Role::System,
        TeamBoard { team } => own_team(p, team),
    };
    if allowed {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}
