//! Two patients swap beds (HL7 v2 ADT A17): two transfers, each into the
//! bed the other leaves, committed in one transaction. Committed apart,
//! neither could go first, since each claims a bed the other still holds;
//! in one commit the store releases both beds before claiming them (see
//! `BatonRepository::commit`).

use std::collections::HashMap;

use domain::spell::{Spell, SpellCommand, SpellError};
use domain::values::{BedLabel, Instant, SpellId, WardCode};
use domain::{Actor, Decider, Issued};

use super::errors::failure;
use super::execute::{answer_of_taken_key, backoff, committed, replay, serialize, within};
use super::{CommandBus, CommandError, CommandOptions, Committed, MAX_ATTEMPTS};
use crate::idempotency;

/// One side of a swap: a spell and the bed it moves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swap {
    pub spell: SpellId,
    pub ward: WardCode,
    pub bed: BedLabel,
}

impl CommandBus {
    /// Moves each spell into its new bed (the other's) at `at` (the
    /// clinical time; the recording clock is now), both or neither.
    /// Answers the second spell's commit.
    pub async fn swap_beds(
        &self,
        first: Swap,
        second: Swap,
        by: Actor,
        at: Instant,
        options: CommandOptions,
    ) -> Result<Committed, CommandError<SpellError>> {
        within(self.deadline, async {
            if !options.key_checked {
                if let Some(answer) = replay(&self.db, options.idempotency.as_ref()).await? {
                    return Ok(answer);
                }
            }
            let a = self.turns.of(Spell::TYPE, first.spell.as_str());
            let b = self.turns.of(Spell::TYPE, second.spell.as_str());
            // Two stripes are always locked in the same order, so two swaps
            // cannot each hold one and wait for the other.
            let (one, two) = if (a as *const _ as usize) <= (b as *const _ as usize) {
                (a, b)
            } else {
                (b, a)
            };
            let _one = one.lock().await;
            let _two = if std::ptr::eq(one, two) {
                None
            } else {
                Some(two.lock().await)
            };
            let swapped = self.swap_now(&first, &second, &by, at, &options).await;
            // The swap commits both spells past what this process last saw
            // of them (or may have, after a failure).
            self.spells.recent.forget(first.spell.as_str());
            self.spells.recent.forget(second.spell.as_str());
            swapped
        })
        .await
    }

    async fn swap_now(
        &self,
        first: &Swap,
        second: &Swap,
        by: &Actor,
        at: Instant,
        options: &CommandOptions,
    ) -> Result<Committed, CommandError<SpellError>> {
        let metadata = match &options.idempotency {
            Some(key) => HashMap::from([(
                idempotency::METADATA_KEY.to_owned(),
                serde_json::to_string(key).map_err(|e| CommandError::Internal(Box::new(e)))?,
            )]),
            None => HashMap::new(),
        };
        for attempt in 0..MAX_ATTEMPTS {
            let mut events = Vec::new();
            let mut last = None;
            for (index, side) in [first, second].into_iter().enumerate() {
                let context =
                    cqrs_es::EventStore::load_aggregate(&self.spells.store, side.spell.as_str())
                        .await
                        .map_err(failure)?;
                let command = SpellCommand::TransferPatient {
                    ward: side.ward.clone(),
                    bed: side.bed.clone(),
                    at,
                };
                let decided = domain::handle(
                    &context.aggregate.0,
                    Issued::new(by.clone(), chrono::Utc::now(), command),
                    self.reference.as_ref(),
                )
                .map_err(CommandError::Refused)?;
                let count = decided.len();
                // The key rides on the first event of the commit only.
                let empty = HashMap::new();
                let meta = if index == 0 { &metadata } else { &empty };
                events.extend(serialize::<Spell>(
                    side.spell.as_str(),
                    context.current_sequence,
                    decided,
                    meta,
                )?);
                last = Some((
                    side.spell.clone(),
                    context.current_sequence as u64 + count as u64,
                    count,
                ));
            }
            let Some((spell, version, count)) = last else {
                return Err(CommandError::Contended);
            };
            match self.repository.commit(&events).await {
                Ok(()) => return Ok(committed::<Spell>(spell.as_str(), version, count)),
                Err(error) => match CommandError::from_commit(error) {
                    CommandError::KeyReused => {
                        return answer_of_taken_key(&self.db, options.idempotency.as_ref()).await;
                    }
                    CommandError::Contended => {
                        tracing::debug!(attempt, "a bed swap lost a race; deciding again");
                        tokio::time::sleep(backoff(attempt)).await;
                    }
                    other => return Err(other),
                },
            }
        }
        Err(CommandError::Contended)
    }
}
