//! The boards' watchdog at work: every [`CHECK_EVERY`] it reads the feed's
//! head and the outbox, asks the pure [`projections::watchdog::Watchdog`]
//! what that means, publishes the boards' freshness, raises the alarm when
//! they stop converging and nudges the runner to resubscribe.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use projections::watchdog::{longer_than, Observation, Watchdog, CHECK_EVERY, STALE_AFTER};
use tokio::sync::{watch, Notify};

use crate::feed::Feed;
use crate::runner::Boards;
use crate::store::Database;

/// A read of the head or the outbox that takes longer than this counts as
/// failed.
const READ_WITHIN: Duration = Duration::from_secs(2);

async fn within<T, E>(read: impl std::future::Future<Output = Result<T, E>>) -> Option<T> {
    tokio::time::timeout(READ_WITHIN, read)
        .await
        .ok()
        .and_then(Result::ok)
}

/// Looks every [`CHECK_EVERY`] until `shutdown`: publishes the boards'
/// freshness, raises the alarm when they stop converging, and notifies
/// `resubscribe` when the feed has stopped delivering.
pub async fn watch(
    boards: Arc<Boards>,
    feed: Feed,
    db: Database,
    resubscribe: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut dog = Watchdog::default();
    let started = Utc::now();
    let mut alarmed = false;
    let mut ticker = tokio::time::interval(CHECK_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        // The moment is taken before the reads, and the outbox is read
        // before the head: the boards are then credited with no more than
        // they had at that moment, and a row relayed between the two reads
        // is counted in the head.
        let at = Utc::now();
        let oldest_waiting = within(crate::outbox::oldest_waiting(&db)).await.flatten();
        let head = within(feed.head()).await;
        let seen = Observation {
            at,
            position: boards.position(),
            head,
            oldest_waiting,
        };
        let verdict = dog.observe(&seen);
        if verdict.resubscribe {
            tracing::warn!(
                position = seen.position,
                head,
                "the boards are behind the feed and have not moved; subscribing again"
            );
            resubscribe.notify_one();
        }
        let now = &verdict.freshness;
        if now.current {
            if alarmed {
                tracing::info!(position = seen.position, "the boards are up to date again");
            }
            alarmed = false;
        } else if !alarmed
            && (boards.freshness().current || longer_than(started, seen.at, STALE_AFTER))
        {
            alarmed = true;
            boards.count_alarm();
            tracing::error!(
                position = seen.position,
                head,
                up_to_date_at = ?now.up_to_date_at,
                "ALARM: the boards are not up to date with the record; pages say so until they are"
            );
        }
        boards.set_freshness(verdict.freshness);
    }
}
