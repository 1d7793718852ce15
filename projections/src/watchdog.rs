//! Whether the boards are up to date, and what to do when they stop
//! converging on the record.
//!
//! Every second the watchdog reads the feed's head (the stream's last
//! sequence, or the local log's last position) and when the oldest row
//! still waiting in the outbox was committed, and compares them with the
//! boards' position. The boards are *up to date as of* the latest moment
//! whose head they include, and no later than the oldest commit not yet
//! relayed. When that moment is more than [`STALE_AFTER`] ago, every page,
//! board read and live stream says "not up to date since HH:MM", readiness
//! fails, a metric shows it and the log says it once. When the boards lag
//! the head and have not moved for [`STALL_AFTER`], the runner is told to
//! subscribe again from its position: a feed that has silently stopped
//! delivering (as a JetStream consumer did after a cluster failover) is
//! replaced, whatever the cause. The decision is [`Watchdog::observe`], a
//! pure function of what was seen; `infra::watchdog::watch` does the reading.

use std::collections::VecDeque;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// How often the watchdog looks.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);
/// Boards not known to be up to date for longer than this are stale. Under
/// load they trail commits by milliseconds; this leaves room for a check
/// that races a burst, and for a relay pass after a brief hiccup.
pub const STALE_AFTER: Duration = Duration::from_secs(5);
/// Boards behind the head that have not moved for this long are fed by a
/// feed that has stopped: resubscribe.
pub const STALL_AFTER: Duration = Duration::from_secs(5);
/// Heads remembered while the boards are behind (one per check).
const REMEMBERED: usize = 3_600;

/// How current the boards are, as every board read and live stream tells it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Freshness {
    /// The boards include everything recorded up to `STALE_AFTER` ago.
    pub current: bool,
    /// The latest moment the boards are known to include everything
    /// recorded before it (none until the first check succeeds).
    pub up_to_date_at: Option<DateTime<Utc>>,
    /// Events on the feed not yet in the boards at the last check (none
    /// when the feed could not be read).
    pub lag: Option<u64>,
    /// When the watchdog last looked.
    pub checked_at: Option<DateTime<Utc>>,
}

/// One look at the record.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub at: DateTime<Utc>,
    /// The boards' feed position.
    pub position: u64,
    /// The feed's head, if it could be read.
    pub head: Option<u64>,
    /// When the oldest row still waiting in the outbox was committed, if
    /// any (and if the outbox could be read).
    pub oldest_waiting: Option<DateTime<Utc>>,
}

/// What the watchdog concluded from one look.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// How current the boards are.
    pub freshness: Freshness,
    /// The feed has stopped delivering: subscribe again from the position.
    pub resubscribe: bool,
}

/// The watchdog's memory between looks.
#[derive(Debug, Default)]
pub struct Watchdog {
    /// Heads seen and when, that the boards did not include yet (oldest
    /// first; heads never decrease).
    heads: VecDeque<(DateTime<Utc>, u64)>,
    /// The latest moment whose head the boards include.
    covered_at: Option<DateTime<Utc>>,
    /// The boards' position at the last look, and when it last moved.
    moved: Option<(u64, DateTime<Utc>)>,
}

/// True when more than `limit` passed from `from` to `to`.
pub fn longer_than(from: DateTime<Utc>, to: DateTime<Utc>, limit: Duration) -> bool {
    (to - from).to_std().is_ok_and(|elapsed| elapsed > limit)
}

