//! The checks of one token against one trusted key: signature, algorithm,
//! `exp` and `nbf` with leeway, configured `iss` and `aud`, then the claims
//! that describe a caller.

use std::path::Path;
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use super::claims::{ClaimsProblem, IncomingClaims, Principal};
use super::error::{AuthError, KeySourceError};

/// Clock skew tolerated on `exp` and `nbf`: servers and identity providers
/// never agree to the second, and a minute is far below any token lifetime.
pub(super) const LEEWAY: Duration = Duration::from_secs(60);

/// A key the server trusts, with the one algorithm it verifies.
#[derive(Clone)]
pub(super) struct TrustedKey {
    pub(super) key: DecodingKey,
    pub(super) algorithm: Algorithm,
}

impl TrustedKey {
    /// An Ed25519 public key: exactly 32 bytes, checked here because the
    /// verifier would otherwise slice a shorter key and panic.
    pub(super) fn ed25519(raw: &[u8]) -> Option<Self> {
        (raw.len() == 32).then(|| TrustedKey {
            key: DecodingKey::from_ed_der(raw),
            algorithm: Algorithm::EdDSA,
        })
    }

    /// The Ed25519 or RSA public key in the PEM file at `path`.
    pub(super) fn from_public_key_file(path: &Path) -> Result<Self, AuthError> {
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
        Ok(key)
    }
}

/// What a token is checked for besides its key: the configured issuer and
/// audience (either unchecked when `None`) and the leeway on `exp`/`nbf`.
pub(super) struct Expectations {
    pub(super) issuer: Option<String>,
    pub(super) audience: Option<String>,
    pub(super) leeway: Duration,
}

/// Verifies `token` with one trusted key and reads its claims; returns who
/// it is and its `exp` (seconds since the epoch).
pub(super) fn check(
    token: &str,
    key: &TrustedKey,
    expected: &Expectations,
) -> Result<(Principal, u64), AuthError> {
    let mut validation = Validation::new(key.algorithm);
    validation.leeway = expected.leeway.as_secs();
    validation.validate_nbf = true;
    let mut required = vec!["exp"];
    match &expected.issuer {
        Some(issuer) => {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        None => validation.iss = None,
    }
    match &expected.audience {
        Some(audience) => {
            validation.set_audience(&[audience]);
            required.push("aud");
        }
        None => validation.validate_aud = false,
    }
    validation.set_required_spec_claims(&required);
    let data =
        jsonwebtoken::decode::<IncomingClaims>(token, &key.key, &validation).map_err(refusal)?;
    // `exp` is required and was checked by the library.
    let exp = data.claims.exp.unwrap_or(0);
    Ok((data.claims.into_principal()?, exp))
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
