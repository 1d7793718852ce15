//! The command bus: load an aggregate from its events, let the domain
//! decide, commit the events (with their reservations and outbox rows), and
//! answer with the new version and a consistency token.
//!
//! Concurrency: without an expected version, a commit that loses the race
//! for the next sequence number is retried from a fresh load, so the command
//! is decided again against the state that won; it succeeds if still valid,
//! or is refused by the domain. With an expected version (HTTP `If-Match`),
//! any move of the aggregate is reported instead of retried.

mod errors;
mod execute;
mod recent;
mod swap;
mod token;

pub use errors::{CommandError, DeadlinePassed, Denied, Guard, RaiseRefusal};
pub use swap::Swap;
pub use token::{BadToken, ConsistencyToken};

use errors::failure;
use execute::{execute, load, replay, within, Turns};

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use cqrs_es::persist::{PersistedEventRepository, PersistedEventStore, SerializedEvent};
use domain::access::{AccessCommand, AccessError, StaffAccess};
use domain::reference::ReferenceData;
use domain::referral::{Referral, ReferralCommand, ReferralError, ReferralSubject};
use domain::spell::{Spell, SpellCommand, SpellError};
use domain::values::{Pathway, ReferralId, ServiceKind, SpellId, TeamCode, Text};
use domain::{Actor, Decider, Issued};

use crate::cqrs::EsAggregate;
use crate::idempotency::Idempotency;
use crate::store::{BatonRepository, Database};

/// The event store of one aggregate type.
pub type Store<D> = PersistedEventStore<BatonRepository, EsAggregate<D>>;

/// One aggregate type's event store, and the states this process last saw.
pub(crate) struct Aggregates<D: Decider> {
    store: Store<D>,
    recent: recent::Recent<D>,
}

impl<D: Decider + 'static> Aggregates<D> {
    fn new(repository: BatonRepository) -> Self {
        Self {
            store: PersistedEventStore::new_event_store(repository),
            recent: recent::Recent::new(),
        }
    }
}

/// How many times a command is decided again after losing a race with
/// another process (within one process, commands on one aggregate queue).
pub const MAX_ATTEMPTS: u32 = 16;

/// How long a command may take, waiting for its turn included, before it
/// fails as unavailable. Pooled connections used within the last second
/// are not pinged before use (`store::PING_WHEN_IDLE_FOR`), so a network
/// that silently drops packets would otherwise hold a command until TCP
/// gives up, which takes minutes. A command that times out during its commit
/// may still have been stored: a retry with the same `Idempotency-Key`
/// finds the first answer.
pub const COMMAND_DEADLINE: Duration = Duration::from_secs(10);

/// What a successful command answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The aggregate's id.
    pub aggregate_id: String,
    /// Its version after the command (the sequence of its last event).
    pub version: u64,
    /// How many events the command recorded (0 when nothing changed).
    pub events: usize,
    /// Awaitable by board reads: they answer once they include this version.
    pub token: ConsistencyToken,
    /// `Some(extra)` when this is the stored answer to an earlier command
    /// with the same idempotency key (nothing was recorded this time).
    pub replayed: Option<serde_json::Value>,
}

/// How a command is to be carried out.
#[derive(Debug, Clone, Default)]
pub struct CommandOptions {
    /// Refuse unless the aggregate is at this version (HTTP `If-Match`).
    pub expected_version: Option<u64>,
    /// Record at most once under this key (HTTP `Idempotency-Key`).
    pub idempotency: Option<Idempotency>,
    /// The caller looked the key up itself just now and found nothing, and
    /// has no one's access to check on the record (the PAS feed): the bus
    /// neither loads the record to check the caller before a stored answer
    /// nor looks the key up again. The commit still refuses a key taken
    /// meanwhile, and the bus then answers from the stored row.
    pub key_checked: bool,
}

impl CommandOptions {
    /// Only an expected version.
    pub fn expecting(expected_version: Option<u64>) -> Self {
        Self {
            expected_version,
            ..Self::default()
        }
    }
}

/// What raising a referral needs.
#[derive(Debug, Clone)]
pub struct RaiseReferral {
    /// The new referral's id.
    pub referral_id: ReferralId,
    /// The spell it hands over.
    pub spell_id: SpellId,
    /// The team it goes to.
    pub team: TeamCode,
    /// The service asked for.
    pub service: ServiceKind,
    /// The discharge pathway.
    pub pathway: Pathway,
    /// What the team needs to know.
    pub summary: Text,
}

