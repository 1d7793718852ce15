//! Who is calling: JWT bearer tokens, verified against exactly one source of
//! trust that the configuration decides.
//!
//! - **Local key** (the default). The server trusts only tokens signed by the
//!   Ed25519 key in `<data_dir>/baton-signing-key.pem`, which it creates on
//!   first use (mode 0600); `baton token` signs with the same file
//!   ([`sign_local`]). A newcomer runs Baton and gets working tokens without
//!   standing up an identity provider, and nothing outside the data
//!   directory can mint a token.
//! - **External identity provider**, once `jwt_public_key_file` or
//!   `jwks_url` is set. The local key is then no longer trusted at all, so a
//!   leftover data directory cannot mint tokens beside the provider. Tokens
//!   are EdDSA or RS256; `iss` and `aud` are checked when configured. A JWKS
//!   is fetched at start and fetched again when a token names a `kid` it does
//!   not hold (key rotation), at most once per 30 s so that tokens with
//!   made-up `kid`s cannot turn the server against the provider.
//!
//! The algorithm a token is checked with comes from the trusted key, never
//! from the token's header, so a token cannot choose a weaker algorithm (or
//! HMAC keyed with a public key) for itself.
//!
//! One module a job, behind the [`Authenticator`] here:
//!
//! - `claims`: [`Role`], [`Principal`] and the claims read from a token.
//! - `error`: [`AuthError`] and [`KeySourceError`].
//! - `verify`: the checks of one token against one trusted key (signature,
//!   algorithm, `exp`/`nbf` with leeway, `iss`, `aud`, claims).
//! - `jwks`: an identity provider's JWKS, fetched and fetched again.
//! - `local_key`: the local signing key and [`sign_local`].
//! - `cache`: tokens verified lately (moka), never used past `exp` plus the
//!   leeway ([`VERIFIED_FOR`]).
//! - `oidc`: the pages' sign-in through an OpenID provider (authorization
//!   code with PKCE, on `openidconnect`).
//! - `session`: the pages' server-side sessions and sign-ins under way.
//! - `mapping`: the admin's rules from a provider's claims to a role and
//!   scope.

mod cache;
mod claims;
mod error;
mod jwks;
mod local_key;
pub mod mapping;
pub mod oidc;
pub mod session;
mod verify;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use cache::VERIFIED_FOR;
pub use claims::{ClaimsProblem, Principal, Role, ScopeClaims, UnknownRole};
pub use error::{AuthError, KeySourceError};
pub use local_key::{sign_local, LOCAL_AUDIENCE, LOCAL_ISSUER, LOCAL_KEY_FILE};

use cache::Verified;
use jwks::{Jwks, JWKS_MIN_REFRESH, JWKS_TIMEOUT};
use local_key::LocalKey;
use verify::{Expectations, TrustedKey, LEEWAY};

use crate::config::Config;

/// Where trust comes from.
enum Trust {
    Local { path: PathBuf, key: TrustedKey },
    KeyFile { path: PathBuf, key: TrustedKey },
    Jwks(Jwks),
}

struct Inner {
    trust: Trust,
    expected: Expectations,
    verified: Verified,
}

/// Verifies bearer tokens against the configured source of trust. Cheap to
/// clone: the keys are shared.
#[derive(Clone)]
pub struct Authenticator {
    inner: std::sync::Arc<Inner>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("trust", &self.describe())
            .finish()
    }
}

