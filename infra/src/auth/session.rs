//! The pages' sessions, kept server-side: the browser holds only a random
//! id in an `HttpOnly` cookie, never a token. A session ends after
//! `idle` without a request from its user (ward PCs are shared), after
//! `lifetime` whatever the activity, and at sign-out; each has its own
//! anti-forgery token that cookie-authenticated changes must send back.
//!
//! Both clocks are moka's (`time_to_idle`, `time_to_live`): a read that is
//! the user's own ([`Sessions::touch`]) resets the idle clock, a check on
//! behalf of an open live stream ([`Sessions::is_live`]) does not, so a
//! board left open on a shared PC does not keep its session alive.
//!
//! Sessions live in this process's memory: a restart signs everyone out,
//! and the provider signs them straight back in while their sign-in there
//! lasts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::sync::Cache;
use openidconnect::CsrfToken;

use super::claims::Principal;
use super::oidc::PendingLogin;

/// How a session was begun.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignedInWith {
    /// The OpenID provider.
    Provider,
    /// A bearer token pasted into the sign-in page.
    Token,
    /// The development sign-in of the embedded default.
    Development,
}

/// What a session's requests are allowed as.
#[derive(Debug, Clone)]
pub enum Access {
    /// The role and scope the provider's claims map to, at sign-in.
    Principal(Principal),
    /// A bearer token, kept here (never in the browser) and verified again
    /// on every request, so its `exp` ends the session.
    Token(String),
}

/// Who a session belongs to.
#[derive(Debug, Clone)]
pub struct SessionUser {
    pub sub: String,
    pub name: String,
    pub access: Access,
    /// The provider's ID token, for sign-out there.
    pub id_token: Option<String>,
    pub with: SignedInWith,
}

#[derive(Debug)]
pub struct Session {
    pub id: String,
    pub user: SessionUser,
    /// What state-changing requests must send in `X-CSRF-Token`.
    pub csrf: String,
    pub started: Instant,
}

/// How long a sign-in may take between leaving for the provider and coming
/// back.
pub const LOGIN_WINDOW: Duration = Duration::from_secs(10 * 60);

/// Open sessions and sign-ins under way.
pub struct Sessions {
    live: Cache<String, Arc<Session>>,
    pending: Cache<String, Arc<PendingLogin>>,
    idle: Duration,
    lifetime: Duration,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("open", &self.live.entry_count())
            .field("idle", &self.idle)
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

fn random_token() -> String {
    CsrfToken::new_random_len(32).secret().clone()
}

impl Sessions {
    pub fn new(idle: Duration, lifetime: Duration) -> Self {
        Self {
            live: Cache::builder()
                .time_to_idle(idle)
                .time_to_live(lifetime)
                .build(),
            pending: Cache::builder().time_to_live(LOGIN_WINDOW).build(),
            idle,
            lifetime,
        }
    }

    pub fn idle(&self) -> Duration {
        self.idle
    }

    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Opens a session for `user` and returns it (its id goes in the
    /// cookie).
    pub fn open(&self, user: SessionUser) -> Arc<Session> {
        let session = Arc::new(Session {
            id: random_token(),
            user,
            csrf: random_token(),
            started: Instant::now(),
        });
        self.live.insert(session.id.clone(), session.clone());
        session
    }

    /// The session, for a request of its user: resets its idle clock.
    pub fn touch(&self, id: &str) -> Option<Arc<Session>> {
        self.live.get(id)
    }

    /// Whether the session is still open, without counting as activity.
    pub fn is_live(&self, id: &str) -> bool {
        self.live.contains_key(id)
    }

    pub fn end(&self, id: &str) -> Option<Arc<Session>> {
        self.live.remove(id)
    }

    /// Keeps what the callback needs under the sign-in's `state`.
    pub fn remember_login(&self, state: String, pending: PendingLogin) {
        self.pending.insert(state, Arc::new(pending));
    }

    /// What was kept under `state`, once: a second callback with the same
    /// `state` (a replay) finds nothing.
    pub fn take_login(&self, state: &str) -> Option<Arc<PendingLogin>> {
        self.pending.remove(state)
    }
}
