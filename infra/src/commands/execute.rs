//! One command's life: wait for its turn, load, decide, commit, and
//! decide again after losing a race.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cqrs_es::persist::SerializedEvent;
use cqrs_es::EventStore;
use domain::{Decider, Issued};

use crate::cqrs::{EsAggregate, EsEvent};
use crate::idempotency::{self, Idempotency};
use crate::store::{BatonRepository, Database};

use super::errors::{database_failure, failure};
use super::{
    Aggregates, CommandError, CommandOptions, Committed, ConsistencyToken, DeadlinePassed, Guard,
    Store, MAX_ATTEMPTS,
};

/// Runs `work` within `deadline`, failing it as unavailable after that.
pub(super) async fn within<T, E: std::error::Error>(
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
pub(super) struct Turns([tokio::sync::Mutex<()>; 256]);

impl Turns {
    pub(super) fn new() -> Self {
        Self(std::array::from_fn(|_| tokio::sync::Mutex::new(())))
    }

    pub(super) fn of(&self, aggregate_type: &str, id: &str) -> &tokio::sync::Mutex<()> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (aggregate_type, id).hash(&mut hasher);
        &self.0[(hasher.finish() % 256) as usize]
    }
}

/// A pause before deciding again, growing with each lost race and jittered
/// so that racing processes do not collide again in step.
pub(super) fn backoff(attempt: u32) -> std::time::Duration {
    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0] % 4);
    std::time::Duration::from_millis(u64::from(attempt.min(8)) * 2 + jitter)
}

pub(super) async fn load<D: Decider>(
    store: &Store<D>,
    id: &str,
) -> Result<(D, u64), CommandError<D::Error>> {
    let context = store.load_aggregate(id).await.map_err(failure)?;
    Ok((context.aggregate.0, context.current_sequence as u64))
}

/// The stored answer to a command sent before under the same key, if any.
pub(super) async fn replay<E: std::error::Error>(
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

/// The stored answer under a key another attempt took first. The key is
/// taken, so its row is there; should it be missing, the key is reported
/// reused rather than the command run again.
pub(super) async fn answer_of_taken_key<E: std::error::Error>(
    db: &Database,
    idempotency: Option<&Idempotency>,
) -> Result<Committed, CommandError<E>> {
    replay(db, idempotency)
        .await?
        .ok_or(CommandError::KeyReused)
}

/// The answer to a command that changed nothing: under an idempotency key,
/// that answer is stored too, so a retry finds it.
async fn unchanged<D: Decider>(
    db: &Database,
    idempotency: Option<&Idempotency>,
    id: &str,
    version: u64,
) -> Result<Committed, CommandError<D::Error>> {
    if let Some(key) = idempotency {
        let stored = idempotency::store_unchanged(db, key, D::TYPE, id, version)
            .await
            .map_err(database_failure)?;
        if !stored {
            return answer_of_taken_key(db, Some(key)).await;
        }
    }
    Ok(committed::<D>(id, version, 0))
}

pub(super) async fn execute<D>(
    aggregates: &Aggregates<D>,
    repository: &BatonRepository,
    services: &Arc<D::Services>,
    id: &str,
    issued: Issued<D::Command>,
    options: CommandOptions,
    guard: Guard<'_, D>,
) -> Result<Committed, CommandError<D::Error>>
where
    D: Decider + 'static,
    D::Command: Clone,
{
    let db = repository.database();
    if !options.key_checked {
        if options.idempotency.is_some() {
            // The caller's access before its stored answer: a key proves
            // only who sent the first request, not that they may still see
            // the record.
            let context = aggregates.store.load_aggregate(id).await.map_err(failure)?;
            guard(&context.aggregate.0).map_err(CommandError::Denied)?;
        }
        if let Some(answer) = replay(db, options.idempotency.as_ref()).await? {
            return Ok(answer);
        }
    }
    let expected_version = options.expected_version;
    let metadata = match &options.idempotency {
        Some(key) => HashMap::from([(
            idempotency::METADATA_KEY.to_owned(),
            serde_json::to_string(key).map_err(|e| CommandError::Internal(Box::new(e)))?,
        )]),
        None => HashMap::new(),
    };
    let (store, recent) = (&aggregates.store, &aggregates.recent);
    // The first decision rests on the state this process remembers, or,
    // when it remembers none, on the presumption that the aggregate is new
    // (as it is for an admission or a new referral, which then need no
    // load). Any answer but a commit is given only after deciding again on a
    // fresh load (see `recent`), and so is a commit the store refused.
    let mut remembered = Some(
        recent
            .get(id)
            .unwrap_or_else(|| Arc::new((D::default(), 0))),
    );
    let mut attempt = 0;
    while attempt < MAX_ATTEMPTS {
        let from_memory = remembered.is_some();
        let seen = match remembered.take() {
            Some(seen) => seen,
            None => {
                let seen = Arc::new(load(store, id).await?);
                recent.keep(id, Arc::clone(&seen));
                seen
            }
        };
        let (state, version) = (&seen.0, seen.1);
        let decided = match guard(state) {
            Err(denied) => Err(CommandError::Denied(denied)),
            Ok(()) => match expected_version {
                Some(expected) if expected != version => {
                    Err(CommandError::VersionMismatch { current: version })
                }
                _ => domain::handle(state, issued.clone(), services.as_ref())
                    .map_err(CommandError::Refused),
            },
        };
        let events = match decided {
            Ok(events) if !events.is_empty() => events,
            _ if from_memory => continue,
            Err(error) => return Err(error),
            Ok(_) => return unchanged::<D>(db, options.idempotency.as_ref(), id, version).await,
        };
        let count = events.len();
        let mut next = state.clone();
        for event in &events {
            next.evolve(&event.event);
        }
        let events = serialize::<D>(id, version as usize, events, &metadata)?;
        let error = match repository.commit(&events).await {
            Ok(()) => {
                let version = version + count as u64;
                recent.keep(id, Arc::new((next, version)));
                return Ok(committed::<D>(id, version, count));
            }
            Err(error) => error,
        };
        // Whatever the store said (a refusal, or a failure after which the
        // commit may yet have landed), the state is no longer known here.
        recent.forget(id);
        match CommandError::from_commit(error) {
            CommandError::KeyReused => {
                // Another attempt under this key committed first.
                return answer_of_taken_key(db, options.idempotency.as_ref()).await;
            }
            // The remembered state was stale (or the aggregate not new):
            // decide again on a fresh load at once; no race was lost within
            // this process. A reservation refused to a decision on it is
            // decided again too: on what is stored, the domain may refuse
            // first, for another reason.
            CommandError::Contended | CommandError::Reservation(_) if from_memory => {}
            CommandError::Contended if expected_version.is_none() => {
                tracing::debug!(aggregate = D::TYPE, attempt, "lost a race; deciding again");
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
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
                attempt += 1;
            }
            other => return Err(other),
        }
    }
    Err(CommandError::Contended)
}

/// The events as cqrs-es would store them: numbered after `last_sequence`,
/// each with the command's metadata.
pub(super) fn serialize<D: Decider>(
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

pub(super) fn committed<D: Decider>(id: &str, version: u64, events: usize) -> Committed {
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