/// Loads, decides and commits commands for every aggregate.
#[derive(Clone)]
pub struct CommandBus {
    db: Database,
    repository: BatonRepository,
    spells: Arc<Aggregates<Spell>>,
    referrals: Arc<Aggregates<Referral>>,
    access: Arc<Aggregates<StaffAccess>>,
    reference: Arc<dyn ReferenceData>,
    turns: Arc<Turns>,
    deadline: Duration,
}

impl fmt::Debug for CommandBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CommandBus")
    }
}

impl CommandBus {
    /// A bus over `repository`, deciding against `reference` data.
    pub fn new(repository: BatonRepository, reference: Arc<dyn ReferenceData>) -> Self {
        Self {
            db: repository.database().clone(),
            repository: repository.clone(),
            spells: Arc::new(Aggregates::new(repository.clone())),
            referrals: Arc::new(Aggregates::new(repository.clone())),
            access: Arc::new(Aggregates::new(repository)),
            reference,
            turns: Arc::new(Turns::new()),
            deadline: COMMAND_DEADLINE,
        }
    }

    /// The same bus with another deadline per command (tests shorten it).
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Executes a spell command.
    pub async fn spell(
        &self,
        id: &SpellId,
        command: Issued<SpellCommand>,
        expected_version: Option<u64>,
    ) -> Result<Committed, CommandError<SpellError>> {
        self.spell_with(id, command, CommandOptions::expecting(expected_version))
            .await
    }

    /// Executes a spell command with options.
    pub async fn spell_with(
        &self,
        id: &SpellId,
        command: Issued<SpellCommand>,
        options: CommandOptions,
    ) -> Result<Committed, CommandError<SpellError>> {
        self.spell_guarded(id, command, options, &|_| Ok(())).await
    }

    /// Executes a spell command with options, if `guard` lets the caller
    /// act on the spell as loaded.
    pub async fn spell_guarded(
        &self,
        id: &SpellId,
        command: Issued<SpellCommand>,
        options: CommandOptions,
        guard: Guard<'_, Spell>,
    ) -> Result<Committed, CommandError<SpellError>> {
        if let SpellCommand::AdmitPatient { spell_id, .. } = &command.command {
            if spell_id != id {
                return Err(CommandError::IdMismatch);
            }
        }
        self.take_turn(&self.spells, id.as_str(), command, options, guard)
            .await
    }

    /// Executes a referral command.
    pub async fn referral(
        &self,
        id: &ReferralId,
        command: Issued<ReferralCommand>,
        expected_version: Option<u64>,
    ) -> Result<Committed, CommandError<ReferralError>> {
        self.referral_with(id, command, CommandOptions::expecting(expected_version))
            .await
    }

    /// Executes a referral command with options.
    pub async fn referral_with(
        &self,
        id: &ReferralId,
        command: Issued<ReferralCommand>,
        options: CommandOptions,
    ) -> Result<Committed, CommandError<ReferralError>> {
        self.referral_guarded(id, command, options, &|_| Ok(()))
            .await
    }

    /// Executes a referral command with options, if `guard` lets the caller
    /// act on the referral as loaded.
    pub async fn referral_guarded(
        &self,
        id: &ReferralId,
        command: Issued<ReferralCommand>,
        options: CommandOptions,
        guard: Guard<'_, Referral>,
    ) -> Result<Committed, CommandError<ReferralError>> {
        if let ReferralCommand::RaiseReferral { referral_id, .. } = &command.command {
            if referral_id != id {
                return Err(CommandError::IdMismatch);
            }
        }
        self.take_turn(&self.referrals, id.as_str(), command, options, guard)
            .await
    }

    /// Records an admin's grant or revocation of a user's access (the
    /// aggregate's id is [`access_id`] of the user).
    pub async fn access(
        &self,
        command: Issued<AccessCommand>,
        options: CommandOptions,
    ) -> Result<Committed, CommandError<AccessError>> {
        let sub = match &command.command {
            AccessCommand::Grant { sub, .. } | AccessCommand::Revoke { sub, .. } => sub.clone(),
        };
        self.take_turn(
            &self.access,
            &access_id(&sub),
            command,
            options,
            &|_| Ok(()),
        )
        .await
    }

