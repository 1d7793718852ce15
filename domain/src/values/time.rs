//! Clinical time. Instants are UTC; calendar dates (discharge ready date,
//! expected discharge date, days in hospital) are English dates, so they are
//! taken in Europe/London: a review at 00:30 BST belongs to that day, not to
//! the previous UTC day.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Europe::London;

/// An instant: when something happened on the ward or was recorded.
pub type Instant = DateTime<Utc>;

/// How far ahead of the recording clock a clinical time may be. Ward PCs'
/// clocks drift; more than this is a typing mistake, not drift.
pub const CLOCK_SKEW_MINUTES: i64 = 5;

/// The calendar date of an instant in England.
pub fn local_date(at: Instant) -> NaiveDate {
    at.with_timezone(&London).date_naive()
}

/// Whole days from `from` to `to` (negative when `to` is earlier).
pub fn days_between(from: NaiveDate, to: NaiveDate) -> i64 {
    (to - from).num_days()
}

/// True when `at` lies further in the future than clock skew explains.
pub fn is_in_future(at: Instant, now: Instant) -> bool {
    at > now + chrono::Duration::minutes(CLOCK_SKEW_MINUTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_just_after_midnight_in_summer_is_that_english_day() {
        let at: Instant = "2026-06-30T23:30:00Z".parse().unwrap();
        assert_eq!(local_date(at), NaiveDate::from_ymd_opt(2026, 7, 1).unwrap());
    }

    #[test]
    fn in_winter_english_dates_follow_utc() {
        let at: Instant = "2026-12-31T23:30:00Z".parse().unwrap();
        assert_eq!(
            local_date(at),
            NaiveDate::from_ymd_opt(2026, 12, 31).unwrap()
        );
    }

    #[test]
    fn small_clock_skew_is_not_the_future() {
        let now: Instant = "2026-01-01T10:00:00Z".parse().unwrap();
        assert!(!is_in_future(now + chrono::Duration::minutes(4), now));
        assert!(is_in_future(now + chrono::Duration::minutes(6), now));
    }

    #[test]
    fn exactly_the_clock_skew_ahead_is_not_the_future_and_a_second_more_is() {
        let now: Instant = "2026-01-01T10:00:00Z".parse().unwrap();
        let skew = chrono::Duration::minutes(CLOCK_SKEW_MINUTES);
        assert!(!is_in_future(now + skew, now));
        assert!(is_in_future(now + skew + chrono::Duration::seconds(1), now));
        assert!(!is_in_future(now - skew, now));
    }

    #[test]
    fn days_between_counts_whole_days_and_is_negative_backwards() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(days_between(d("2026-03-01"), d("2026-03-05")), 4);
        assert_eq!(days_between(d("2026-03-05"), d("2026-03-01")), -4);
        assert_eq!(days_between(d("2026-03-01"), d("2026-03-01")), 0);
    }
}
