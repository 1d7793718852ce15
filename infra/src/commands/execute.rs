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
    CommandError, CommandOptions, Committed, ConsistencyToken, DeadlinePassed, Guard, Store,
    MAX_ATTEMPTS,
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

pub(super) async fn execute<D>(
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
    let db = repository.database();
    if !options.key_checked {
        if options.idempotency.is_some() {
            // The caller's access before its stored answer: a key proves
            // only who sent the first request, not that they may still see
            // the record.
            let context = store.load_aggregate(id).await.map_err(failure)?;
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