    /// Executes a command once the aggregate's turn comes, within the
    /// deadline.
    async fn take_turn<D>(
        &self,
        aggregates: &Aggregates<D>,
        id: &str,
        command: Issued<D::Command>,
        options: CommandOptions,
        guard: Guard<'_, D>,
    ) -> Result<Committed, CommandError<D::Error>>
    where
        D: Decider<Services = dyn ReferenceData> + 'static,
        D::Command: Clone,
    {
        within(self.deadline, async {
            let _turn = self.turns.of(D::TYPE, id).lock().await;
            execute(
                aggregates,
                &self.repository,
                &self.reference,
                id,
                command,
                options,
                guard,
            )
            .await
        })
        .await
    }

    /// Raises a referral for a spell: the spell must be open now (a clear
    /// refusal in the common case) and at commit (the reservation closes the
    /// race with a discharge committed in between).
    #[allow(clippy::too_many_arguments)]
    pub async fn raise_referral(
        &self,
        referral_id: &ReferralId,
        spell_id: &SpellId,
        team: TeamCode,
        service: ServiceKind,
        pathway: Pathway,
        summary: Text,
        by: Actor,
        at: domain::values::Instant,
    ) -> Result<Committed, CommandError<RaiseRefusal>> {
        let raise = RaiseReferral {
            referral_id: referral_id.clone(),
            spell_id: spell_id.clone(),
            team,
            service,
            pathway,
            summary,
        };
        self.raise_referral_with(raise, by, at, CommandOptions::default())
            .await
    }

    /// Raises a referral, with options (an idempotency key).
    pub async fn raise_referral_with(
        &self,
        raise: RaiseReferral,
        by: Actor,
        at: domain::values::Instant,
        options: CommandOptions,
    ) -> Result<Committed, CommandError<RaiseRefusal>> {
        let RaiseReferral {
            referral_id,
            spell_id,
            team,
            service,
            pathway,
            summary,
        } = raise;
        let referral_id = &referral_id;
        if let Some(answer) = replay(&self.db, options.idempotency.as_ref()).await? {
            return Ok(answer);
        }
        let (spell, _) = within(self.deadline, self.load_spell(&spell_id))
            .await
            .map_err(|e| e.map_refusal(RaiseRefusal::Spell))?;
        let subject: ReferralSubject = spell
            .referral_subject()
            .map_err(|e| CommandError::Refused(RaiseRefusal::Spell(e)))?;
        let command = ReferralCommand::RaiseReferral {
            referral_id: referral_id.clone(),
            subject,
            team,
            service,
            pathway,
            summary,
        };
        self.referral_with(referral_id, Issued::new(by, at, command), options)
            .await
            .map_err(|e| e.map_refusal(RaiseRefusal::Referral))
    }

    /// Every stored event of a spell, oldest first (empty when unknown).
    pub async fn spell_history(
        &self,
        id: &SpellId,
    ) -> Result<Vec<SerializedEvent>, CommandError<SpellError>> {
        self.repository
            .get_events::<EsAggregate<Spell>>(id.as_str())
            .await
            .map_err(|e| failure(cqrs_es::AggregateError::from(e)))
    }

    /// Every stored event of a referral, oldest first (empty when unknown).
    pub async fn referral_history(
        &self,
        id: &ReferralId,
    ) -> Result<Vec<SerializedEvent>, CommandError<ReferralError>> {
        self.repository
            .get_events::<EsAggregate<Referral>>(id.as_str())
            .await
            .map_err(|e| failure(cqrs_es::AggregateError::from(e)))
    }

    /// A spell's current state and version.
    pub async fn load_spell(&self, id: &SpellId) -> Result<(Spell, u64), CommandError<SpellError>> {
        load(&self.spells.store, id.as_str()).await
    }

    /// What `f` makes of the spell as this process last saw it, if it
    /// remembers it. That may be stale (another process may have committed
    /// since), so it is fit only for what cannot have changed since (a
    /// spell's hospital: a transfer to another is refused), or for a version
    /// the caller then passes as the expected one, so that the commit proves
    /// it current or the caller is told it moved.
    pub fn with_last_seen_spell<T>(
        &self,
        id: &SpellId,
        f: impl FnOnce(&Spell, u64) -> T,
    ) -> Option<T> {
        self.spells
            .recent
            .get(id.as_str())
            .map(|seen| f(&seen.0, seen.1))
    }

