//! What every handler shares: a `Clone` struct of `Arc`s (axum's way), built
//! once by [`crate::app::Application::build`].

use std::sync::Arc;
use std::time::Duration;

use infra::auth::Authenticator;
use infra::commands::CommandBus;
use infra::feed::Feed;
use infra::reference::ReferenceStore;
use infra::runner::Boards;
use infra::store::Database;

use crate::metrics::HttpMetrics;

/// Handler state, behind one `Arc`: axum clones it for every handler and
/// middleware of every request, and one reference count costs less than
/// one per field (a profile of `bench-http` showed the clones and drops of
/// the whole struct).
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What every handler shares.
#[derive(Debug)]
pub struct Shared {
    /// Commands go here.
    pub bus: Arc<CommandBus>,
    /// The live boards.
    pub boards: Arc<Boards>,
    /// Hospitals, wards, teams.
    pub reference: Arc<ReferenceStore>,
    /// The event store's database (idempotency keys, access log).
    pub db: Database,
    /// What the boards read, for readiness.
    pub feed: Feed,
    /// Token verification (it remembers the tokens it verified lately).
    pub auth: Authenticator,
    /// The pages' sessions and the identity provider.
    pub signin: Arc<crate::signin::SignIn>,
    /// Everything /metrics shows, this app's alone (the relay's and the
    /// boards' figures, requests, connections), registered at build.
    pub metrics: Arc<prometheus_client::registry::Registry>,
    /// Request figures (also in `metrics`).
    pub http_metrics: HttpMetrics,
    /// Connection figures (also in `metrics`).
    pub connections: Arc<crate::server::ConnectionStats>,
    /// Tunables.
    pub settings: Arc<Settings>,
    /// The PAS's HL7 v2 ADT feed (held messages are retried through it).
    pub adt: infra::hl7::AdtFeed,
    /// Turns true when the server begins to shut down: live streams end.
    pub closing: tokio::sync::watch::Receiver<bool>,
}

/// Tunables of the HTTP layer.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long a read with a consistency token waits before a 503.
    pub consistency_wait: Duration,
    /// Largest request body accepted.
    pub body_limit: usize,
    /// The data directory whose local key the development sign-in signs
    /// with; `None` unless on the embedded default with the local key.
    pub dev_sign_in: Option<std::path::PathBuf>,
    /// Proxies whose `X-Forwarded-For` is believed (`BATON_TRUSTED_PROXIES`);
    /// from anyone else the header is ignored and the peer address recorded.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            consistency_wait: Duration::from_secs(5),
            body_limit: 64 * 1024,
            dev_sign_in: None,
            trusted_proxies: Vec::new(),
        }
    }
}
