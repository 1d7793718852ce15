//! The immutable event stream on NATS JetStream: its definition, and the
//! subject, id and headers of each message. This is a public contract for
//! other NHS systems (docs/events.md): subjects and header names never change.

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use async_nats::HeaderMap;

use crate::outbox::OutboxRow;

/// How the stream is named and sized.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// Stream name (`BATON_STREAM`).
    pub name: String,
    /// Subject prefix (`BATON_SUBJECT_PREFIX`): subjects are
    /// `<prefix>.<aggregate type>.<aggregate id>`.
    pub subject_prefix: String,
    /// Replicas (`BATON_STREAM_REPLICAS`).
    pub replicas: usize,
    /// How long JetStream remembers message ids to drop a re-publish. It
    /// must outlast the longest gap between a publish whose acknowledgement
    /// was lost and its retry: a relay restart takes seconds.
    pub duplicate_window: Duration,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            name: "BATON_EVENTS".to_owned(),
            subject_prefix: "baton.events".to_owned(),
            replicas: 1,
            duplicate_window: Duration::from_secs(600),
        }
    }
}

/// A stream to publish to and read from: the JetStream context and the
/// stream's settings, shared by the relay's sink and the projections' feed.
#[derive(Debug, Clone)]
pub struct Target {
    /// The JetStream context.
    pub context: jetstream::Context,
    /// The stream's settings.
    pub settings: StreamSettings,
}

/// Header names of every message.
pub mod headers {
    /// JetStream's de-duplication id: `<aggregate type>/<id>/<sequence>`.
    pub const MSG_ID: &str = "Nats-Msg-Id";
    /// The event's type, e.g. `PatientAdmitted`.
    pub const EVENT_TYPE: &str = "Baton-Event-Type";
    /// The event's shape version.
    pub const EVENT_VERSION: &str = "Baton-Event-Version";
    /// `spell` or `referral`.
    pub const AGGREGATE_TYPE: &str = "Baton-Aggregate-Type";
    /// The aggregate's id.
    pub const AGGREGATE_ID: &str = "Baton-Aggregate-Id";
    /// The event's sequence within its aggregate (1, 2, ...).
    pub const SEQUENCE: &str = "Baton-Sequence";
    /// The outbox position: unique, and increasing within an aggregate.
    pub const POSITION: &str = "Baton-Position";
    /// The user who caused the event.
    pub const ACTOR: &str = "Baton-Actor";
    /// When the event was recorded (RFC 3339).
    pub const RECORDED_AT: &str = "Baton-Recorded-At";
}

/// Why the stream could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// JetStream refused or could not be asked.
    #[error("cannot create or read stream {name}: {reason}")]
    Unavailable { name: String, reason: String },
    /// A stream of that name exists with settings that would let events be
    /// lost or altered; Baton will not publish to it.
    #[error("stream {name} exists but {problem}; fix or rename it (BATON_STREAM)")]
    Unsafe {
        name: String,
        /// What is wrong.
        problem: String,
    },
}

/// The subject of an aggregate's events.
pub fn subject(prefix: &str, aggregate_type: &str, aggregate_id: &str) -> String {
    format!("{prefix}.{aggregate_type}.{aggregate_id}")
}

/// The de-duplication id of an event.
pub fn message_id(aggregate_type: &str, aggregate_id: &str, sequence: i64) -> String {
    format!("{aggregate_type}/{aggregate_id}/{sequence}")
}

/// The `Nats-Msg-Id` a row is published under.
pub fn row_message_id(row: &OutboxRow) -> String {
    message_id(&row.aggregate_type, &row.aggregate_id, row.sequence)
}

/// The headers of an outbox row's message.
pub fn message_headers(row: &OutboxRow) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(headers::MSG_ID, row_message_id(row).as_str());
    h.insert(headers::EVENT_TYPE, row.event_type.as_str());
    h.insert(headers::EVENT_VERSION, row.event_version.as_str());
    h.insert(headers::AGGREGATE_TYPE, row.aggregate_type.as_str());
    h.insert(headers::AGGREGATE_ID, row.aggregate_id.as_str());
    h.insert(headers::SEQUENCE, row.sequence.to_string().as_str());
    h.insert(headers::POSITION, row.position.to_string().as_str());
    if let Some(actor) = row.payload.pointer("/by/id").and_then(|v| v.as_str()) {
        h.insert(headers::ACTOR, actor);
    }
    if let Some(at) = row.payload.get("recorded_at").and_then(|v| v.as_str()) {
        h.insert(headers::RECORDED_AT, at);
    }
    h
}

/// Creates the stream, or verifies an existing one is safe to publish to:
/// file storage, delete and purge denied, Baton's subjects captured.
pub async fn ensure_stream(
    js: &jetstream::Context,
    settings: &StreamSettings,
) -> Result<stream::Stream, StreamError> {
    let wanted_subject = format!("{}.>", settings.subject_prefix);
    let config = stream::Config {
        name: settings.name.clone(),
        subjects: vec![wanted_subject.clone()],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        num_replicas: settings.replicas,
        duplicate_window: settings.duplicate_window,
        deny_delete: true,
        deny_purge: true,
        ..Default::default()
    };
    let unavailable = |e: &dyn std::fmt::Display| StreamError::Unavailable {
        name: settings.name.clone(),
        reason: e.to_string(),
    };
    let mut stream = js
        .get_or_create_stream(config)
        .await
        .map_err(|e| unavailable(&e))?;
    let info = stream.info().await.map_err(|e| unavailable(&e))?;
    let actual = &info.config;
    let unsafe_because = |problem: &str| StreamError::Unsafe {
        name: settings.name.clone(),
        problem: problem.to_owned(),
    };
    if !actual.deny_delete || !actual.deny_purge {
        return Err(unsafe_because("allows deleting or purging messages"));
    }
    if actual.storage != stream::StorageType::File {
        return Err(unsafe_because("keeps messages in memory only"));
    }
    if actual.retention != stream::RetentionPolicy::Limits
        || actual.max_age != Duration::ZERO
        || actual.max_messages > 0
        || actual.max_bytes > 0
        || actual.max_messages_per_subject > 0
    {
        return Err(unsafe_because("discards messages by age, count or size"));
    }
    if !actual.subjects.iter().any(|s| s == &wanted_subject) {
        return Err(unsafe_because(&format!(
            "does not capture {wanted_subject}"
        )));
    }
    Ok(stream)
}
