//! The SLA clock: a referral not acknowledged within its team's
//! `response_sla_minutes` is escalated by an event.
//!
//! Every process runs the clock over its own boards, so escalation does not
//! depend on any one process being up. It still happens exactly once: the
//! referral itself refuses a second escalation, and two processes that race
//! to escalate the same referral race for the same sequence number, so one
//! commit wins and the other is decided again and refused.

use std::sync::Arc;
use std::time::Duration;

use crate::commands::{CommandBus, CommandError};
use domain::referral::{ReferralCommand, ReferralError, ReferralStatus};
use domain::values::{Instant, ReferralId};
use domain::{Actor, Issued};
use tokio::sync::watch;

use crate::runner::Boards;

/// Who escalations are recorded as caused by.
pub fn clock_actor() -> Actor {
    Actor::new("baton-sla-clock", "SLA clock")
}

/// Referrals due for escalation at `now`, by the boards.
pub fn due(boards: &Boards, now: Instant) -> Vec<String> {
    boards.read(|flow| {
        flow.referrals()
            .filter(|(_, r)| {
                r.status == ReferralStatus::Requested
                    && r.escalated_at.is_none()
                    && r.respond_by <= now
            })
            .map(|(id, _)| id.to_owned())
            .collect()
    })
}

/// Escalates every referral due at `now`; returns how many this call escalated.
pub async fn escalate_due(boards: &Boards, bus: &CommandBus, now: Instant) -> usize {
    let mut escalated = 0;
    for id in due(boards, now) {
        let Ok(referral) = ReferralId::parse(&id) else {
            continue;
        };
        let command = Issued::new(clock_actor(), now, ReferralCommand::EscalateReferral);
        match bus.referral(&referral, command, None).await {
            Ok(_) => escalated += 1,
            // Another process got there first, or the team answered since.
            Err(CommandError::Refused(
                ReferralError::AlreadyEscalated
                | ReferralError::NotAwaitingAcknowledgement
                | ReferralError::EscalationNotDue,
            )) => {}
            Err(error) => tracing::warn!(%error, referral = %id, "could not escalate"),
        }
    }
    escalated
}

/// Runs the clock every `every` until `shutdown`.
pub async fn run(
    boards: Arc<Boards>,
    bus: Arc<CommandBus>,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                let n = escalate_due(&boards, &bus, chrono::Utc::now()).await;
                if n > 0 {
                    tracing::info!(escalated = n, "referrals escalated past their SLA");
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}
