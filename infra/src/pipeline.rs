//! Assembles the write side for a configuration: the event store (SQLite or
//! PostgreSQL), the command bus, the relay and its sink (JetStream or the
//! local log), and the feed projections read. This is the one place that
//! knows which mode runs; everything built on it sees only the bus and the
//! feed.

use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::commands::CommandBus;
use crate::config::{Config, SecretUrl};
use crate::feed::Feed;
use crate::metrics::RelayMetrics;
use crate::reference::{ReferenceStore, ReferenceStoreError};
use crate::relay::{Relay, Sink};
use crate::store::{BatonRepository, Database, ReservationRules, StoreError};
use crate::stream::Target;

/// Why the pipeline could not start.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The event store could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored reference data could not be loaded.
    #[error(transparent)]
    Reference(#[from] ReferenceStoreError),
    /// The NATS configuration could not be used.
    #[error("cannot use NATS at {url}: {reason}")]
    Nats {
        /// The servers, without credentials.
        url: String,
        reason: String,
    },
}

/// The running write side.
#[derive(Debug)]
pub struct Pipeline {
    /// The event store's database.
    pub db: Database,
    /// The command bus.
    pub bus: Arc<CommandBus>,
    /// Hospitals, wards and teams, as the bus decides with them.
    pub reference: Arc<ReferenceStore>,
    /// What projections read.
    pub feed: Feed,
    /// The relay's metrics.
    pub metrics: Arc<RelayMetrics>,
    /// Which mode runs, and where the data lives, in words.
    pub mode: String,
    shutdown: watch::Sender<bool>,
    relay: JoinHandle<()>,
}

/// A URL with any user and password removed, for logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}{}", &url[..scheme + 3], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// Opens the configured database (migrating it to the current schema).
pub async fn open_database(config: &Config) -> Result<Database, StoreError> {
    let db = match &config.database_url {
        Some(url) => Database::postgres(url.expose(), config.database_max_connections)?,
        None => Database::sqlite(&config.data_dir).await?,
    };
    db.migrate().await?;
    Ok(db)
}

impl Pipeline {
    /// Opens the store, loads the reference data and starts the relay.
    pub async fn start(config: &Config) -> Result<Self, PipelineError> {
        let db = open_database(config).await?;
        let reference = ReferenceStore::load(db.clone()).await?;
        let repo = BatonRepository::new(db.clone(), ReservationRules::baton());
        let bus = Arc::new(CommandBus::new(repo.clone(), reference.clone()));
        let metrics = Arc::new(RelayMetrics::default());
        let (appended, appended_rx) = watch::channel(0);
        let (sink, feed, bus_words) = match config.nats_url.as_ref().map(SecretUrl::expose) {
            Some(url) => {
                let unusable = |reason: String| PipelineError::Nats {
                    url: crate::nats::describe(url),
                    reason,
                };
                let (options, servers) = crate::nats::options(config, url)
                    .await
                    .map_err(|e| unusable(e.to_string()))?;
                let client = options
                    .connect(servers)
                    .await
                    .map_err(|e| unusable(e.to_string()))?;
                let target = Arc::new(Target {
                    context: async_nats::jetstream::new(client),
                    settings: config.stream_settings(),
                });
                let words = format!(
                    "published to NATS JetStream stream {} at {}",
                    config.stream,
                    crate::nats::describe(url)
                );
                (
                    Sink::JetStream(target.clone()),
                    Feed::JetStream(target),
                    words,
                )
            }
            None => (
                Sink::Log,
                Feed::Log {
                    db: db.clone(),
                    appended: appended_rx,
                },
                "kept in the local event log (no BATON_NATS_URL: nothing goes to NATS)".to_owned(),
            ),
        };
        let mode = format!(
            "{} mode: events in {}, {}",
            if config.database_url.is_some() {
                "production"
            } else {
                "embedded"
            },
            db.describe(),
            bus_words
        );
        let relay = Relay::new(db.clone(), sink, repo.relay_signals(), metrics.clone())
            .signalling(Arc::new(appended));
        let (shutdown, stop) = watch::channel(false);
        let relay = tokio::spawn(relay.run(stop));
        Ok(Self {
            db,
            bus,
            reference,
            feed,
            metrics,
            mode,
            shutdown,
            relay,
        })
    }

    /// Stops the relay after its current pass.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        if let Err(error) = self.relay.await {
            tracing::warn!(%error, "the relay task ended abnormally");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_credentials_from_urls() {
        assert_eq!(
            redact("postgres://u:secret@db:5432/baton"),
            "postgres://db:5432/baton"
        );
        assert_eq!(redact("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
    }
}
