//! The command bus: load an aggregate from its events, let the domain
//! decide, commit the events (with their reservations and outbox rows), and
//! answer with the new version and a consistency token.
//!
//! Concurrency: without an expected version, a commit that loses the race
//! for the next sequence number is retried from a fresh load, so the command
//! is decided again against the state that won; it succeeds if still valid,
//! or is refused by the domain. With an expected version (HTTP `If-Match`),
//! any move of the aggregate is reported instead of retried.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use cqrs_es::persist::{PersistedEventRepository, PersistedEventStore, SerializedEvent};
use cqrs_es::EventStore;
use domain::reference::ReferenceData;
use domain::referral::{Referral, ReferralCommand, ReferralError, ReferralSubject};
use domain::reservation::ReservationConflict;
use domain::spell::{Spell, SpellCommand, SpellError};
use domain::values::{Pathway, ReferralId, ServiceKind, SpellId, TeamCode, Text};
use domain::{Actor, Decider, Issued};

use crate::cqrs::{EsAggregate, EsEvent};
use crate::idempotency::{self, Idempotency};
use crate::store::{classify, BatonRepository, CommitError, Database, StoreFailure};

/// The event store of one aggregate type.
pub type Store<D> = PersistedEventStore<BatonRepository, EsAggregate<D>>;

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

/// A command ran out of time (see [`COMMAND_DEADLINE`]).
#[derive(Debug, thiserror::Error)]
#[error("the event store did not answer within {0:?}")]
pub struct DeadlinePassed(pub Duration);

/// Runs `work` within `deadline`, failing it as unavailable after that.
async fn within<T, E: std::error::Error>(
    deadline: Duration,
    work: impl std::future::Future<Output = Result<T, CommandError<E>>>,
) -> Result<T, CommandError<E>> {
    tokio::time::timeout(deadline, work)
        .await
        .unwrap_or_else(|_| {
            Err(CommandError::Unavailable(Box::new(DeadlinePassed(
                deadline,
            ))))
        })
}

/// Commands on one aggregate within this process take turns on one of these
/// locks (chosen by hashing the id), so they queue instead of racing to the
/// database and retrying. Striping bounds memory with no clean-up: two
/// aggregates sharing a stripe merely take turns.
struct Turns([tokio::sync::Mutex<()>; 256]);

impl Turns {
    fn new() -> Self {
        Self(std::array::from_fn(|_| tokio::sync::Mutex::new(())))
    }

    fn of(&self, aggregate_type: &str, id: &str) -> &tokio::sync::Mutex<()> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (aggregate_type, id).hash(&mut hasher);
        &self.0[(hasher.finish() % 256) as usize]
    }
}

/// A pause before deciding again, growing with each lost race and jittered
/// so that racing processes do not collide again in step.
fn backoff(attempt: u32) -> std::time::Duration {
    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0] % 4);
    std::time::Duration::from_millis(u64::from(attempt.min(8)) * 2 + jitter)
}

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
}

impl CommandOptions {
    /// Only an expected version.
    pub fn expecting(expected_version: Option<u64>) -> Self {
        Self {
            expected_version,
            idempotency: None,
        }
    }
}

/// Names one version of one aggregate. A read model that has applied that
/// version (or a later one) of that aggregate includes the command.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConsistencyToken {
    /// The aggregate type.
    pub aggregate_type: String,
    /// The aggregate id.
    pub aggregate_id: String,
    /// The version to wait for.
    pub version: u64,
}

impl fmt::Display for ConsistencyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{}",
            self.aggregate_type, self.aggregate_id, self.version
        )
    }
}

/// A text that is not a consistency token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a consistency token")]
pub struct BadToken;

impl FromStr for ConsistencyToken {
    type Err = BadToken;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Ids never contain '.', so the first and last dots split it.
        let (aggregate_type, rest) = s.split_once('.').ok_or(BadToken)?;
        let (aggregate_id, version) = rest.rsplit_once('.').ok_or(BadToken)?;
        if aggregate_type.is_empty() || aggregate_id.is_empty() || aggregate_id.contains('.') {
            return Err(BadToken);
        }
        Ok(Self {
            aggregate_type: aggregate_type.to_owned(),
            aggregate_id: aggregate_id.to_owned(),
            version: version.parse().map_err(|_| BadToken)?,
        })
    }
}

/// The caller may not act on the aggregate as the bus loaded it: the
/// caller's own refusal (the API's 404 or 403), carried through the bus.
#[derive(Debug, thiserror::Error)]
#[error("the caller may not act on this record")]
pub struct Denied(pub Box<dyn std::error::Error + Send + Sync>);

/// A check of the caller against the aggregate's current state, made by the
/// bus on the state it loads for the command anyway. Authorising on a
/// state loaded for the purpose cost a second load per command (measured
/// with `bench-http`), and the bus's state is the one the command is
/// decided on, so the check cannot see another.
pub type Guard<'a, D> = &'a (dyn Fn(&D) -> Result<(), Denied> + Send + Sync);

