//! Why a token was refused, or why a source of trust could not be set up.

use std::path::PathBuf;

use super::claims::ClaimsProblem;

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
        path: PathBuf,
        /// The parser's error, when it had one.
        #[source]
        source: Option<jsonwebtoken::errors::Error>,
    },
    /// The local signing key file is not an Ed25519 private key in PKCS#8 PEM.
    #[error("{} is not an Ed25519 private key in PKCS#8 PEM", path.display())]
    NotASigningKey {
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
