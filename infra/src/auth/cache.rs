//! Tokens verified lately, by their exact text, so that a client sending one
//! token with every request pays for its signature check once a minute
//! rather than on every request (an Ed25519 or RSA verification was a
//! visible share of `bench-http`'s profile).
//!
//! A token is only ever found again by itself, signature and all, and only
//! tokens that verified are remembered. An entry is used only while the
//! verifier itself would still accept the token: at most [`VERIFIED_FOR`]
//! after it verified, and never past its `exp` plus the leeway, which a hit
//! checks against the clock again (a cached token is refused, like an
//! unused one, from the second the verifier would refuse it). A JWKS fetch
//! empties the cache; a generation counter stops a check that began before
//! the new keys arrived from remembering its token afterwards.

use std::sync::RwLock;
use std::time::{Duration, Instant};

use moka::sync::Cache;
use moka::Expiry;

use super::claims::Principal;

/// How long a verified token is remembered at most. A key withdrawn from a
/// JWKS stops being trusted for cached tokens as soon as Baton fetches the
/// set again: the fetch empties the cache, and a check that began before it
/// remembers nothing.
pub const VERIFIED_FOR: Duration = Duration::from_secs(60);
/// Most tokens remembered; past this moka evicts the least useful ones.
const VERIFIED_MAX: u64 = 10_000;

/// A verified token's caller, its `exp` (seconds since the epoch) and how
/// long moka keeps it.
#[derive(Clone)]
struct Entry {
    principal: Principal,
    exp: u64,
    lifetime: Duration,
}

/// Each entry lives for the lifetime worked out when it was verified;
/// reading it does not extend it.
struct Lifetime;

impl Expiry<Box<str>, Entry> for Lifetime {
    fn expire_after_create(&self, _: &Box<str>, entry: &Entry, _: Instant) -> Option<Duration> {
        Some(entry.lifetime)
    }

    fn expire_after_update(
        &self,
        _: &Box<str>,
        entry: &Entry,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.lifetime)
    }
}

pub(super) struct Verified {
    tokens: Cache<Box<str>, Entry>,
    /// How many times the cache was emptied for new keys. An insert holds
    /// the read lock across its check and its write, and emptying holds the
    /// write lock, so no token from an earlier generation lands after.
    generation: RwLock<u64>,
    leeway: Duration,
}

impl Verified {
    /// A cache whose entries end with the token's `exp` plus `leeway`, the
    /// verifier's own tolerance.
    pub(super) fn new(leeway: Duration) -> Self {
        Self {
            tokens: Cache::builder()
                .max_capacity(VERIFIED_MAX)
                .expire_after(Lifetime)
                .build(),
            generation: RwLock::new(0),
            leeway,
        }
    }

    /// Who `token` is, if it verified lately and `now` (seconds since the
    /// epoch, as the verifier reads the clock) is not past its `exp` plus
    /// the leeway.
    pub(super) fn get(&self, token: &str, now: u64) -> Option<Principal> {
        let entry = self.tokens.get(token)?;
        // The verifier refuses once `exp + leeway < now`; so does a hit,
        // whatever moka's own clock says of the entry.
        (now <= entry.exp.saturating_add(self.leeway.as_secs())).then_some(entry.principal)
    }

