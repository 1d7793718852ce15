//! An identity provider's JWKS: fetched at start, fetched again when a token
//! names a `kid` it does not hold (key rotation), at most once per
//! [`JWKS_MIN_REFRESH`], keeping only the EdDSA and RS256 signing keys.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use super::error::{AuthError, KeySourceError};
use super::verify::TrustedKey;

/// Fewest seconds between two JWKS fetches caused by unknown `kid`s.
pub(super) const JWKS_MIN_REFRESH: Duration = Duration::from_secs(30);
/// A JWKS fetch that takes longer than this is abandoned: at start it fails
/// the start, later it leaves the keys held so far in place.
pub(super) const JWKS_TIMEOUT: Duration = Duration::from_secs(5);

/// The keys of a JWKS usable for EdDSA or RS256.
#[derive(Default)]
pub(super) struct KeySet {
    pub(super) by_kid: HashMap<String, TrustedKey>,
    pub(super) without_kid: Vec<TrustedKey>,
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
pub(super) struct Jwks {
    pub(super) url: String,
    client: reqwest::Client,
    min_refresh: Duration,
    keys: RwLock<Arc<KeySet>>,
    /// When the keys were last fetched; the lock also makes concurrent
    /// unknown-`kid` tokens wait for one fetch instead of each starting one.
    fetched_at: tokio::sync::Mutex<Instant>,
}

impl Jwks {
    /// Fetches the keys at `url` now; `min_refresh` is the shortest time
    /// between fetches caused by unknown `kid`s (tests shorten it).
    pub(super) async fn fetch(
        url: &str,
        client: reqwest::Client,
        min_refresh: Duration,
    ) -> Result<Self, AuthError> {
        let keys = fetch_jwks(&client, url).await?;
        tracing::info!(url, keys = keys.len(), "JWKS fetched");
        Ok(Jwks {
            url: url.to_owned(),
            client,
            min_refresh,
            keys: RwLock::new(Arc::new(keys)),
            fetched_at: tokio::sync::Mutex::new(Instant::now()),
        })
    }

    pub(super) fn current(&self) -> Arc<KeySet> {
        // A poisoned lock only means a writer panicked between two complete
        // key sets; the set inside is still whole.
        Arc::clone(&self.keys.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Fetches the JWKS again unless it was fetched less than `min_refresh`
    /// ago. A failed or empty fetch keeps the keys held so far: a provider's
    /// bad minute must not lock every caller out.
    /// Returns whether the keys were replaced.
    pub(super) async fn refresh_if_due(&self) -> bool {
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
