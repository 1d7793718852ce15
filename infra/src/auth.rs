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

use std::collections::HashMap;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::Config;

/// `iss` of the tokens the local key signs.
pub const LOCAL_ISSUER: &str = "baton-local";
/// `aud` of the tokens the local key signs.
pub const LOCAL_AUDIENCE: &str = "baton";
/// File name of the local signing key inside the data directory.
pub const LOCAL_KEY_FILE: &str = "baton-signing-key.pem";

/// Clock skew tolerated on `exp` and `nbf`: servers and identity providers
/// never agree to the second, and a minute is far below any token lifetime.
const LEEWAY: Duration = Duration::from_secs(60);
/// How long a verified token is remembered (never past its `exp`), so a
/// client sending one token with every request pays for its signature
/// check once in this time rather than on every request (an Ed25519 or RSA
/// verification was a visible share of `bench-http`'s profile). A key
/// withdrawn from a JWKS stops being trusted for cached tokens as soon as
/// Baton fetches the set again: the fetch empties the cache, and a check
/// that began before it remembers nothing.
pub const VERIFIED_FOR: Duration = Duration::from_secs(60);
/// Most tokens remembered; past this the cache is emptied and starts again.
const VERIFIED_MAX: usize = 10_000;
/// Fewest seconds between two JWKS fetches caused by unknown `kid`s.
const JWKS_MIN_REFRESH: Duration = Duration::from_secs(30);
/// A JWKS fetch that takes longer than this is abandoned: at start it fails
/// the start, later it leaves the keys held so far in place.
const JWKS_TIMEOUT: Duration = Duration::from_secs(5);

/// What a caller may do, as the `role` claim says (`ward`, `team`, `system`,
/// `admin`). The API's policy decides what each one allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Staff of one hospital's wards (scope: `hospital`).
    Ward,
    /// A community team (scope: `team`).
    Team,
    /// System-wide oversight: counts, never identities.
    System,
    /// Manages reference data.
    Admin,
}

impl Role {
    /// Every role, in the contract's order.
    pub const ALL: [Role; 4] = [Role::Ward, Role::Team, Role::System, Role::Admin];

    /// The claim's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ward => "ward",
            Role::Team => "team",
            Role::System => "system",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `role` that is none of the four.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?} (expected ward, team, system or admin)")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// The verified caller: who, in which role, and for which hospital or team.
///
/// Only the scope that belongs to the role is kept (`hospital` for `ward`,
/// `team` for `team`, neither for `system` and `admin`), so the policy never
/// reads a scope the role does not carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// User id (`sub`).
    pub sub: String,
    /// Display name (`name`; the `sub` when the token has none).
    pub name: String,
    /// Role (`role`).
    pub role: Role,
    /// Hospital code, for `ward`.
    pub hospital: Option<String>,
    /// Team code, for `team`.
    pub team: Option<String>,
}

impl Principal {
    /// Checks that the role has its scope and drops the scope of other roles.
    fn scoped(self) -> Result<Self, ClaimsProblem> {
        let Principal {
            sub,
            name,
            role,
            hospital,
            team,
        } = self;
        if sub.is_empty() {
            return Err(ClaimsProblem::Missing("sub".to_owned()));
        }
        let hospital = hospital.filter(|h| !h.is_empty());
        let team = team.filter(|t| !t.is_empty());
        let (hospital, team) = match role {
            Role::Ward => (
                Some(hospital.ok_or(ClaimsProblem::WardWithoutHospital)?),
                None,
            ),
            Role::Team => (None, Some(team.ok_or(ClaimsProblem::TeamWithoutTeam)?)),
            Role::System | Role::Admin => (None, None),
        };
        Ok(Principal {
            sub,
            name,
            role,
            hospital,
            team,
        })
    }
}

/// Why a signed token's claims do not describe a caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsProblem {
    /// A required claim (`sub`, `role`, `exp`, or a configured `iss`/`aud`)
    /// is absent.
    #[error("the {0} claim is missing")]
    Missing(String),
    /// A registered claim (`exp`, `nbf`) has the wrong JSON type.
    #[error("the {0} claim is not valid")]
    Invalid(String),
    /// `role` is none of `ward`, `team`, `system`, `admin`.
    #[error(transparent)]
    UnknownRole(#[from] UnknownRole),
    /// A `ward` token without `hospital`.
    #[error("a ward token needs a hospital claim")]
    WardWithoutHospital,
    /// A `team` token without `team`.
    #[error("a team token needs a team claim")]
    TeamWithoutTeam,
}