/// Why a command was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error> {
    /// The command's guard refused the caller.
    #[error(transparent)]
    Denied(Denied),
    /// The domain refused it: a rule of the aggregate.
    #[error(transparent)]
    Refused(E),
    /// A rule spanning aggregates refused it.
    #[error(transparent)]
    Reservation(ReservationConflict),
    /// `If-Match` named another version than the current one.
    #[error("the record has changed: it is at version {current}")]
    VersionMismatch {
        /// The current version.
        current: u64,
    },
    /// The id inside a creating command is not the id it was sent to: the
    /// reservations of the aggregate would name one and hold the other.
    #[error("the id in the command does not match the record it was sent to")]
    IdMismatch,
    /// The idempotency key was used before for a different request.
    #[error("this idempotency key was used for a different request")]
    KeyReused,
    /// Other commands kept winning the race for this aggregate.
    #[error("the record is being changed by others; try again")]
    Contended,
    /// The event store could not be reached.
    #[error("the event store is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Anything else: logged, never shown.
    #[error("unexpected event store failure")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl<E: std::error::Error> CommandError<E> {
    fn from_failure(failure: StoreFailure) -> Self {
        match failure {
            StoreFailure::Unavailable(e) => CommandError::Unavailable(e),
            StoreFailure::Unexpected(e) => CommandError::Internal(e),
        }
    }

    fn from_commit(error: CommitError) -> Self {
        match error {
            CommitError::Conflict => CommandError::Contended,
            // Answered from the stored row by `execute`; reaching here means
            // the row vanished between the two, which cannot happen.
            CommitError::KeyTaken => CommandError::KeyReused,
            CommitError::Reservation(conflict) => CommandError::Reservation(conflict),
            CommitError::Unavailable(e) => CommandError::Unavailable(Box::new(e)),
            other => CommandError::Internal(Box::new(other)),
        }
    }

    /// Maps the domain refusal, keeping every other kind.
    pub fn map_refusal<F: std::error::Error>(self, f: impl FnOnce(E) -> F) -> CommandError<F> {
        match self {
            CommandError::Denied(d) => CommandError::Denied(d),
            CommandError::Refused(e) => CommandError::Refused(f(e)),
            CommandError::Reservation(c) => CommandError::Reservation(c),
            CommandError::VersionMismatch { current } => CommandError::VersionMismatch { current },
            CommandError::IdMismatch => CommandError::IdMismatch,
            CommandError::KeyReused => CommandError::KeyReused,
            CommandError::Contended => CommandError::Contended,
            CommandError::Unavailable(e) => CommandError::Unavailable(e),
            CommandError::Internal(e) => CommandError::Internal(e),
        }
    }
}

