//! The one interface projections read events from, whichever mode runs:
//! a JetStream consumer when NATS is configured, else the local event log.
//! Each event carries its feed position; a projection checkpoints that
//! position and subscribes again after it, so it never replays all history
//! on restart. Positions are those of the feed (JetStream stream sequence,
//! or log position), dense and increasing, so "after N" never skips.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::DeliverPolicy};
use futures::stream::{BoxStream, StreamExt};
use serde_json::Value;
use sqlx::postgres::PgListener;
use tokio::sync::watch;

use crate::outbox::LOG_CHANNEL;
use crate::store::Database;
use crate::stream::{headers, StreamSettings, Target};

/// One event as the feed delivers it.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedEvent {
    /// Feed position: checkpoint this.
    pub position: u64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// Sequence within the aggregate.
    pub sequence: u64,
    pub event_type: String,
    pub event_version: String,
    /// The event (`Recorded<E>` as JSON), as it was stored: decoded once,
    /// straight into typed events, by whoever reads it.
    pub payload: bytes::Bytes,
}

impl FeedEvent {
    /// The payload as a JSON value (for tests and tools; the boards decode
    /// the bytes straight into typed events).
    pub fn json(&self) -> Result<Value, serde_json::Error> {
        serde_json::from_slice(&self.payload)
    }
}

/// Why the feed failed (subscribers retry from their checkpoint).
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// The local log could not be read.
    #[error("event log read failed: {0}")]
    Database(#[from] sqlx::Error),
    #[error("JetStream consumer failed: {0}")]
    JetStream(String),
    /// A message lacked what every Baton message carries.
    #[error("malformed event message: {0}")]
    Malformed(String),
}

/// Where events are read from.
#[derive(Debug, Clone)]
pub enum Feed {
    /// The JetStream stream.
    JetStream(Arc<Target>),
    /// The local event log.
    Log {
        db: Database,
        /// Bumped by this process's relay after each append.
        appended: watch::Receiver<u64>,
    },
}

const PAGE: i64 = 512;

impl Feed {
    /// The position of the newest event now in the feed (0 when empty).
    pub async fn head(&self) -> Result<u64, FeedError> {
        match self {
            Feed::JetStream(target) => {
                let failed = |e: &dyn std::fmt::Display| FeedError::JetStream(e.to_string());
                let mut stream = target
                    .context
                    .get_stream(&target.settings.name)
                    .await
                    .map_err(|e| failed(&e))?;
                let info = stream.info().await.map_err(|e| failed(&e))?;
                Ok(info.state.last_sequence)
            }
            Feed::Log { db, .. } => {
                let head: i64 = match db {
                    Database::Postgres(pool) => {
                        sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM event_log")
                            .fetch_one(pool)
                            .await?
                    }
                    Database::Sqlite(pool) => {
                        sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM event_log")
                            .fetch_one(pool)
                            .await?
                    }
                };
                Ok(u64::try_from(head).unwrap_or(0))
            }
        }
    }

    /// Names the feed, so checkpoints of one feed are never used on another.
    pub fn identity(&self) -> String {
        match self {
            Feed::JetStream(target) => format!("jetstream:{}", target.settings.name),
            Feed::Log { .. } => "log".to_owned(),
        }
    }

    /// The database of a local-log feed.
    pub fn database(&self) -> Option<&Database> {
        match self {
            Feed::JetStream(_) => None,
            Feed::Log { db, .. } => Some(db),
        }
    }

    /// Every event after `after`, in order, then each new one as it comes.
    pub async fn subscribe(
        &self,
        after: u64,
    ) -> Result<BoxStream<'static, Result<FeedEvent, FeedError>>, FeedError> {
        match self {
            Feed::JetStream(target) => {
                subscribe_jetstream(&target.context, &target.settings, after).await
            }
            Feed::Log { db, appended } => {
                Ok(subscribe_log(db.clone(), appended.clone(), after).await)
            }
        }
    }
}

