//! The state this process last saw of each aggregate it worked on, so that
//! the next command on it decides without reading and decoding its whole
//! history again (a spell's history grows by a criteria-to-reside review a
//! day; loading it was a round trip and most of the CPU of a command).
//!
//! A remembered state may be stale: another process (a second Baton, the
//! demo loader beside `serve`) may have committed since. That is safe
//! because no answer rests on a remembered state alone:
//! - a decision that records events commits at the next sequence number,
//!   which the store refuses if anyone else took it, so a commit proves the
//!   state was current; the refusal drops the memory and the command is
//!   decided again from a fresh load;
//! - every other answer (a refusal, a denial, a version mismatch, "nothing
//!   changed", a reservation the store refused) is given only after
//!   deciding again on a fresh load.
//!
//! An aggregate this process remembers nothing of is presumed new, under
//! the same rule: an admission or a new referral then commits without a
//! load, and a command on an aggregate that exists after all is decided
//! again on what is stored.
//!
//! Commands on one aggregate take turns within the process
//! (`execute::Turns`), so the memory of an aggregate is read and written by
//! one command at a time.

use std::sync::Arc;
use std::time::Duration;

use domain::Decider;

/// How many aggregates of one type are remembered: more than the open spells
/// of a large trust, so a whole system's live stays fit.
const CAPACITY: u64 = 8192;

/// An aggregate not worked on for this long is forgotten.
const IDLE: Duration = Duration::from_secs(15 * 60);

pub(crate) struct Recent<D>(moka::sync::Cache<String, Arc<(D, u64)>>);

impl<D: Decider + 'static> Recent<D> {
    pub(crate) fn new() -> Self {
        Self(
            moka::sync::Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_idle(IDLE)
                .build(),
        )
    }

    /// The state and version last seen of `id`, if remembered.
    pub(crate) fn get(&self, id: &str) -> Option<Arc<(D, u64)>> {
        self.0.get(id)
    }

    pub(crate) fn keep(&self, id: &str, state: Arc<(D, u64)>) {
        self.0.insert(id.to_owned(), state);
    }

    pub(crate) fn forget(&self, id: &str) {
        self.0.invalidate(id);
    }
}