/// Why a token was refused, or why the source of trust could not be set up.
///
/// The variants stay distinct so that callers and tests can tell them apart;
/// the API answers all the token ones with 401.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No token at all.
    #[error("no bearer token was given")]
    Missing,
    /// Not three base64url parts of JSON.
    #[error("the bearer token is not a well-formed JWT")]
    Malformed,
    /// `exp` is in the past (beyond the leeway).
    #[error("the token has expired")]
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// The signature does not verify with the trusted key.
    #[error("the token's signature does not verify with a trusted key")]
    BadSignature,
    /// The header names an algorithm other than the trusted key's.
    #[error("the token is signed with an algorithm this server does not accept")]
    WrongAlgorithm,
    /// `iss` is not the configured issuer.
    #[error("the token was issued by another issuer")]
    WrongIssuer,
    /// `aud` is not the configured audience.
    #[error("the token is meant for another audience")]
    WrongAudience,
    /// Signed and current, but its claims do not describe a caller.
    #[error("the token's claims are not acceptable: {0}")]
    BadClaims(#[from] ClaimsProblem),
    /// The token names a `kid` the identity provider's JWKS does not hold,
    /// even after fetching it again (or too soon to fetch it again).
    #[error("the token names a key ({0}) the identity provider does not publish")]
    UnknownKey(String),
    /// A key could not be read, fetched, generated or used to sign.
    #[error(transparent)]
    KeySource(#[from] KeySourceError),
    /// The settings contradict each other.
    #[error("authentication is misconfigured: {0}")]
    Misconfigured(&'static str),
}

/// Why a key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeySourceError {
    /// Reading or writing a key file (or its directory) failed.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The public key file is not an Ed25519 or RSA public key in PEM.
    #[error("{} is not an Ed25519 or RSA public key in PEM", path.display())]
    NotAPublicKey {
        /// The file.
        path: PathBuf,
        /// The parser's error, when it had one.
        #[source]
        source: Option<jsonwebtoken::errors::Error>,
    },
    /// The local signing key file is not an Ed25519 private key in PKCS#8 PEM.
    #[error("{} is not an Ed25519 private key in PKCS#8 PEM", path.display())]
    NotASigningKey {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: ed25519_dalek::pkcs8::Error,
    },
    /// A new local signing key could not be encoded.
    #[error("cannot encode a new signing key")]
    Generate(#[source] ed25519_dalek::pkcs8::Error),
    /// The HTTP client for the JWKS could not be built.
    #[error("cannot build the HTTP client for the JWKS")]
    Client(#[source] reqwest::Error),
    /// Fetching or parsing the JWKS failed.
    #[error("cannot fetch the JWKS from {url}")]
    Fetch {
        /// The JWKS URL.
        url: String,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// The JWKS holds no Ed25519 (EdDSA) or RSA (RS256) signing key.
    #[error("the JWKS at {url} holds no EdDSA or RS256 signing key")]
    NoUsableKey {
        /// The JWKS URL.
        url: String,
    },
    /// Signing a token failed.
    #[error("cannot sign the token")]
    Sign(#[source] jsonwebtoken::errors::Error),
}

/// A key the server trusts, with the one algorithm it verifies.
#[derive(Clone)]
struct TrustedKey {
    key: DecodingKey,
    algorithm: Algorithm,
}

impl TrustedKey {
    /// An Ed25519 public key: exactly 32 bytes, checked here because the
    /// verifier would otherwise slice a shorter key and panic.
    fn ed25519(raw: &[u8]) -> Option<Self> {
        (raw.len() == 32).then(|| TrustedKey {
            key: DecodingKey::from_ed_der(raw),
            algorithm: Algorithm::EdDSA,
        })
    }
}

/// The keys of a JWKS usable for EdDSA or RS256.
#[derive(Default)]
struct KeySet {
    by_kid: HashMap<String, TrustedKey>,
    without_kid: Vec<TrustedKey>,
}

impl KeySet {
    fn is_empty(&self) -> bool {
        self.by_kid.is_empty() && self.without_kid.is_empty()
    }

    fn len(&self) -> usize {
        self.by_kid.len() + self.without_kid.len()
    }
}

/// A JWKS URL, the keys last fetched from it, and when.
struct Jwks {
    url: String,
    client: reqwest::Client,
    min_refresh: Duration,
    keys: RwLock<Arc<KeySet>>,
    /// When the keys were last fetched; the lock also makes concurrent
    /// unknown-`kid` tokens wait for one fetch instead of each starting one.
    fetched_at: tokio::sync::Mutex<Instant>,
}

impl Jwks {
    fn current(&self) -> Arc<KeySet> {
        // A poisoned lock only means a writer panicked between two complete
        // key sets; the set inside is still whole.
        Arc::clone(&self.keys.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Fetches the JWKS again unless it was fetched less than `min_refresh`
    /// ago. A failed or empty fetch keeps the keys held so far: a provider's
    /// bad minute must not lock every caller out.
    /// Returns whether the keys were replaced.
    async fn refresh_if_due(&self) -> bool {
        let mut fetched_at = self.fetched_at.lock().await;
        if fetched_at.elapsed() < self.min_refresh {
            return false;
        }
        *fetched_at = Instant::now();
        match fetch_jwks(&self.client, &self.url).await {
            Ok(keys) => {
                tracing::info!(url = %self.url, keys = keys.len(), "JWKS fetched again");
                *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
                true
            }
            Err(error) => {
                tracing::warn!(url = %self.url, error = %error, "JWKS fetch failed; keeping the keys held");
                false
            }
        }
    }
}

/// Where trust comes from.
enum Trust {
    Local { path: PathBuf, key: TrustedKey },
    KeyFile { path: PathBuf, key: TrustedKey },
    Jwks(Jwks),
}

struct Inner {
    trust: Trust,
    issuer: Option<String>,
    audience: Option<String>,
    verified: Verified,
}

/// Tokens verified lately (see [`VERIFIED_FOR`]), by their exact text: a
/// token is only ever found again by itself, signature and all. The
/// generation counts the times the cache was emptied for new keys.
#[derive(Default)]
struct Verified(std::sync::Mutex<VerifiedTokens>);

#[derive(Default)]
struct VerifiedTokens {
    generation: u64,
    tokens: HashMap<Box<str>, (Principal, Instant)>,
}

impl Verified {
    fn get(&self, token: &str) -> Option<Principal> {
        let entries = self.0.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .tokens
            .get(token)
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(principal, _)| principal.clone())
    }

    /// The generation to hand to `insert` for a check starting now.
    fn generation(&self) -> u64 {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).generation
    }

    /// Remembers `token` until `VERIFIED_FOR` from now or its `exp`
    /// (seconds since the epoch), whichever is sooner, unless the cache was
    /// emptied for new keys since the check began (`generation`).
    fn insert(&self, token: &str, principal: &Principal, exp: u64, generation: u64) {
        let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
        let Some(left) = exp.checked_sub(now) else {
            return;
        };
        let until = Instant::now() + VERIFIED_FOR.min(Duration::from_secs(left));
        let mut entries = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if entries.generation != generation {
            return;
        }
        if entries.tokens.len() >= VERIFIED_MAX {
            entries.tokens.clear();
        }
        entries
            .tokens
            .insert(token.into(), (principal.clone(), until));
    }

    /// Empties the cache for new keys.
    fn clear(&self) {
        let mut entries = self.0.lock().unwrap_or_else(|e| e.into_inner());
        entries.tokens.clear();
        entries.generation = entries.generation.wrapping_add(1);
    }
}

/// Verifies bearer tokens against the configured source of trust. Cheap to
/// clone: the keys are shared.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
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
            (None, None) => Self::local(&config.data_dir),
        }
    }

    /// Trusts only the local key of `data_dir`, creating it if need be.
    fn local(data_dir: &Path) -> Result<Self, AuthError> {
        let local = LocalKey::load_or_create(data_dir)?;
        Ok(Self::new(
            Trust::Local {
                path: local.path,
                key: local.verifying,
            },
            Some(LOCAL_ISSUER.to_owned()),
            Some(LOCAL_AUDIENCE.to_owned()),
        ))
    }

    /// Trusts the Ed25519 or RSA public key in a PEM file.
    fn from_public_key_file(
        path: &Path,
        issuer: Option<String>,
        audience: Option<String>,
    ) -> Result<Self, AuthError> {
        let pem = std::fs::read(path).map_err(|source| KeySourceError::Io {
            action: "read the public key file",
            path: path.to_owned(),
            source,
        })?;
        if String::from_utf8_lossy(&pem).contains("PRIVATE KEY") {
            return Err(AuthError::Misconfigured(
                "jwt_public_key_file holds a private key; give the public key",
            ));
        }
        let key = match DecodingKey::from_ed_pem(&pem) {
            Ok(key) => key
                .try_get_as_bytes()
                .ok()
                .and_then(TrustedKey::ed25519)
                .ok_or_else(|| KeySourceError::NotAPublicKey {
                    path: path.to_owned(),
                    source: None,
                })?,
            Err(_) => TrustedKey {
                key: DecodingKey::from_rsa_pem(&pem).map_err(|source| {
                    KeySourceError::NotAPublicKey {
                        path: path.to_owned(),
                        source: Some(source),
                    }
                })?,
                algorithm: Algorithm::RS256,
            },
        };
        Ok(Self::new(
            Trust::KeyFile {
                path: path.to_owned(),
                key,
            },
            issuer,
            audience,
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
        let keys = fetch_jwks(&client, url).await?;
        tracing::info!(url, keys = keys.len(), "JWKS fetched");
        Ok(Self::new(
            Trust::Jwks(Jwks {
                url: url.to_owned(),
                client,
                min_refresh,
                keys: RwLock::new(Arc::new(keys)),
                fetched_at: tokio::sync::Mutex::new(Instant::now()),
            }),
            issuer,
            audience,
        ))
    }

    fn new(trust: Trust, issuer: Option<String>, audience: Option<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                trust,
                issuer,
                audience,
                verified: Verified::default(),
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
        if let Some(principal) = self.inner.verified.get(token) {
            return Ok(principal);
        }
        let generation = self.inner.verified.generation();
        let (principal, exp) = self.verify_afresh(token).await?;
        self.inner
            .verified
            .insert(token, &principal, exp, generation);
        Ok(principal)
    }

    /// Verifies a token's signature and claims; returns who it is and its
    /// `exp`.
    async fn verify_afresh(&self, token: &str) -> Result<(Principal, u64), AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
        match &self.inner.trust {
            Trust::Local { key, .. } | Trust::KeyFile { key, .. } => self.check(token, key),
            Trust::Jwks(jwks) => {
                let Some(kid) = header.kid else {
                    // Without a `kid` any key of the token's algorithm may
                    // have signed it; the first that verifies decides.
                    let keys = jwks.current();
                    let mut outcome = Err(AuthError::WrongAlgorithm);
                    for key in keys.without_kid.iter().chain(keys.by_kid.values()) {
                        if key.algorithm == header.alg {
                            outcome = self.check(token, key);
                            if !matches!(outcome, Err(AuthError::BadSignature)) {
                                break;
                            }
                        }
                    }
                    return outcome;
                };
                if let Some(key) = jwks.current().by_kid.get(&kid) {
                    return self.check(token, key);
                }
                if jwks.refresh_if_due().await {
                    self.inner.verified.clear();
                }
                match jwks.current().by_kid.get(&kid) {
                    Some(key) => self.check(token, key),
                    None => Err(AuthError::UnknownKey(kid)),
                }
            }
        }
    }

    /// Verifies `token` with one trusted key and reads its claims.
    fn check(&self, token: &str, key: &TrustedKey) -> Result<(Principal, u64), AuthError> {
        let mut validation = Validation::new(key.algorithm);
        validation.leeway = LEEWAY.as_secs();
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        match &self.inner.issuer {
            Some(issuer) => {
                validation.set_issuer(&[issuer]);
                required.push("iss");
            }
            None => validation.iss = None,
        }
        match &self.inner.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        let data = jsonwebtoken::decode::<IncomingClaims>(token, &key.key, &validation)
            .map_err(refusal)?;
        // `exp` is required and was checked by the library.
        let exp = data.claims.exp.unwrap_or(0);
        Ok((data.claims.into_principal()?, exp))
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
        let issuer = scope("issuer", &self.inner.issuer);
        let audience = scope("audience", &self.inner.audience);
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

/// Maps the JWT library's refusal onto ours.
fn refusal(error: jsonwebtoken::errors::Error) -> AuthError {
    match error.kind() {
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::UnsupportedAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::MissingAlgorithm => AuthError::WrongAlgorithm,
        ErrorKind::MissingRequiredClaim(claim) => ClaimsProblem::Missing(claim.clone()).into(),
        ErrorKind::InvalidClaimFormat(claim) => ClaimsProblem::Invalid(claim.clone()).into(),
        // A trusted key the crypto library will not use verifies nothing.
        ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat => AuthError::BadSignature,
        _ => AuthError::Malformed,
    }
}

/// The claims read from a token; the registered ones (`exp`, `nbf`, `iss`,
/// `aud`) are checked by the JWT library before these are looked at.
/// Unknown claims are ignored: identity providers add their own.
#[derive(Deserialize)]
struct IncomingClaims {
    exp: Option<u64>,
    sub: Option<String>,
    name: Option<String>,
    role: Option<String>,
    hospital: Option<String>,
    team: Option<String>,
}

impl IncomingClaims {
    fn into_principal(self) -> Result<Principal, ClaimsProblem> {
        let sub = self
            .sub
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ClaimsProblem::Missing("sub".to_owned()))?;
        let role = self
            .role
            .filter(|r| !r.is_empty())
            .ok_or_else(|| ClaimsProblem::Missing("role".to_owned()))?
            .parse::<Role>()?;
        let name = self
            .name
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| sub.clone());
        Principal {
            sub,
            name,
            role,
            hospital: self.hospital,
            team: self.team,
        }
        .scoped()
    }
}

/// The claims `baton token` signs.
#[derive(Serialize)]
struct OutgoingClaims<'a> {
    sub: &'a str,
    name: &'a str,
    role: Role,
    #[serde(skip_serializing_if = "Option::is_none")]
    hospital: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    team: Option<&'a str>,
    iss: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

/// Signs a token with the local key of `data_dir` (creating the key on first
/// use): what `baton token` prints. The principal is checked as a verified
/// token would be, so no token is printed that the server would refuse.
pub fn sign_local(
    data_dir: &Path,
    principal: &Principal,
    valid_for: Duration,
) -> Result<String, AuthError> {
    let principal = principal.clone().scoped()?;
    let local = LocalKey::load_or_create(data_dir)?;
    let iat = jsonwebtoken::get_current_timestamp();
    let claims = OutgoingClaims {
        sub: &principal.sub,
        name: &principal.name,
        role: principal.role,
        hospital: principal.hospital.as_deref(),
        team: principal.team.as_deref(),
        iss: LOCAL_ISSUER,
        aud: LOCAL_AUDIENCE,
        iat,
        exp: iat.saturating_add(valid_for.as_secs()),
    };
    local.sign(&claims)
}

/// The local Ed25519 key pair.
struct LocalKey {
    path: PathBuf,
    signing: EncodingKey,
    verifying: TrustedKey,
}

impl LocalKey {
    /// Reads `<data_dir>/baton-signing-key.pem`, creating it first if it
    /// does not exist.
    fn load_or_create(data_dir: &Path) -> Result<Self, AuthError> {
        let path = data_dir.join(LOCAL_KEY_FILE);
        let pem = match std::fs::read_to_string(&path) {
            Ok(pem) => {
                warn_if_readable_by_others(&path);
                pem
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                create_local_key(data_dir, &path)?
            }
            Err(source) => {
                return Err(KeySourceError::Io {
                    action: "read the signing key",
                    path,
                    source,
                }
                .into())
            }
        };
        let signing = ed25519_dalek::SigningKey::from_pkcs8_pem(&pem).map_err(|source| {
            KeySourceError::NotASigningKey {
                path: path.clone(),
                source,
            }
        })?;
        // Re-encoded rather than handed over as read: a PKCS#8 v1 file (as
        // `openssl genpkey` writes) parses here too.
        let der = signing.to_pkcs8_der().map_err(KeySourceError::Generate)?;
        Ok(LocalKey {
            path,
            signing: EncodingKey::from_ed_der(der.as_bytes()),
            verifying: TrustedKey {
                key: DecodingKey::from_ed_der(signing.verifying_key().as_bytes()),
                algorithm: Algorithm::EdDSA,
            },
        })
    }

    fn sign(&self, claims: &impl Serialize) -> Result<String, AuthError> {
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), claims, &self.signing)
            .map_err(|e| KeySourceError::Sign(e).into())
    }
}

/// Writes a new key to a private temporary file and links it into place, so
/// that a process starting at the same moment (`baton serve` beside
/// `baton token`) either sees no file or a whole one, and whichever links
/// second uses the first one's key. Returns the PEM now at `path`.
fn create_local_key(data_dir: &Path, path: &Path) -> Result<String, AuthError> {
    let io = |action, path: &Path| {
        let path = path.to_owned();
        move |source| KeySourceError::Io {
            action,
            path,
            source,
        }
    };
    std::fs::create_dir_all(data_dir).map_err(io("create the data directory", data_dir))?;
    let key = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
    let pem = key
        .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .map_err(KeySourceError::Generate)?;
    let tmp = data_dir.join(format!(
        ".{LOCAL_KEY_FILE}.{}.{}.tmp",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let written = write_private(&tmp, pem.as_bytes()).map_err(io("write the signing key", &tmp));
    let linked = written.and_then(|()| match std::fs::hard_link(&tmp, path) {
        Ok(()) => {
            tracing::info!(path = %path.display(), "created the local signing key");
            Ok(())
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(KeySourceError::Io {
            action: "create the signing key",
            path: path.to_owned(),
            source,
        }),
    });
    // The temporary name is only a step towards `path`; leaving it behind
    // would leave a second copy of the key.
    let _ = std::fs::remove_file(&tmp);
    linked?;
    Ok(std::fs::read_to_string(path).map_err(io("read the signing key", path))?)
}

/// Creates `path` (which must not exist) readable and writable by its owner
/// only, writes `bytes` and flushes them to disk.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Anyone who can read the key can sign tokens for any role.
fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    "the local signing key is readable by other users; chmod 600 it"
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// Fetches a JWKS and keeps its EdDSA and RS256 signing keys. Keys it
/// cannot use (encryption keys, HMAC, other algorithms, malformed entries)
/// are skipped rather than failing the set, as providers publish several
/// kinds side by side.
async fn fetch_jwks(client: &reqwest::Client, url: &str) -> Result<KeySet, AuthError> {
    let fetch = |source| KeySourceError::Fetch {
        url: url.to_owned(),
        source,
    };
    let body: JwksDocument = client
        .get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(fetch)?
        .json()
        .await
        .map_err(fetch)?;
    let mut keys = KeySet::default();
    for value in body.keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
            continue;
        };
        let Some(key) = trusted_key(&jwk) else {
            continue;
        };
        match jwk.common.key_id {
            Some(kid) => {
                keys.by_kid.insert(kid, key);
            }
            None => keys.without_kid.push(key),
        }
    }
    if keys.is_empty() {
        return Err(KeySourceError::NoUsableKey {
            url: url.to_owned(),
        }
        .into());
    }
    Ok(keys)
}

/// A JWKS with its entries left raw, so that one entry this library cannot
/// parse does not lose the others.
#[derive(Deserialize)]
struct JwksDocument {
    keys: Vec<serde_json::Value>,
}

/// The key of a JWK, if it is an Ed25519 or RSA key meant for verifying
/// signatures with EdDSA or RS256.
fn trusted_key(jwk: &Jwk) -> Option<TrustedKey> {
    let common = &jwk.common;
    if matches!(&common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    if matches!(&common.key_operations, Some(ops) if !ops.contains(&KeyOperations::Verify)) {
        return None;
    }
    let (algorithm, key) = match &jwk.algorithm {
        AlgorithmParameters::RSA(rsa) => (
            KeyAlgorithm::RS256,
            TrustedKey {
                key: DecodingKey::from_rsa_components(&rsa.n, &rsa.e).ok()?,
                algorithm: Algorithm::RS256,
            },
        ),
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => (
            KeyAlgorithm::EdDSA,
            TrustedKey::ed25519(
                DecodingKey::from_ed_components(&okp.x)
                    .ok()?
                    .try_get_as_bytes()
                    .ok()?,
            )?,
        ),
        _ => return None,
    };
    match common.key_algorithm {
        Some(named) if named != algorithm => None,
        _ => Some(key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use ed25519_dalek::pkcs8::EncodePublicKey as _;
    use serde_json::json;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    const RSA_PRIVATE: &str = include_str!("../tests/fixtures/test-only-rsa-private.pem");
    const RSA_PUBLIC: &str = include_str!("../tests/fixtures/test-only-rsa-public.pem");

    fn principal(role: Role, hospital: Option<&str>, team: Option<&str>) -> Principal {
        Principal {
            sub: "u-42".to_owned(),
            name: "Sam Carter".to_owned(),
            role,
            hospital: hospital.map(str::to_owned),
            team: team.map(str::to_owned),
        }
    }

    fn ward() -> Principal {
        principal(Role::Ward, Some("RXH"), None)
    }

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    /// Claims as the local key would sign them, for tests that change one.
    fn local_claims() -> serde_json::Value {
        json!({
            "sub": "u-42", "name": "Sam Carter", "role": "ward", "hospital": "RXH",
            "iss": LOCAL_ISSUER, "aud": LOCAL_AUDIENCE, "iat": now(), "exp": now() + 600,
        })
    }

    fn sign_with_local_key(dir: &Path, claims: &serde_json::Value) -> String {
        LocalKey::load_or_create(dir).unwrap().sign(claims).unwrap()
    }

    fn config(dir: &Path) -> Config {
        Config {
            data_dir: dir.to_owned(),
            ..Config::default()
        }
    }

    /// An Ed25519 key pair of a pretend identity provider: its signing key
    /// and the path of its public key PEM inside `dir`.
    fn provider_ed25519_key(dir: &Path) -> (EncodingKey, PathBuf) {
        let key = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
        let der = key.to_pkcs8_der().unwrap();
        let public = key
            .verifying_key()
            .to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .unwrap();
        let path = dir.join("idp-public.pem");
        std::fs::write(&path, public).unwrap();
        (EncodingKey::from_ed_der(der.as_bytes()), path)
    }

    fn sign(
        key: &EncodingKey,
        alg: Algorithm,
        kid: Option<&str>,
        claims: &serde_json::Value,
    ) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, key).unwrap()
    }

    fn idp_claims(iss: &str, aud: &str) -> serde_json::Value {
        json!({
            "sub": "u-7", "name": "Alex Team", "role": "team", "team": "REAB-N",
            "iss": iss, "aud": aud, "iat": now(), "exp": now() + 600,
        })
    }

    fn external(dir: &Path, key_file: PathBuf) -> Config {
        Config {
            jwt_issuer: Some("https://idp.example".to_owned()),
            jwt_audience: Some("baton-api".to_owned()),
            jwt_public_key_file: Some(key_file),
            ..config(dir)
        }
    }

    #[tokio::test]
    async fn a_locally_signed_token_verifies_and_round_trips_the_principal() {
        let dir = tempfile::tempdir().unwrap();
        let auth = Authenticator::from_config(&config(dir.path()))
            .await
            .unwrap();
        for who in [
            ward(),
            principal(Role::Team, None, Some("REAB-N")),
            principal(Role::System, None, None),
            principal(Role::Admin, None, None),
        ] {
            let token = sign_local(dir.path(), &who, Duration::from_secs(600)).unwrap();
            assert_eq!(auth.verify(&token).await.unwrap(), who);
        }
        assert!(auth.describe().starts_with("local key "));
        assert!(auth.describe().contains(LOCAL_KEY_FILE));
    }

    #[tokio::test]
    async fn the_local_key_is_created_once_private_and_reused_by_a_second_authenticator() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let token = sign_local(&data_dir, &ward(), Duration::from_secs(600)).unwrap();
        let path = data_dir.join(LOCAL_KEY_FILE);
        let pem = std::fs::read_to_string(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        let first = Authenticator::from_config(&config(&data_dir))
            .await
            .unwrap();
        let second = Authenticator::from_config(&config(&data_dir))
            .await
            .unwrap();
        assert_eq!(first.verify(&token).await.unwrap(), ward());
        assert_eq!(second.verify(&token).await.unwrap(), ward());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), pem);
        let leftovers: Vec<_> = std::fs::read_dir(&data_dir).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "only the key file, no temporary copies");
    }

    #[test]
    fn processes_creating_the_local_key_at_the_same_moment_end_up_with_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let keys: Vec<Vec<u8>> = std::thread::scope(|scope| {
            let racers: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        let key = LocalKey::load_or_create(&data_dir).unwrap();
                        key.verifying.key.try_get_as_bytes().unwrap().to_vec()
                    })
                })
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        assert!(keys.windows(2).all(|pair| pair[0] == pair[1]));
        assert_eq!(std::fs::read_dir(&data_dir).unwrap().count(), 1);
    }

    #[tokio::test]
    async fn an_expired_token_is_refused_as_expired() {
        let dir = tempfile::tempdir().unwrap();
        let auth = Authenticator::from_config(&config(dir.path()))
            .await
            .unwrap();
        let mut claims = local_claims();
        claims["exp"] = json!(now() - 120);
        let token = sign_with_local_key(dir.path(), &claims);
        assert!(matches!(auth.verify(&token).await, Err(AuthError::Expired)));
    }

    #[tokio::test]
    async fn a_token_expired_within_the_leeway_still_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let auth = Authenticator::from_config(&config(dir.path()))
            .await
            .unwrap();
        let mut claims = local_claims();
        claims["exp"] = json!(now() - 10);
        let token = sign_with_local_key(dir.path(), &claims);
        assert_eq!(auth.verify(&token).await.unwrap(), ward());
    }

    #[tokio::test]
    async fn a_token_without_exp_or_with_a_future_nbf_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let auth = Authenticator::from_config(&config(dir.path()))
            .await
            .unwrap();
        let mut claims = local_claims();
        claims.as_object_mut().unwrap().remove("exp");
        let token = sign_with_local_key(dir.path(), &claims);
        assert!(matches!(
            auth.verify(&token).await,
            Err(AuthError::BadClaims(ClaimsProblem::Missing(claim))) if claim == "exp"
        ));

        let mut claims = local_claims();
        claims["nbf"] = json!(now() + 3600);
        let token = sign_with_local_key(dir.path(), &claims);
        assert!(matches!(
            auth.verify(&token).await,
            Err(AuthError::NotYetValid)
        ));

        let mut claims = local_claims();
        claims["nbf"] = json!("someday");
        let token = sign_with_local_key(dir.path(), &claims);
        assert!(matches!(
            auth.verify(&token).await,
            Err(AuthError::BadClaims(ClaimsProblem::Invalid(claim))) if claim == "nbf"
        ));
    }

    #[tokio::test]
    async fn a_tampered_signature_or_edited_claims_are_refused_as_bad_signature() {
        let dir = tempfile::tempdir().unwrap();
        let auth = Authenticator::from_config(&config(dir.path()))
            .await
            .unwrap();
        let token = sign_local(dir.path(), &ward(), Duration::from_secs(600)).unwrap();
        // Verified, and so remembered: its altered copies must still fail.
        assert_eq!(auth.verify(&token).await.unwrap(), ward());

        let (message, signature) = token.rsplit_once('.').unwrap();
        let mut signature = signature.as_bytes().to_vec();
        signature[10] = if signature[10] == b'A' { b'B' } else { b'A' };
        let tampered = format!("{message}.{}", String::from_utf8(signature).unwrap());
        assert!(matches!(
            auth.verify(&tampered).await,
            Err(AuthError::BadSignature)
        ));

        let (header, rest) = token.split_once('.').unwrap();
        let (_, signature) = rest.split_once('.').unwrap();
        let mut claims = local_claims();
        claims["role"] = json!("admin");
        let payload = base64_url(&serde_json::to_vec(&claims).unwrap());
        let edited = format!("{header}.{payload}.{signature}");
        assert!(matches!(
            auth.verify(&edited).await,
            Err(AuthError::BadSignature)
        ));
    }

    fn base64_url(bytes: &[u8]) -> String {
        // Unpadded base64url, as JWTs encode their parts.
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
            for i in 0..=chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            }
        }
        out
    }

    #[tokio::test]
    async fn a_token_signed_by_another_local_key_is_refused_as_bad_signature() {
        let ours = tempfile::tempdir().unwrap();
        let theirs = tempfile::tempdir().unwrap();
        let auth = Authenticator::from_config(&config(ours.path()))
            .await
            .unwrap();
        let token = sign_local(theirs.path(), &ward(), Duration::from_secs(600)).unwrap();
        assert!(matches!(
            auth.verify(&token).await,
            Err(AuthError::BadSignature)
        ));
    }

    #[tokio::test]
    async fn scope_and_role_problems_are_refused_as_bad_claims() {
        let dir = tempfile::tempdir().unwrap();
        let auth = Authenticator::from_config(&config(dir.path()))
            .await
            .unwrap();
        let verify = |change: fn(&mut serde_json::Value)| {
            let mut claims = local_claims();
            change(&mut claims);
            let token = sign_with_local_key(dir.path(), &claims);
            let auth = auth.clone();
            async move { auth.verify(&token).await }
        };

        let ward_without_hospital = verify(|c| {
            c.as_object_mut().unwrap().remove("hospital");
        });
        assert!(matches!(
            ward_without_hospital.await,
            Err(AuthError::BadClaims(ClaimsProblem::WardWithoutHospital))
        ));
        let team_without_team = verify(|c| c["role"] = json!("team"));
        assert!(matches!(
            team_without_team.await,
            Err(AuthError::BadClaims(ClaimsProblem::TeamWithoutTeam))
        ));
        let unknown_role = verify(|c| c["role"] = json!("porter"));
        assert!(matches!(
            unknown_role.await,
            Err(AuthError::BadClaims(ClaimsProblem::UnknownRole(UnknownRole(role)))) if role == "porter"
        ));
        let no_role = verify(|c| {
            c.as_object_mut().unwrap().remove("role");
        });
        assert!(matches!(
            no_role.await,
            Err(AuthError::BadClaims(ClaimsProblem::Missing(claim))) if claim == "role"
        ));
        let no_sub = verify(|c| {
            c.as_object_mut().unwrap().remove("sub");
        });
        assert!(matches!(
            no_sub.await,
            Err(AuthError::BadClaims(ClaimsProblem::Missing(claim))) if claim == "sub"
        ));
    }

    #[tokio::test]
    async fn the_scope_of_another_role_is_dropped_and_a_missing_name_falls_back_to_the_sub() {
        let dir = tempfile::tempdir().unwrap();
        let auth = Authenticator::from_config(&config(dir.path()))
            .await
            .unwrap();
        let mut claims = local_claims();
        claims["team"] = json!("REAB-N");
        claims.as_object_mut().unwrap().remove("name");
        let token = sign_with_local_key(dir.path(), &claims);
        let who = auth.verify(&token).await.unwrap();
        assert_eq!(who.team, None);
        assert_eq!(who.hospital.as_deref(), Some("RXH"));
        assert_eq!(who.name, "u-42");
    }

    #[test]
    fn sign_local_refuses_a_principal_the_server_would_refuse() {
        let dir = tempfile::tempdir().unwrap();
        let refused = |p: Principal| sign_local(dir.path(), &p, Duration::from_secs(60));
        assert!(matches!(
            refused(principal(Role::Ward, None, Some("REAB-N"))),
            Err(AuthError::BadClaims(ClaimsProblem::WardWithoutHospital))
        ));
        assert!(matches!(
            refused(principal(Role::Team, Some("RXH"), None)),
            Err(AuthError::BadClaims(ClaimsProblem::TeamWithoutTeam))
        ));
    }

    #[tokio::test]
    async fn no_token_or_garbage_is_refused_as_missing_or_malformed() {
        let dir = tempfile::tempdir().unwrap();
        let auth = Authenticator::from_config(&config(dir.path()))
            .await
            .unwrap();
        assert!(matches!(auth.verify("").await, Err(AuthError::Missing)));
        assert!(matches!(auth.verify("  ").await, Err(AuthError::Missing)));
        assert!(matches!(
            auth.verify("not-a-jwt").await,
            Err(AuthError::Malformed)
        ));
        assert!(matches!(
            auth.verify("a.b.c").await,
            Err(AuthError::Malformed)
        ));
        // `alg: none` is not an algorithm the library even parses.
        let none = format!(
            "{}.{}.",
            base64_url(br#"{"alg":"none","typ":"JWT"}"#),
            base64_url(&serde_json::to_vec(&local_claims()).unwrap())
        );
        assert!(matches!(
            auth.verify(&none).await,
            Err(AuthError::Malformed)
        ));
    }

    #[tokio::test]
    async fn a_token_claiming_another_algorithm_is_refused_as_wrong_algorithm() {
        let dir = tempfile::tempdir().unwrap();
        let auth = Authenticator::from_config(&config(dir.path()))
            .await
            .unwrap();
        // HMAC keyed with something public: the classic confusion attack.
        let token = sign(
            &EncodingKey::from_secret(b"the public key, perhaps"),
            Algorithm::HS256,
            None,
            &local_claims(),
        );
        assert!(matches!(
            auth.verify(&token).await,
            Err(AuthError::WrongAlgorithm)
        ));
    }

    #[tokio::test]
    async fn an_ed25519_public_key_file_trusts_the_right_issuer_and_audience_only() {
        let dir = tempfile::tempdir().unwrap();
        let (idp, key_file) = provider_ed25519_key(dir.path());
        let auth = Authenticator::from_config(&external(dir.path(), key_file))
            .await
            .unwrap();
        assert!(auth.describe().contains("issuer https://idp.example"));

        let good = sign(
            &idp,
            Algorithm::EdDSA,
            None,
            &idp_claims("https://idp.example", "baton-api"),
        );
        assert_eq!(
            auth.verify(&good).await.unwrap(),
            Principal {
                sub: "u-7".to_owned(),
                name: "Alex Team".to_owned(),
                role: Role::Team,
                hospital: None,
                team: Some("REAB-N".to_owned()),
            }
        );
        let other_issuer = sign(
            &idp,
            Algorithm::EdDSA,
            None,
            &idp_claims("https://evil.example", "baton-api"),
        );
        assert!(matches!(
            auth.verify(&other_issuer).await,
            Err(AuthError::WrongIssuer)
        ));
        let other_audience = sign(
            &idp,
            Algorithm::EdDSA,
            None,
            &idp_claims("https://idp.example", "other-app"),
        );
        assert!(matches!(
            auth.verify(&other_audience).await,
            Err(AuthError::WrongAudience)
        ));

        let mut no_issuer = idp_claims("https://idp.example", "baton-api");
        no_issuer.as_object_mut().unwrap().remove("iss");
        let no_issuer = sign(&idp, Algorithm::EdDSA, None, &no_issuer);
        assert!(matches!(
            auth.verify(&no_issuer).await,
            Err(AuthError::BadClaims(ClaimsProblem::Missing(claim))) if claim == "iss"
        ));
    }

    #[tokio::test]
    async fn a_locally_signed_token_is_not_trusted_once_an_external_provider_is_configured() {
        let dir = tempfile::tempdir().unwrap();
        let (_, key_file) = provider_ed25519_key(dir.path());
        let auth = Authenticator::from_config(&external(dir.path(), key_file))
            .await
            .unwrap();
        let local = sign_local(dir.path(), &ward(), Duration::from_secs(600)).unwrap();
        assert!(matches!(
            auth.verify(&local).await,
            Err(AuthError::BadSignature)
        ));

        // Even with the external provider's issuer and audience.
        let mut claims = local_claims();
        claims["iss"] = json!("https://idp.example");
        claims["aud"] = json!("baton-api");
        let forged = sign_with_local_key(dir.path(), &claims);
        assert!(matches!(
            auth.verify(&forged).await,
            Err(AuthError::BadSignature)
        ));
    }

    #[tokio::test]
    async fn an_rsa_public_key_file_verifies_rs256_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("idp-rsa.pem");
        std::fs::write(&key_file, RSA_PUBLIC).unwrap();
        let auth = Authenticator::from_config(&external(dir.path(), key_file))
            .await
            .unwrap();
        let idp = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap();
        let token = sign(
            &idp,
            Algorithm::RS256,
            None,
            &idp_claims("https://idp.example", "baton-api"),
        );
        assert_eq!(auth.verify(&token).await.unwrap().role, Role::Team);
    }

    #[tokio::test]
    async fn contradictory_or_unreadable_settings_fail_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let both = Config {
            jwt_public_key_file: Some(dir.path().join("x.pem")),
            jwks_url: Some("http://127.0.0.1:9/jwks".to_owned()),
            ..config(dir.path())
        };
        assert!(matches!(
            Authenticator::from_config(&both).await,
            Err(AuthError::Misconfigured(_))
        ));
        let issuer_only = Config {
            jwt_issuer: Some("https://idp.example".to_owned()),
            ..config(dir.path())
        };
        assert!(matches!(
            Authenticator::from_config(&issuer_only).await,
            Err(AuthError::Misconfigured(_))
        ));
        let missing_file = external(dir.path(), dir.path().join("absent.pem"));
        assert!(matches!(
            Authenticator::from_config(&missing_file).await,
            Err(AuthError::KeySource(KeySourceError::Io { .. }))
        ));
        let private_key = dir.path().join("private.pem");
        std::fs::write(&private_key, RSA_PRIVATE).unwrap();
        assert!(matches!(
            Authenticator::from_config(&external(dir.path(), private_key)).await,
            Err(AuthError::Misconfigured(_))
        ));
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        )
        .unwrap();
        assert!(matches!(
            Authenticator::from_config(&external(dir.path(), garbage)).await,
            Err(AuthError::KeySource(KeySourceError::NotAPublicKey { .. }))
        ));
        let unreachable = Config {
            jwks_url: Some("http://127.0.0.1:9/jwks".to_owned()),
            ..config(dir.path())
        };
        assert!(matches!(
            Authenticator::from_config(&unreachable).await,
            Err(AuthError::KeySource(KeySourceError::Fetch { .. }))
        ));
    }

    /// A one-route HTTP server on loopback that serves `body` as the JWKS
    /// and counts the requests.
    struct JwksServer {
        url: String,
        body: Arc<Mutex<String>>,
        hits: Arc<AtomicUsize>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Drop for JwksServer {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    impl JwksServer {
        async fn start(body: serde_json::Value) -> Self {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!(
                "http://{}/.well-known/jwks.json",
                listener.local_addr().unwrap()
            );
            let body = Arc::new(Mutex::new(body.to_string()));
            let hits = Arc::new(AtomicUsize::new(0));
            let (served, counted) = (Arc::clone(&body), Arc::clone(&hits));
            let task = tokio::spawn(async move {
                while let Ok((mut stream, _)) = listener.accept().await {
                    let body = served.lock().unwrap().clone();
                    counted.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(async move {
                        let mut request = Vec::new();
                        let mut buf = [0u8; 1024];
                        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                            match stream.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => request.extend_from_slice(&buf[..n]),
                            }
                        }
                        let response = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = stream.write_all(response.as_bytes()).await;
                        let _ = stream.shutdown().await;
                    });
                }
            });
            Self {
                url,
                body,
                hits,
                task,
            }
        }

        fn serve(&self, body: serde_json::Value) {
            *self.body.lock().unwrap() = body.to_string();
        }

        fn hits(&self) -> usize {
            self.hits.load(Ordering::SeqCst)
        }
    }

    fn rsa_jwk(kid: &str) -> serde_json::Value {
        let public = DecodingKey::from_rsa_pem(RSA_PUBLIC.as_bytes()).unwrap();
        let mut jwk =
            serde_json::to_value(Jwk::from_decoding_key(&public, Some(Algorithm::RS256)).unwrap())
                .unwrap();
        jwk["kid"] = json!(kid);
        jwk["use"] = json!("sig");
        jwk
    }

    async fn jwks_authenticator(server: &JwksServer, min_refresh: Duration) -> Authenticator {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(JWKS_TIMEOUT)
            .build()
            .unwrap();
        Authenticator::from_jwks_url(
            &server.url,
            client,
            Some("https://idp.example".to_owned()),
            Some("baton-api".to_owned()),
            min_refresh,
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn rs256_tokens_verify_against_the_jwks_key_their_kid_names() {
        let server = JwksServer::start(json!({"keys": [
            // Entries Baton cannot use sit beside the one it can.
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
            {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"},
            {"kty": "unknown-kind", "kid": "odd"},
            rsa_jwk("rsa-2026"),
        ]}))
        .await;
        let auth = jwks_authenticator(&server, JWKS_MIN_REFRESH).await;
        assert!(auth.describe().contains("via JWKS URL"));
        let idp = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap();
        let claims = idp_claims("https://idp.example", "baton-api");

        let token = sign(&idp, Algorithm::RS256, Some("rsa-2026"), &claims);
        assert_eq!(
            auth.verify(&token).await.unwrap().team.as_deref(),
            Some("REAB-N")
        );
        let without_kid = sign(&idp, Algorithm::RS256, None, &claims);
        assert_eq!(auth.verify(&without_kid).await.unwrap().sub, "u-7");

        let unknown = sign(&idp, Algorithm::RS256, Some("rsa-2027"), &claims);
        assert!(matches!(
            auth.verify(&unknown).await,
            Err(AuthError::UnknownKey(kid)) if kid == "rsa-2027"
        ));
        let hmac = sign(
            &EncodingKey::from_secret(b"secret"),
            Algorithm::HS256,
            Some("hmac"),
            &claims,
        );
        assert!(matches!(
            auth.verify(&hmac).await,
            Err(AuthError::UnknownKey(_))
        ));
        let wrong_audience = sign(
            &idp,
            Algorithm::RS256,
            Some("rsa-2026"),
            &idp_claims("https://idp.example", "x"),
        );
        assert!(matches!(
            auth.verify(&wrong_audience).await,
            Err(AuthError::WrongAudience)
        ));
    }

    #[tokio::test]
    async fn unknown_kids_fetch_the_jwks_again_at_most_once_per_interval() {
        let server = JwksServer::start(json!({"keys": [rsa_jwk("old")]})).await;
        let idp = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap();
        let claims = idp_claims("https://idp.example", "baton-api");
        let rotated = sign(&idp, Algorithm::RS256, Some("new"), &claims);

        let patient = jwks_authenticator(&server, JWKS_MIN_REFRESH).await;
        assert_eq!(server.hits(), 1);
        server.serve(json!({"keys": [rsa_jwk("new")]}));
        for _ in 0..5 {
            assert!(matches!(
                patient.verify(&rotated).await,
                Err(AuthError::UnknownKey(_))
            ));
        }
        assert_eq!(server.hits(), 1, "no fetch within 30 s of the last one");

        server.serve(json!({"keys": [rsa_jwk("old")]}));
        let eager = jwks_authenticator(&server, Duration::ZERO).await;
        assert_eq!(server.hits(), 2);
        server.serve(json!({"keys": [rsa_jwk("new")]}));
        assert_eq!(eager.verify(&rotated).await.unwrap().sub, "u-7");
        assert_eq!(server.hits(), 3, "the rotated key was fetched");
        assert_eq!(eager.verify(&rotated).await.unwrap().sub, "u-7");
        assert_eq!(server.hits(), 3, "a known kid fetches nothing");
    }

    #[tokio::test]
    async fn a_jwks_without_a_usable_key_fails_the_start_and_a_bad_refresh_keeps_the_keys() {
        let server = JwksServer::start(json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})).await;
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let refused =
            Authenticator::from_jwks_url(&server.url, client, None, None, Duration::ZERO).await;
        assert!(matches!(
            refused,
            Err(AuthError::KeySource(KeySourceError::NoUsableKey { .. }))
        ));

        server.serve(json!({"keys": [rsa_jwk("k1")]}));
        let auth = jwks_authenticator(&server, Duration::ZERO).await;
        server.serve(json!({"keys": []}));
        let idp = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap();
        let claims = idp_claims("https://idp.example", "baton-api");
        let unknown = sign(&idp, Algorithm::RS256, Some("k2"), &claims);
        assert!(matches!(
            auth.verify(&unknown).await,
            Err(AuthError::UnknownKey(_))
        ));
        let known = sign(&idp, Algorithm::RS256, Some("k1"), &claims);
        assert_eq!(auth.verify(&known).await.unwrap().sub, "u-7");
    }

    #[tokio::test]
    async fn a_jwks_refresh_forgets_the_tokens_verified_with_the_keys_it_withdrew() {
        let server = JwksServer::start(json!({"keys": [rsa_jwk("k1")]})).await;
        let auth = jwks_authenticator(&server, Duration::ZERO).await;
        let idp = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap();
        let claims = idp_claims("https://idp.example", "baton-api");
        let old = sign(&idp, Algorithm::RS256, Some("k1"), &claims);
        assert_eq!(auth.verify(&old).await.unwrap().sub, "u-7");

        server.serve(json!({"keys": [rsa_jwk("k2")]}));
        let new = sign(&idp, Algorithm::RS256, Some("k2"), &claims);
        assert_eq!(auth.verify(&new).await.unwrap().sub, "u-7");

        assert!(matches!(
            auth.verify(&old).await,
            Err(AuthError::UnknownKey(kid)) if kid == "k1"
        ));
    }

    #[test]
    fn a_verified_token_is_remembered_by_its_exact_text_and_never_past_its_exp() {
        let verified = Verified::default();
        let in_ten_minutes = now() + 600;
        verified.insert("h.p.s", &ward(), in_ten_minutes, 0);
        assert_eq!(verified.get("h.p.s"), Some(ward()));
        assert_eq!(verified.get("h.p.t"), None);
        assert_eq!(verified.get("h.p.s "), None);

        verified.insert("h.p.expired", &ward(), now() - 10, 0);
        assert_eq!(verified.get("h.p.expired"), None);

        for n in 0..VERIFIED_MAX + 1 {
            verified.insert(&format!("t{n}"), &ward(), in_ten_minutes, 0);
        }
        assert!(verified.0.lock().unwrap().tokens.len() <= VERIFIED_MAX);
    }

    #[test]
    fn a_check_that_began_before_new_keys_arrived_remembers_nothing() {
        let verified = Verified::default();
        let began = verified.generation();
        verified.clear(); // a JWKS fetch replaced the keys meanwhile
        verified.insert("h.p.s", &ward(), now() + 600, began);
        assert_eq!(verified.get("h.p.s"), None);
        verified.insert("h.p.s", &ward(), now() + 600, verified.generation());
        assert_eq!(verified.get("h.p.s"), Some(ward()));
    }

    #[test]
    fn roles_read_and_print_as_the_contract_spells_them() {
        for role in Role::ALL {
            assert_eq!(role.to_string().parse::<Role>().unwrap(), role);
            assert_eq!(serde_json::to_value(role).unwrap(), json!(role.to_string()));
        }
        assert_eq!("Ward".parse::<Role>(), Err(UnknownRole("Ward".to_owned())));
    }
}