impl Watchdog {
    /// Takes one look into account.
    pub fn observe(&mut self, seen: &Observation) -> Verdict {
        if let Some(head) = seen.head {
            self.heads.push_back((seen.at, head));
            if self.heads.len() > REMEMBERED {
                // Forgetting the oldest can only make the answer earlier
                // than the truth, never later.
                self.heads.pop_front();
            }
        }
        while let Some(&(at, head)) = self.heads.front() {
            if head > seen.position {
                break;
            }
            self.covered_at = Some(self.covered_at.map_or(at, |c| c.max(at)));
            self.heads.pop_front();
        }
        let up_to_date_at = match (self.covered_at, seen.oldest_waiting) {
            (Some(covered), Some(waiting)) => Some(covered.min(waiting)),
            (covered, _) => covered,
        };
        let current = up_to_date_at.is_some_and(|t| !longer_than(t, seen.at, STALE_AFTER));

        let moved_at = match self.moved {
            Some((position, at)) if position == seen.position => at,
            _ => seen.at,
        };
        let behind = seen.head.is_some_and(|head| head > seen.position);
        let resubscribe = behind && longer_than(moved_at, seen.at, STALL_AFTER);
        // After a resubscription, give the new feed as long again.
        let moved_at = if resubscribe { seen.at } else { moved_at };
        self.moved = Some((seen.position, moved_at));
        Verdict {
            freshness: Freshness {
                current,
                up_to_date_at,
                lag: seen.head.map(|head| head.saturating_sub(seen.position)),
                checked_at: Some(seen.at),
            },
            resubscribe,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    fn look(seconds: i64, position: u64, head: Option<u64>) -> Observation {
        Observation {
            at: at(seconds),
            position,
            head,
            oldest_waiting: None,
        }
    }

    fn secs(d: Duration) -> i64 {
        i64::try_from(d.as_secs()).unwrap()
    }

    #[test]
    fn boards_at_the_head_are_up_to_date_now() {
        let mut dog = Watchdog::default();
        let verdict = dog.observe(&look(0, 10, Some(10)));
        assert!(verdict.freshness.current);
        assert_eq!(verdict.freshness.up_to_date_at, Some(at(0)));
        assert_eq!(verdict.freshness.lag, Some(0));
        assert_eq!(verdict.freshness.checked_at, Some(at(0)));
        assert!(!verdict.resubscribe);
    }

    #[test]
    fn boards_a_little_behind_are_up_to_date_as_of_the_last_head_they_include() {
        let mut dog = Watchdog::default();
        dog.observe(&look(0, 10, Some(10)));
        dog.observe(&look(1, 10, Some(12)));
        let verdict = dog.observe(&look(2, 12, Some(15)));
        assert_eq!(verdict.freshness.up_to_date_at, Some(at(1)));
        assert_eq!(verdict.freshness.lag, Some(3));
        assert!(verdict.freshness.current);
    }

    #[test]
    fn boards_stay_current_for_exactly_the_stale_limit_and_not_a_second_more() {
        let mut dog = Watchdog::default();
        dog.observe(&look(0, 10, Some(10)));
        let limit = secs(STALE_AFTER);
        // Moving, but never reaching what the feed held.
        let verdict = dog.observe(&look(limit, 10, Some(20)));
        assert!(verdict.freshness.current);
        let verdict = dog.observe(&look(limit + 1, 11, Some(20)));
        assert!(!verdict.freshness.current);
        assert_eq!(verdict.freshness.up_to_date_at, Some(at(0)));
    }

    #[test]
    fn no_look_yet_is_not_up_to_date() {
        let mut dog = Watchdog::default();
        let verdict = dog.observe(&look(0, 0, None));
        assert!(!verdict.freshness.current);
        assert_eq!(verdict.freshness.up_to_date_at, None);
        assert_eq!(verdict.freshness.lag, None);
    }

    #[test]
    fn an_unreadable_feed_keeps_the_last_known_moment_until_it_is_too_old() {
        let mut dog = Watchdog::default();
        dog.observe(&look(0, 5, Some(5)));
        let verdict = dog.observe(&look(3, 5, None));
        assert!(verdict.freshness.current);
        assert_eq!(verdict.freshness.up_to_date_at, Some(at(0)));
        let verdict = dog.observe(&look(secs(STALE_AFTER) + 1, 5, None));
        assert!(!verdict.freshness.current);
        assert!(!verdict.resubscribe, "nothing to resubscribe to");
    }

    #[test]
    fn a_commit_waiting_in_the_outbox_bounds_how_current_the_boards_are() {
        let mut dog = Watchdog::default();
        let mut seen = look(10, 5, Some(5));
        seen.oldest_waiting = Some(at(2));
        let verdict = dog.observe(&seen);
        assert_eq!(verdict.freshness.up_to_date_at, Some(at(2)));
        assert!(!verdict.freshness.current);
        // A row committed moments ago changes nothing that matters.
        seen.oldest_waiting = Some(at(9));
        seen.at = at(11);
        let verdict = dog.observe(&seen);
        assert_eq!(verdict.freshness.up_to_date_at, Some(at(9)));
        assert!(verdict.freshness.current);
    }

    #[test]
    fn a_commit_waiting_since_before_the_boards_were_known_current_counts_too() {
        let mut dog = Watchdog::default();
        let mut seen = look(4, 5, Some(5));
        seen.oldest_waiting = Some(at(6));
        // The outbox row is newer than the covered head: the head wins.
        assert_eq!(dog.observe(&seen).freshness.up_to_date_at, Some(at(4)));
    }

    #[test]
    fn boards_behind_that_do_not_move_for_longer_than_the_stall_limit_resubscribe() {
        let mut dog = Watchdog::default();
        let limit = secs(STALL_AFTER);
        assert!(!dog.observe(&look(0, 7, Some(9))).resubscribe);
        assert!(!dog.observe(&look(limit, 7, Some(9))).resubscribe);
        assert!(dog.observe(&look(limit + 1, 7, Some(9))).resubscribe);
        // The new subscription is given as long again.
        assert!(!dog.observe(&look(limit + 2, 7, Some(9))).resubscribe);
        assert!(!dog.observe(&look(2 * limit + 1, 7, Some(9))).resubscribe);
        assert!(dog.observe(&look(2 * limit + 2, 7, Some(9))).resubscribe);
    }

    #[test]
    fn boards_that_move_or_are_at_the_head_never_resubscribe() {
        let mut dog = Watchdog::default();
        for second in 0..30 {
            let position = u64::try_from(second).unwrap();
            assert!(!dog.observe(&look(second, position, Some(100))).resubscribe);
        }
        let mut idle = Watchdog::default();
        for second in 0..30 {
            assert!(!idle.observe(&look(second, 100, Some(100))).resubscribe);
        }
    }

    #[test]
    fn boards_ahead_of_a_head_read_late_are_not_behind() {
        let mut dog = Watchdog::default();
        dog.observe(&look(0, 10, Some(9)));
        let verdict = dog.observe(&look(secs(STALL_AFTER) + 1, 10, Some(9)));
        assert!(!verdict.resubscribe);
        assert_eq!(verdict.freshness.lag, Some(0));
    }

    #[test]
    fn only_the_last_hour_of_heads_is_remembered_and_forgetting_is_conservative() {
        let mut dog = Watchdog::default();
        let count = i64::try_from(REMEMBERED).unwrap();
        for second in 0..=count {
            dog.observe(&look(second, 0, Some(u64::try_from(second).unwrap() + 1)));
        }
        assert_eq!(dog.heads.len(), REMEMBERED);
        // The oldest head (1, seen at 0) was forgotten; covering it alone
        // finds nothing newer to vouch for.
        let verdict = dog.observe(&look(count + 1, 1, None));
        assert_eq!(verdict.freshness.up_to_date_at, None);
        let verdict = dog.observe(&look(count + 2, 2, None));
        assert_eq!(verdict.freshness.up_to_date_at, Some(at(1)));
    }
}