async fn subscribe_jetstream(
    context: &jetstream::Context,
    settings: &StreamSettings,
    after: u64,
) -> Result<BoxStream<'static, Result<FeedEvent, FeedError>>, FeedError> {
    let failed = |e: &dyn std::fmt::Display| FeedError::JetStream(e.to_string());
    let stream = context
        .get_stream(&settings.name)
        .await
        .map_err(|e| failed(&e))?;
    let deliver_policy = if after == 0 {
        DeliverPolicy::All
    } else {
        DeliverPolicy::ByStartSequence {
            start_sequence: after + 1,
        }
    };
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            deliver_policy,
            ..Default::default()
        })
        .await
        .map_err(|e| failed(&e))?;
    let messages = consumer.messages().await.map_err(|e| failed(&e))?;
    Ok(messages
        .map(|message| {
            let message = message.map_err(|e| FeedError::JetStream(e.to_string()))?;
            let info = message
                .info()
                .map_err(|e| FeedError::Malformed(e.to_string()))?;
            // A message without Baton's headers (another publisher's, on
            // Baton's subjects) still has its place in the stream: it is
            // handed on with what it has, the boards log it as unreadable
            // and step past its position, instead of the feed failing on it
            // at every subscription.
            let header = |name: &str| -> String {
                message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(name))
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_default()
            };
            Ok(FeedEvent {
                position: info.stream_sequence,
                aggregate_type: header(headers::AGGREGATE_TYPE),
                aggregate_id: header(headers::AGGREGATE_ID),
                sequence: header(headers::SEQUENCE).parse().unwrap_or(0),
                event_type: header(headers::EVENT_TYPE),
                event_version: header(headers::EVENT_VERSION),
                payload: message.payload.clone(),
            })
        })
        .boxed())
}

struct LogCursor {
    db: Database,
    appended: watch::Receiver<u64>,
    listener: Option<PgListener>,
    after: u64,
    buffer: VecDeque<FeedEvent>,
    failing: bool,
}

async fn subscribe_log(
    db: Database,
    appended: watch::Receiver<u64>,
    after: u64,
) -> BoxStream<'static, Result<FeedEvent, FeedError>> {
    // Appends by other processes' relays arrive by NOTIFY.
    let listener = match &db {
        Database::Postgres(pool) => match PgListener::connect_with(pool).await {
            Ok(mut l) => l.listen(LOG_CHANNEL).await.ok().map(|()| l),
            Err(_) => None,
        },
        Database::Sqlite(_) => None,
    };
    let cursor = LogCursor {
        db,
        appended,
        listener,
        after,
        buffer: VecDeque::new(),
        failing: false,
    };
    futures::stream::unfold(cursor, |mut c| async move {
        loop {
            if let Some(event) = c.buffer.pop_front() {
                c.after = event.position;
                return Some((Ok(event), c));
            }
            if c.failing {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            // Mark what we have seen before reading, so an append between the
            // read and the wait still wakes us.
            c.appended.borrow_and_update();
            match read_log(&c.db, c.after).await {
                Ok(events) if !events.is_empty() => {
                    c.failing = false;
                    c.buffer.extend(events);
                }
                Ok(_) => {
                    c.failing = false;
                    let notified = async {
                        match c.listener.as_mut() {
                            Some(l) => {
                                let _ = l.recv().await;
                            }
                            None => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        _ = notified => {}
                        _ = c.appended.changed() => {}
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
                Err(error) => {
                    c.failing = true;
                    return Some((Err(FeedError::Database(error)), c));
                }
            }
        }
    })
    .boxed()
}

/// The local log after a position, with each event's stored text.
/// `CAST(... AS text)` reads PostgreSQL's jsonb and SQLite's text alike.
const READ_LOG: &str = "SELECT l.position, l.aggregate_type, l.aggregate_id, l.sequence, \
     e.event_type, e.event_version, CAST(e.payload AS text) AS payload FROM event_log l \
     JOIN events e ON e.aggregate_type = l.aggregate_type AND e.aggregate_id = l.aggregate_id \
     AND e.sequence = l.sequence WHERE l.position > $1 ORDER BY l.position LIMIT $2";

#[derive(sqlx::FromRow)]
struct LogRow {
    position: i64,
    aggregate_type: String,
    aggregate_id: String,
    sequence: i64,
    event_type: String,
    event_version: String,
    payload: String,
}

async fn read_log(db: &Database, after: u64) -> Result<Vec<FeedEvent>, sqlx::Error> {
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let rows: Vec<LogRow> = crate::on_either_database!(db, pool => {
        sqlx::query_as(READ_LOG).bind(after).bind(PAGE).fetch_all(pool).await?
    });
    // Positions and sequences are written from u64s and never negative.
    let to_u64 = |v: i64| u64::try_from(v).unwrap_or(0);
    Ok(rows
        .into_iter()
        .map(|r| FeedEvent {
            position: to_u64(r.position),
            aggregate_type: r.aggregate_type,
            aggregate_id: r.aggregate_id,
            sequence: to_u64(r.sequence),
            event_type: r.event_type,
            event_version: r.event_version,
            payload: bytes::Bytes::from(r.payload),
        })
        .collect())
}