    /// A referral's current state and version.
    pub async fn load_referral(
        &self,
        id: &ReferralId,
    ) -> Result<(Referral, u64), CommandError<ReferralError>> {
        load(&self.referrals.store, id.as_str()).await
    }
}

/// The id of a user's access record: a digest of their `sub`, which may
/// hold any character (`auth0|123`, an e-mail address) while aggregate ids,
/// consistency tokens and stream subjects hold no dots or spaces.
pub fn access_id(sub: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(sub.as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Folds an aggregate's stored events (as [`CommandBus::spell_history`] gives
/// them) in order, each through its upcaster, up to and including sequence
/// `until` when given; `each` sees the state after every event, with the
/// event's sequence and recording time. FHIR's `_history` and its
/// notifications of a past event are the same replay.
pub fn fold_history<A: Decider>(
    events: &[SerializedEvent],
    until: Option<u64>,
    mut each: impl FnMut(&A, u64, domain::values::Instant),
) -> Result<A, domain::upcast::ReadError> {
    let mut state = A::default();
    for stored in events {
        let sequence = stored.sequence as u64;
        if until.is_some_and(|last| sequence > last) {
            break;
        }
        let recorded = domain::upcast::read::<A::Event>(
            &stored.event_type,
            &stored.event_version,
            std::borrow::Cow::Borrowed(&stored.payload),
        )?;
        state.evolve(&recorded.event);
        each(&state, sequence, recorded.recorded_at);
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stored access events at sequences 1, 2 and 3: granted, revoked,
    /// granted again.
    fn stored_access_history() -> Vec<SerializedEvent> {
        use domain::access::{AccessEvent, GrantedAccess};
        let granted = AccessEvent::AccessGranted {
            sub: "u-1".into(),
            name: "Una".into(),
            access: GrantedAccess {
                role: "system".into(),
                hospital: None,
                trust: None,
                team: None,
                hub: None,
            },
            reason: None,
        };
        let revoked = AccessEvent::AccessRevoked {
            sub: "u-1".into(),
            reason: None,
        };
        [granted.clone(), revoked, granted]
            .into_iter()
            .enumerate()
            .map(|(i, event)| {
                let recorded = domain::decider::Recorded {
                    by: domain::decider::Actor::new("admin", "Admin"),
                    recorded_at: format!("2026-12-0{}T10:00:00Z", i + 1).parse().unwrap(),
                    event,
                };
                SerializedEvent {
                    aggregate_id: "u-1".into(),
                    sequence: i + 1,
                    aggregate_type: "access".into(),
                    event_type: domain::decider::DomainEvent::event_type(&recorded.event).into(),
                    event_version: "1".into(),
                    payload: serde_json::to_value(&recorded).unwrap(),
                    metadata: serde_json::Value::Null,
                }
            })
            .collect()
    }

    #[test]
    fn a_history_folded_until_a_sequence_includes_that_event_and_none_after() {
        use domain::access::{AccessNow, StaffAccess};
        let events = stored_access_history();
        let mut seen = Vec::new();
        let state: StaffAccess =
            fold_history(&events, Some(2), |state: &StaffAccess, sequence, at| {
                seen.push((sequence, at.date_naive().to_string(), state.now.clone()));
            })
            .unwrap();
        assert_eq!(state.now, AccessNow::Revoked);
        assert_eq!(seen.len(), 2);
        assert_eq!((seen[1].0, seen[1].1.as_str()), (2, "2026-12-02"));
        assert_eq!(seen[1].2, AccessNow::Revoked);
        let whole: StaffAccess = fold_history(&events, None, |_: &StaffAccess, _, _| {}).unwrap();
        assert!(matches!(whole.now, AccessNow::Granted(_)));
        let first: StaffAccess =
            fold_history(&events, Some(1), |_: &StaffAccess, _, _| {}).unwrap();
        assert!(matches!(first.now, AccessNow::Granted(_)));
    }

    #[test]
    fn a_history_with_an_event_of_an_unknown_version_is_an_error_not_a_default() {
        let mut events = stored_access_history();
        events[1].event_version = "9".into();
        let folded = fold_history::<domain::access::StaffAccess>(&events, None, |_, _, _| {});
        assert!(matches!(
            folded,
            Err(domain::upcast::ReadError::UnknownVersion { ref version, .. }) if version == "9"
        ));
    }

    /// Every kind of spell event, in a stay's order: the state the bus keeps
    /// after each command must be the one its stored events fold to, or a
    /// command would decide on a state nobody stored.
    #[tokio::test]
    async fn what_the_bus_remembers_of_a_spell_after_each_command_is_what_its_stored_events_give() {
        use crate::cqrs::tests::{catalogue, issued};
        use crate::store::ReservationRules;
        use domain::spell::Patient;
        use domain::values::{
            BedLabel, DelayId, DelayReasonCode, Destination, NhsNumber, PersonName, WardCode,
        };
        let dir = tempfile::tempdir().unwrap();
        let db = Database::sqlite(dir.path()).await.unwrap();
        db.migrate().await.unwrap();
        let bus = CommandBus::new(
            BatonRepository::new(db, ReservationRules::baton()),
            catalogue(),
        );
        let at = |hour: u32| format!("2026-03-01T{hour:02}:00:00Z").parse().unwrap();
        let text = |t: &str| Text::parse(t).unwrap();
        let patient = |family: &str| Patient {
            nhs_number: NhsNumber::parse("9912003888").unwrap(),
            family_name: PersonName::parse(family).unwrap(),
            given_name: PersonName::parse("Ada").unwrap(),
            date_of_birth: "1940-05-01".parse().unwrap(),
        };
        let id = SpellId::parse("s1").unwrap();
        let stay = [
            SpellCommand::AdmitPatient {
                spell_id: id.clone(),
                patient: patient("Smith"),
                ward: WardCode::parse("W1").unwrap(),
                bed: BedLabel::parse("2").unwrap(),
                admitted_at: at(9),
                visit_number: None,
            },
            SpellCommand::SetExpectedDischargeDate {
                date: "2026-03-04".parse().unwrap(),
            },
            SpellCommand::RecordCriteriaReview {
                meets_criteria_to_reside: false,
                at: at(10),
            },
            SpellCommand::SetDischargePathway {
                pathway: Pathway::P1,
            },
            SpellCommand::RecordDelay {
                reason_code: DelayReasonCode::parse("8").unwrap(),
                note: Some(text("awaiting a package of care")),
                at: at(11),
            },
            SpellCommand::ResolveDelay {
                delay_id: DelayId::parse("D1").unwrap(),
                at: at(12),
            },
            SpellCommand::TransferPatient {
                ward: WardCode::parse("W1").unwrap(),
                bed: BedLabel::parse("3").unwrap(),
                at: at(13),
            },
            SpellCommand::CancelTransfer {
                reason: text("wrong bed"),
            },
            SpellCommand::CorrectPatientDetails {
                patient: patient("Smyth"),
            },
            SpellCommand::DischargePatient {
                at: at(14),
                destination: Destination::UsualResidence,
            },
            SpellCommand::CancelDischarge {
                reason: text("wrong patient"),
            },
            SpellCommand::DischargePatient {
                at: at(15),
                destination: Destination::UsualResidenceWithSupport,
            },
        ];
        for command in stay {
            let what = format!("{command:?}");
            let committed = bus.spell(&id, issued(command), None).await.unwrap();
            assert_eq!(committed.events, 1, "{what}");
            let remembered = bus.spells.recent.get(id.as_str()).unwrap();
            let (stored, version) = bus.load_spell(&id).await.unwrap();
            assert_eq!(remembered.1, version, "{what}");
            assert_eq!(
                serde_json::to_value(&remembered.0).unwrap(),
                serde_json::to_value(&stored).unwrap(),
                "{what}"
            );
        }
    }

    #[test]
    fn a_consistency_token_round_trips_through_text() {
        let token = ConsistencyToken {
            aggregate_type: "spell".into(),
            aggregate_id: "0b7c-x_1".into(),
            version: 12,
        };
        assert_eq!(token.to_string(), "spell.0b7c-x_1.12");
        assert_eq!(token.to_string().parse::<ConsistencyToken>(), Ok(token));
        for bad in [
            "",
            "spell",
            "spell.x",
            "spell.x.y",
            ".x.1",
            "spell..1",
            "a.b.c.1",
        ] {
            assert_eq!(bad.parse::<ConsistencyToken>(), Err(BadToken), "{bad}");
        }
    }
}
