//! The referral's state and decisions: the FHIR Task state machine.

use std::fmt;

use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};

use super::commands::{ReferralCommand, ReferralSubject};
use super::errors::ReferralError;
use super::events::ReferralEvent;
use crate::decider::Decider;
use crate::reference::ReferenceData;
use crate::values::{
    is_in_future, local_date, Instant, Pathway, ReferralId, ServiceKind, TeamCode, Text,
};

/// A referral's status, with the FHIR Task status codes as its JSON form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReferralStatus {
    /// Raised, waiting for the team.
    Requested,
    /// The team has it.
    Received,
    /// The team will take the person on.
    Accepted,
    /// The team declined.
    Rejected,
    /// The team asked a question.
    OnHold,
    /// The ward withdrew it.
    Cancelled,
    /// The person was taken on.
    Completed,
}

impl ReferralStatus {
    /// Every status, in life-cycle order.
    pub const ALL: [ReferralStatus; 7] = [
        ReferralStatus::Requested,
        ReferralStatus::Received,
        ReferralStatus::Accepted,
        ReferralStatus::Rejected,
        ReferralStatus::OnHold,
        ReferralStatus::Cancelled,
        ReferralStatus::Completed,
    ];

    /// The FHIR code.
    pub fn code(self) -> &'static str {
        match self {
            ReferralStatus::Requested => "requested",
            ReferralStatus::Received => "received",
            ReferralStatus::Accepted => "accepted",
            ReferralStatus::Rejected => "rejected",
            ReferralStatus::OnHold => "on-hold",
            ReferralStatus::Cancelled => "cancelled",
            ReferralStatus::Completed => "completed",
        }
    }

    /// True once the referral can change no more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ReferralStatus::Rejected | ReferralStatus::Cancelled | ReferralStatus::Completed
        )
    }

    /// The FHIR Task moves Baton allows.
    pub fn can_become(self, to: ReferralStatus) -> bool {
        use ReferralStatus as S;
        matches!(
            (self, to),
            (S::Requested, S::Received)
                // A team that asked a question may still decide without the
                // answer (it came by phone, or the ward never replied).
                | (S::Requested | S::Received | S::OnHold, S::Accepted)
                | (S::Requested | S::Received | S::OnHold, S::Rejected)
                | (S::Requested | S::Received, S::OnHold)
                | (S::OnHold, S::Received)
                | (
                    S::Requested | S::Received | S::OnHold | S::Accepted,
                    S::Cancelled
                )
                | (S::Accepted, S::Completed)
        )
    }
}

impl fmt::Display for ReferralStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A question from the team and the ward's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exchange {
    pub question: Text,
    pub asked_at: Instant,
    /// The answer, once given.
    pub answer: Option<Text>,
    pub answered_at: Option<Instant>,
}

/// A raised referral's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferralState {
    pub referral_id: ReferralId,
    /// The spell, patient and placement when raised.
    pub subject: ReferralSubject,
    /// The receiving team.
    pub team: TeamCode,
    /// The service asked for.
    pub service: ServiceKind,
    /// The pathway it serves.
    pub pathway: Pathway,
    /// What the team needs to know.
    pub summary: Text,
    pub raised_at: Instant,
    /// When acknowledgement is due.
    pub respond_by: Instant,
    /// Where it stands.
    pub status: ReferralStatus,
    /// When the team acknowledged it (explicitly or by answering).
    pub acknowledged_at: Option<Instant>,
    /// When it was escalated.
    pub escalated_at: Option<Instant>,
    /// When care is planned to start, once accepted.
    pub planned_start: Option<NaiveDate>,
    /// Why it was declined or withdrawn.
    pub closing_reason: Option<Text>,
    /// When care started.
    pub care_started_at: Option<Instant>,
    /// Questions and answers, oldest first.
    pub exchanges: Vec<Exchange>,
}

/// A referral: nothing until raised.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Referral(Option<Box<ReferralState>>);

impl Referral {
    /// The raised referral's state, if raised.
    pub fn state(&self) -> Option<&ReferralState> {
        self.0.as_deref()
    }
}

fn raise(
    command: ReferralCommand,
    now: Instant,
    refs: &dyn ReferenceData,
) -> Result<Vec<ReferralEvent>, ReferralError> {
    let ReferralCommand::RaiseReferral {
        referral_id,
        subject,
        team,
        service,
        pathway,
        summary,
    } = command
    else {
        return Err(ReferralError::UnknownReferral);
    };
    let team = refs.team(&team).ok_or(ReferralError::UnknownTeam)?;
    if !team.services.contains(&service) {
        return Err(ReferralError::ServiceNotOffered);
    }
    if !pathway.needs_community_support() {
        return Err(ReferralError::PathwayNeedsNoReferral);
    }
    Ok(vec![ReferralEvent::ReferralRaised {
        referral_id,
        subject,
        team: team.code,
        service,
        pathway,
        summary,
        raised_at: now,
        response_sla_minutes: team.response_sla_minutes,
        respond_by: now + Duration::minutes(i64::from(team.response_sla_minutes)),
    }])
}

impl ReferralState {
    fn moving_to(&self, to: ReferralStatus) -> Result<(), ReferralError> {
        if self.status.can_become(to) {
            Ok(())
        } else {
            Err(ReferralError::InvalidTransition {
                from: self.status,
                to,
            })
        }
    }