    /// The generation to hand to `insert` for a check starting now.
    pub(super) fn generation(&self) -> u64 {
        *self.generation.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Remembers `token` for [`VERIFIED_FOR`] or until its `exp` plus the
    /// leeway, whichever is sooner (`now` in seconds since the epoch),
    /// unless the cache was emptied for new keys since the check began
    /// (`generation`).
    pub(super) fn insert(
        &self,
        token: &str,
        principal: &Principal,
        exp: u64,
        generation: u64,
        now: u64,
    ) {
        let Some(lifetime) = self.lifetime(exp, now) else {
            return;
        };
        let current = self.generation.read().unwrap_or_else(|e| e.into_inner());
        if *current != generation {
            return;
        }
        self.tokens.insert(
            token.into(),
            Entry {
                principal: principal.clone(),
                exp,
                lifetime,
            },
        );
    }

    /// How long an entry for a token expiring at `exp` lives when verified
    /// at `now`; `None` when the verifier's acceptance ends this second.
    fn lifetime(&self, exp: u64, now: u64) -> Option<Duration> {
        let left = exp
            .saturating_add(self.leeway.as_secs())
            .checked_sub(now)
            .filter(|left| *left > 0)?;
        Some(VERIFIED_FOR.min(Duration::from_secs(left)))
    }

    /// Empties the cache for new keys.
    pub(super) fn clear(&self) {
        let mut generation = self.generation.write().unwrap_or_else(|e| e.into_inner());
        self.tokens.invalidate_all();
        *generation = generation.wrapping_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::auth::Role;

    const LEEWAY: Duration = Duration::from_secs(60);
    /// A moment, in seconds since the epoch, for tests that set the clock.
    const NOW: u64 = 1_800_000_000;

    fn ward() -> Principal {
        Principal {
            sub: "u-42".to_owned(),
            name: "Sam Carter".to_owned(),
            role: Role::Ward,
            hospital: Some("RXH".to_owned()),
            trust: None,
            team: None,
            hub: None,
        }
    }

    #[test]
    fn a_verified_token_is_remembered_by_its_exact_text_only() {
        let verified = Verified::new(LEEWAY);
        verified.insert("h.p.s", &ward(), NOW + 600, 0, NOW);
        assert_eq!(verified.get("h.p.s", NOW), Some(ward()));
        assert_eq!(verified.get("h.p.t", NOW), None);
        assert_eq!(verified.get("h.p.s ", NOW), None);
    }

    #[test]
    fn a_remembered_token_is_refused_from_the_second_its_exp_plus_the_leeway_has_passed() {
        let verified = Verified::new(LEEWAY);
        let exp = NOW - 50; // verified inside the leeway, 10 s before its end
        verified.insert("h.p.s", &ward(), exp, 0, NOW);
        assert_eq!(verified.get("h.p.s", exp + 60), Some(ward()));
        assert_eq!(verified.get("h.p.s", exp + 61), None);
        assert_eq!(verified.get("h.p.s", exp + 90), None);
    }

    #[test]
    fn an_entry_lives_a_minute_at_most_and_never_past_exp_plus_the_leeway() {
        let verified = Verified::new(LEEWAY);
        assert_eq!(verified.lifetime(NOW + 600, NOW), Some(VERIFIED_FOR));
        assert_eq!(
            verified.lifetime(NOW - 50, NOW),
            Some(Duration::from_secs(10))
        );
        assert_eq!(verified.lifetime(NOW - 60, NOW), None);
        assert_eq!(verified.lifetime(NOW - 120, NOW), None);

        verified.insert("h.p.expired", &ward(), NOW - 60, 0, NOW);
        assert_eq!(verified.get("h.p.expired", NOW), None);
    }

    #[test]
    fn no_more_than_the_bound_of_tokens_is_remembered() {
        let verified = Verified::new(LEEWAY);
        for n in 0..VERIFIED_MAX + 100 {
            verified.insert(&format!("t{n}"), &ward(), NOW + 600, 0, NOW);
        }
        verified.tokens.run_pending_tasks();
        assert!(verified.tokens.entry_count() <= VERIFIED_MAX);
    }

    #[test]
    fn a_check_that_began_before_new_keys_arrived_remembers_nothing() {
        let verified = Verified::new(LEEWAY);
        verified.insert("h.p.old", &ward(), NOW + 600, verified.generation(), NOW);
        let began = verified.generation();
        verified.clear(); // a JWKS fetch replaced the keys meanwhile
        assert_eq!(verified.get("h.p.old", NOW), None);
        verified.insert("h.p.s", &ward(), NOW + 600, began, NOW);
        assert_eq!(verified.get("h.p.s", NOW), None);
        verified.insert("h.p.s", &ward(), NOW + 600, verified.generation(), NOW);
        assert_eq!(verified.get("h.p.s", NOW), Some(ward()));
    }
}