/// A setting that is present and not blank (an empty environment variable
/// means "not set").
fn set(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl Authenticator {
    /// From config: if `jwt_public_key_file` or `jwks_url` is set, an
    /// external identity provider (checking `iss` against `jwt_issuer` and
    /// `aud` against `jwt_audience` when they are set; EdDSA and RS256; the
    /// key from a PEM file, Ed25519 or RSA public key, or from a JWKS URL
    /// fetched now and again when a token names an unknown `kid`, at most
    /// once per 30 s). Otherwise the local key in
    /// `<data_dir>/baton-signing-key.pem`, created on first use.
    ///
    /// Setting both key sources, or an issuer or audience without a key
    /// source, is refused rather than guessed at: the operator meant an
    /// external provider, and falling back to the local key would trust the
    /// wrong signer.
    pub async fn from_config(config: &Config) -> Result<Self, AuthError> {
        let issuer = set(&config.jwt_issuer).map(str::to_owned);
        let audience = set(&config.jwt_audience).map(str::to_owned);
        let key_file = config
            .jwt_public_key_file
            .as_ref()
            .filter(|p| !p.as_os_str().is_empty());
        match (key_file, set(&config.jwks_url)) {
            (Some(_), Some(_)) => Err(AuthError::Misconfigured(
                "set jwt_public_key_file or jwks_url, not both",
            )),
            (Some(path), None) => Self::from_public_key_file(path, issuer, audience),
            (None, Some(url)) => {
                let client = reqwest::Client::builder()
                    .timeout(JWKS_TIMEOUT)
                    .build()
                    .map_err(KeySourceError::Client)?;
                Self::from_jwks_url(url, client, issuer, audience, JWKS_MIN_REFRESH).await
            }
            (None, None) if issuer.is_some() || audience.is_some() => {
                Err(AuthError::Misconfigured(
                    "jwt_issuer or jwt_audience is set without jwt_public_key_file or jwks_url",
                ))
            }
            (None, None) => Self::local(&config.data_dir, LEEWAY),
        }
    }

    /// Trusts only the local key of `data_dir`, creating it if need be;
    /// `leeway` is the tolerance on `exp` and `nbf` (tests shorten it).
    fn local(data_dir: &Path, leeway: Duration) -> Result<Self, AuthError> {
        let local = LocalKey::load_or_create(data_dir)?;
        Ok(Self::new(
            Trust::Local {
                path: local.path,
                key: local.verifying,
            },
            Expectations {
                issuer: Some(LOCAL_ISSUER.to_owned()),
                audience: Some(LOCAL_AUDIENCE.to_owned()),
                leeway,
            },
        ))
    }

    /// Trusts the Ed25519 or RSA public key in a PEM file.
    fn from_public_key_file(
        path: &Path,
        issuer: Option<String>,
        audience: Option<String>,
    ) -> Result<Self, AuthError> {
        let key = TrustedKey::from_public_key_file(path)?;
        Ok(Self::new(
            Trust::KeyFile {
                path: path.to_owned(),
                key,
            },
            Expectations {
                issuer,
                audience,
                leeway: LEEWAY,
            },
        ))
    }

    /// Trusts the keys of a JWKS, fetched now; `min_refresh` is the shortest
    /// time between fetches caused by unknown `kid`s (tests shorten it).
    async fn from_jwks_url(
        url: &str,
        client: reqwest::Client,
        issuer: Option<String>,
        audience: Option<String>,
        min_refresh: Duration,
    ) -> Result<Self, AuthError> {
        let jwks = Jwks::fetch(url, client, min_refresh).await?;
        Ok(Self::new(
            Trust::Jwks(jwks),
            Expectations {
                issuer,
                audience,
                leeway: LEEWAY,
            },
        ))
    }

    fn new(trust: Trust, expected: Expectations) -> Self {
        let verified = Verified::new(expected.leeway);
        Self {
            inner: std::sync::Arc::new(Inner {
                trust,
                expected,
                verified,
            }),
        }
    }

    /// Verifies a bearer token (the part after `Bearer `) and returns who it
    /// is.
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        // The cache reads the clock the JWT library checks `exp` with, so a
        // remembered token and an unused one are refused from the same second.
        let now = jsonwebtoken::get_current_timestamp;
        let verified = &self.inner.verified;
        if let Some(principal) = verified.get(token, now()) {
            return Ok(principal);
        }
        let generation = verified.generation();
        let (principal, exp) = self.verify_afresh(token).await?;
        verified.insert(token, &principal, exp, generation, now());
        Ok(principal)
    }

    /// Verifies a token's signature and claims; returns who it is and its
    /// `exp`.
    async fn verify_afresh(&self, token: &str) -> Result<(Principal, u64), AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
        let expected = &self.inner.expected;
        match &self.inner.trust {
            Trust::Local { key, .. } | Trust::KeyFile { key, .. } => {
                verify::check(token, key, expected)
            }
            Trust::Jwks(jwks) => {
                let Some(kid) = header.kid else {
                    // Without a `kid` any key of the token's algorithm may
                    // have signed it; the first that verifies decides.
                    let keys = jwks.current();
                    let mut outcome = Err(AuthError::WrongAlgorithm);
                    for key in keys.without_kid.iter().chain(keys.by_kid.values()) {
                        if key.algorithm == header.alg {
                            outcome = verify::check(token, key, expected);
                            if !matches!(outcome, Err(AuthError::BadSignature)) {
                                break;
                            }
                        }
                    }
                    return outcome;
                };
                if let Some(key) = jwks.current().by_kid.get(&kid) {
                    return verify::check(token, key, expected);
                }
                if jwks.refresh_if_due().await {
                    self.inner.verified.clear();
                }
                match jwks.current().by_kid.get(&kid) {
                    Some(key) => verify::check(token, key, expected),
                    None => Err(AuthError::UnknownKey(kid)),
                }
            }
        }
    }

    /// True when only the local key is trusted (no external provider).
    pub fn is_local(&self) -> bool {
        matches!(self.inner.trust, Trust::Local { .. })
    }

    /// Describes the trust in one line for the start-up log.
    pub fn describe(&self) -> String {
        let scope = |what: &str, value: &Option<String>| match value {
            Some(value) => format!("{what} {value}"),
            None => format!("any {what}"),
        };
        let issuer = scope("issuer", &self.inner.expected.issuer);
        let audience = scope("audience", &self.inner.expected.audience);
        match &self.inner.trust {
            Trust::Local { path, .. } => {
                format!("local key {} ({issuer}, {audience})", path.display())
            }
            Trust::KeyFile { path, key } => format!(
                "{issuer} via {:?} public key file {} ({audience})",
                key.algorithm,
                path.display()
            ),
            Trust::Jwks(jwks) => format!("{issuer} via JWKS URL {} ({audience})", jwks.url),
        }
    }
}