    fn decide(
        &self,
        command: ReferralCommand,
        now: Instant,
    ) -> Result<ReferralEvent, ReferralError> {
        use ReferralStatus as S;
        Ok(match command {
            ReferralCommand::RaiseReferral { .. } => return Err(ReferralError::AlreadyRaised),
            ReferralCommand::AcknowledgeReferral => {
                self.moving_to(S::Received)?;
                ReferralEvent::ReferralAcknowledged { at: now }
            }
            ReferralCommand::AcceptReferral { planned_start } => {
                self.moving_to(S::Accepted)?;
                if planned_start < local_date(self.raised_at) {
                    return Err(ReferralError::PlannedStartBeforeReferral);
                }
                ReferralEvent::ReferralAccepted {
                    planned_start,
                    at: now,
                }
            }
            ReferralCommand::DeclineReferral { reason } => {
                self.moving_to(S::Rejected)?;
                ReferralEvent::ReferralDeclined { reason, at: now }
            }
            ReferralCommand::RequestInformation { question } => {
                self.moving_to(S::OnHold)?;
                ReferralEvent::InformationRequested { question, at: now }
            }
            ReferralCommand::ProvideInformation { answer } => {
                if self.status != S::OnHold {
                    return Err(ReferralError::InvalidTransition {
                        from: self.status,
                        to: S::Received,
                    });
                }
                ReferralEvent::InformationProvided { answer, at: now }
            }
            ReferralCommand::WithdrawReferral { reason } => {
                self.moving_to(S::Cancelled)?;
                ReferralEvent::ReferralWithdrawn { reason, at: now }
            }
            ReferralCommand::StartCare { at } => {
                self.moving_to(S::Completed)?;
                if is_in_future(at, now) {
                    return Err(ReferralError::InFuture { field: "at" });
                }
                if at < self.raised_at {
                    return Err(ReferralError::CareStartBeforeReferral);
                }
                ReferralEvent::CareStarted { at }
            }
            ReferralCommand::EscalateReferral => {
                if self.escalated_at.is_some() {
                    return Err(ReferralError::AlreadyEscalated);
                }
                if self.status != S::Requested {
                    return Err(ReferralError::NotAwaitingAcknowledgement);
                }
                if now < self.respond_by {
                    return Err(ReferralError::EscalationNotDue);
                }
                ReferralEvent::ReferralEscalated {
                    at: now,
                    respond_by: self.respond_by,
                }
            }
        })
    }

    fn evolve(&mut self, event: &ReferralEvent) {
        use ReferralStatus as S;
        match event {
            ReferralEvent::ReferralRaised { .. } => {}
            ReferralEvent::ReferralAcknowledged { at } => {
                self.status = S::Received;
                self.acknowledged_at = Some(*at);
            }
            ReferralEvent::ReferralAccepted { planned_start, at } => {
                self.status = S::Accepted;
                self.planned_start = Some(*planned_start);
                self.acknowledged_at.get_or_insert(*at);
            }
            ReferralEvent::ReferralDeclined { reason, at } => {
                self.status = S::Rejected;
                self.closing_reason = Some(reason.clone());
                self.acknowledged_at.get_or_insert(*at);
            }
            ReferralEvent::InformationRequested { question, at } => {
                self.status = S::OnHold;
                self.acknowledged_at.get_or_insert(*at);
                self.exchanges.push(Exchange {
                    question: question.clone(),
                    asked_at: *at,
                    answer: None,
                    answered_at: None,
                });
            }
            ReferralEvent::InformationProvided { answer, at } => {
                self.status = S::Received;
                if let Some(open) = self.exchanges.iter_mut().rev().find(|e| e.answer.is_none()) {
                    open.answer = Some(answer.clone());
                    open.answered_at = Some(*at);
                }
            }
            ReferralEvent::ReferralWithdrawn { reason, .. } => {
                self.status = S::Cancelled;
                self.closing_reason = Some(reason.clone());
            }
            ReferralEvent::CareStarted { at } => {
                self.status = S::Completed;
                self.care_started_at = Some(*at);
            }
            ReferralEvent::ReferralEscalated { at, .. } => self.escalated_at = Some(*at),
        }
    }
}

impl Decider for Referral {
    const TYPE: &'static str = "referral";
    type Command = ReferralCommand;
    type Event = ReferralEvent;
    type Error = ReferralError;
    type Services = dyn ReferenceData;

    fn decide(
        &self,
        command: ReferralCommand,
        now: Instant,
        refs: &dyn ReferenceData,
    ) -> Result<Vec<ReferralEvent>, ReferralError> {
        match (self.0.as_deref(), command) {
            (None, command @ ReferralCommand::RaiseReferral { .. }) => raise(command, now, refs),
            (None, _) => Err(ReferralError::UnknownReferral),
            (Some(state), command) => state.decide(command, now).map(|e| vec![e]),
        }
    }

    fn evolve(&mut self, event: &ReferralEvent) {
        match (&mut self.0, event) {
            (
                None,
                ReferralEvent::ReferralRaised {
                    referral_id,
                    subject,
                    team,
                    service,
                    pathway,
                    summary,
                    raised_at,
                    respond_by,
                    ..
                },
            ) => {
                self.0 = Some(Box::new(ReferralState {
                    referral_id: referral_id.clone(),
                    subject: subject.clone(),
                    team: team.clone(),
                    service: *service,
                    pathway: *pathway,
                    summary: summary.clone(),
                    raised_at: *raised_at,
                    respond_by: *respond_by,
                    status: ReferralStatus::Requested,
                    acknowledged_at: None,
                    escalated_at: None,
                    planned_start: None,
                    closing_reason: None,
                    care_started_at: None,
                    exchanges: Vec::new(),
                }));
            }
            (Some(state), event) => state.evolve(event),
            // Only a raise can start a referral; folding ignores anything else.
            (None, _) => {}
        }
    }
}