/// Why a referral could not be raised: the spell's rule or the referral's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RaiseRefusal {
    /// The spell cannot be referred (unknown, discharged, cancelled).
    #[error(transparent)]
    Spell(SpellError),
    /// The referral itself was refused.
    #[error(transparent)]
    Referral(ReferralError),
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
    spells: Arc<Store<Spell>>,
    referrals: Arc<Store<Referral>>,
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
            spells: Arc::new(PersistedEventStore::new_event_store(repository.clone())),
            referrals: Arc::new(PersistedEventStore::new_event_store(repository)),
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

    /// Executes a command once the aggregate's turn comes, within the
    /// deadline.
    async fn take_turn<D>(
        &self,
        store: &Store<D>,
        id: &str,
        command: Issued<D::Command>,
        options: CommandOptions,
        guard: Guard<'_, D>,
    ) -> Result<Committed, CommandError<D::Error>>
    where
        D: Decider<Services = dyn ReferenceData>,
        D::Command: Clone,
    {
        within(self.deadline, async {
            let _turn = self.turns.of(D::TYPE, id).lock().await;
            execute(
                store,
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

    /// A spell's current state and version.
    pub async fn load_spell(&self, id: &SpellId) -> Result<(Spell, u64), CommandError<SpellError>> {
        load(&self.spells, id.as_str()).await
    }

    /// A referral's current state and version.
    pub async fn load_referral(
        &self,
        id: &ReferralId,
    ) -> Result<(Referral, u64), CommandError<ReferralError>> {
        load(&self.referrals, id.as_str()).await
    }
}

async fn load<D: Decider>(store: &Store<D>, id: &str) -> Result<(D, u64), CommandError<D::Error>> {
    let context = store.load_aggregate(id).await.map_err(failure)?;
    Ok((context.aggregate.0, context.current_sequence as u64))
}

fn failure<E: std::error::Error>(error: cqrs_es::AggregateError<E>) -> CommandError<E> {
    match classify(error) {
        Ok(failure) => CommandError::from_failure(failure),
        Err(refusal) => CommandError::Refused(refusal),
    }
}

fn database_failure<E: std::error::Error>(e: sqlx::Error) -> CommandError<E> {
    if crate::store::is_unavailable(&e) {
        CommandError::Unavailable(Box::new(e))
    } else {
        CommandError::Internal(Box::new(e))
    }
}

/// The stored answer to a command sent before under the same key, if any.
async fn replay<E: std::error::Error>(
    db: &Database,
    idempotency: Option<&Idempotency>,
) -> Result<Option<Committed>, CommandError<E>> {
    let Some(key) = idempotency else {
        return Ok(None);
    };
    let stored = idempotency::lookup(db, &key.principal, &key.key)
        .await
        .map_err(database_failure)?;
    match stored {
        None => Ok(None),
        Some(stored) if stored.fingerprint != key.fingerprint => Err(CommandError::KeyReused),
        Some(stored) => Ok(Some(Committed {
            token: ConsistencyToken {
                aggregate_type: stored.aggregate_type,
                aggregate_id: stored.aggregate_id.clone(),
                version: stored.version,
            },
            aggregate_id: stored.aggregate_id,
            version: stored.version,
            events: 0,
            replayed: Some(stored.extra),
        })),
    }
}

async fn execute<D>(
    store: &Store<D>,
    repository: &BatonRepository,
    services: &Arc<D::Services>,
    id: &str,
    issued: Issued<D::Command>,
    options: CommandOptions,
    guard: Guard<'_, D>,
) -> Result<Committed, CommandError<D::Error>>
where
    D: Decider,
    D::Command: Clone,
{
    if options.idempotency.is_some() {
        // The caller's access before its stored answer: a key proves only
        // who sent the first request, not that they may still see the record.
        let context = store.load_aggregate(id).await.map_err(failure)?;
        guard(&context.aggregate.0).map_err(CommandError::Denied)?;
    }
    let db = repository.database();
    if let Some(answer) = replay(db, options.idempotency.as_ref()).await? {
        return Ok(answer);
    }
    let expected_version = options.expected_version;
    let metadata = match &options.idempotency {
        Some(key) => HashMap::from([(
            idempotency::METADATA_KEY.to_owned(),
            serde_json::to_string(key).map_err(|e| CommandError::Internal(Box::new(e)))?,
        )]),
        None => HashMap::new(),
    };
    for attempt in 0..MAX_ATTEMPTS {
        let context = store.load_aggregate(id).await.map_err(failure)?;
        let version = context.current_sequence as u64;
        guard(&context.aggregate.0).map_err(CommandError::Denied)?;
        if let Some(expected) = expected_version {
            if expected != version {
                return Err(CommandError::VersionMismatch { current: version });
            }
        }
        let events = domain::handle(&context.aggregate.0, issued.clone(), services.as_ref())
            .map_err(CommandError::Refused)?;
        if events.is_empty() {
            if let Some(key) = &options.idempotency {
                let stored = idempotency::store_unchanged(db, key, D::TYPE, id, version)
                    .await
                    .map_err(database_failure)?;
                if !stored {
                    return match replay(db, Some(key)).await? {
                        Some(answer) => Ok(answer),
                        None => Err(CommandError::KeyReused),
                    };
                }
            }
            return Ok(committed::<D>(id, version, 0));
        }
        let count = events.len();
        let events = serialize::<D>(id, context.current_sequence, events, &metadata)?;
        match repository.commit(&events).await {
            Ok(()) => return Ok(committed::<D>(id, version + count as u64, count)),
            Err(error) => match CommandError::from_commit(error) {
                CommandError::KeyReused => {
                    // Another attempt under this key committed first.
                    return match replay(db, options.idempotency.as_ref()).await? {
                        Some(answer) => Ok(answer),
                        None => Err(CommandError::KeyReused),
                    };
                }
                CommandError::Contended if expected_version.is_none() => {
                    tracing::debug!(aggregate = D::TYPE, attempt, "lost a race; deciding again");
                    tokio::time::sleep(backoff(attempt)).await;
                }
                CommandError::Contended => {
                    // Someone committed since our load: report their version.
                    // A deadlock or busy database also lands here while the
                    // version is unchanged: then decide again.
                    let current = load(store, id).await?.1;
                    if Some(current) != expected_version {
                        return Err(CommandError::VersionMismatch { current });
                    }
                    tokio::time::sleep(backoff(attempt)).await;
                }
                other => return Err(other),
            },
        }
    }
    Err(CommandError::Contended)
}

/// The events as cqrs-es would store them: numbered after `last_sequence`,
/// each with the command's metadata.
fn serialize<D: Decider>(
    id: &str,
    last_sequence: usize,
    events: Vec<domain::Recorded<D::Event>>,
    metadata: &HashMap<String, String>,
) -> Result<Vec<SerializedEvent>, CommandError<D::Error>> {
    events
        .into_iter()
        .zip(last_sequence + 1..)
        .map(|(event, sequence)| {
            let envelope = cqrs_es::EventEnvelope::<EsAggregate<D>> {
                aggregate_id: id.to_owned(),
                sequence,
                payload: EsEvent(event),
                metadata: metadata.clone(),
            };
            SerializedEvent::try_from(&envelope).map_err(|e| CommandError::Internal(Box::new(e)))
        })
        .collect()
}

fn committed<D: Decider>(id: &str, version: u64, events: usize) -> Committed {
    Committed {
        aggregate_id: id.to_owned(),
        version,
        events,
        token: ConsistencyToken {
            aggregate_type: D::TYPE.to_owned(),
            aggregate_id: id.to_owned(),
            version,
        },
        replayed: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
