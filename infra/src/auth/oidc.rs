//! Sign-in through an OpenID provider: the authorization code flow with
//! PKCE (S256), on the `openidconnect` crate, which does the protocol
//! (discovery, the authorization URL, the code exchange, the ID token's
//! signature, issuer, audience, expiry and nonce). Baton keeps what the flow
//! needs between the two legs ([`PendingLogin`]) and turns a verified ID
//! token into an [`Identity`].
//!
//! The provider is discovered when the first sign-in starts, not at boot,
//! so a provider that is down does not stop Baton serving API clients and
//! a page can say what went wrong; its metadata (and keys) are fetched
//! again after [`REDISCOVER_AFTER`], and at once when an ID token names a
//! key the last fetch did not hold (the provider rotated its keys).

use std::sync::Arc;
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
};
use openidconnect::{
    AdditionalClaims, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IdToken, IssuerUrl, LogoutRequest, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, PostLogoutRedirectUrl, ProviderMetadataWithLogout, RedirectUrl, Scope,
};
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;

use crate::config::Secret;

/// How long discovered metadata and keys are used before they are fetched
/// again.
pub const REDISCOVER_AFTER: Duration = Duration::from_secs(10 * 60);

/// How long Baton waits on the provider (discovery, the code exchange).
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

/// Where Baton sends users back to, under its public URL.
pub const CALLBACK_PATH: &str = "/auth/callback";

/// Every claim of the ID token beyond the standard ones: the mapping to a
/// Baton role reads roles, groups and organisation codes from here.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExtraClaims(pub serde_json::Map<String, serde_json::Value>);

impl AdditionalClaims for ExtraClaims {}

/// The client as discovery leaves it: authorization and token endpoints
/// set, user info perhaps.
type DiscoveredClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

type ProviderIdToken = IdToken<
    ExtraClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

/// Who the provider says signed in.
#[derive(Debug, Clone)]
pub struct Identity {
    pub sub: String,
    /// `name`, else `preferred_username`, else the `sub`.
    pub name: String,
    /// Every claim of the ID token (standard and the provider's own), for
    /// the mapping to a role.
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// The ID token itself, sent back as `id_token_hint` at sign-out.
    pub id_token: String,
}

/// What the first leg of a sign-in leaves for the second.
#[derive(Debug)]
pub struct PendingLogin {
    nonce: Nonce,
    verifier: PkceCodeVerifier,
    /// The page to return to once signed in (a path of Baton's own).
    pub return_to: String,
}

/// Why a sign-in through the provider failed, in words a page can show.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// Discovery failed: the provider is down, unreachable or not a
    /// provider.
    #[error("the identity provider at {issuer} could not be reached ({detail})")]
    Unreachable { issuer: String, detail: String },
    /// A setting is not a URL, or the provider's metadata lacks an endpoint.
    #[error("sign-in is misconfigured: {0}")]
    Misconfigured(String),
    /// The provider refused the code (used already, expired, not ours).
    #[error("the identity provider refused the sign-in code ({0})")]
    CodeRefused(String),
    /// The provider answered without an ID token.
    #[error("the identity provider sent no ID token")]
    NoIdToken,
    /// The ID token failed a check: signature, issuer, audience, expiry,
    /// nonce.
    #[error("the ID token was refused: {0}")]
    IdTokenRefused(String),
}

struct Discovered {
    at: Instant,
    metadata: ProviderMetadataWithLogout,
}

/// The configured provider and what was last discovered of it.
pub struct Oidc {
    issuer: String,
    client_id: String,
    client_secret: Option<Secret>,
    redirect: String,
    after_logout: String,
    http: reqwest::Client,
    discovered: RwLock<Option<Arc<Discovered>>>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("redirect", &self.redirect)
            .finish_non_exhaustive()
    }
}

impl Oidc {
    /// `public_url` is where users reach Baton; the callback and the page
    /// after sign-out are under it.
    pub fn new(
        issuer: &str,
        client_id: &str,
        client_secret: Option<Secret>,
        public_url: &str,
    ) -> Result<Self, OidcError> {
        let base = public_url.trim_end_matches('/');
        let http = reqwest::Client::builder()
            .timeout(PROVIDER_TIMEOUT)
            // The protocol forbids following redirects on these calls.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| OidcError::Misconfigured(e.to_string()))?;
        let this = Self {
            issuer: issuer.trim().to_owned(),
            client_id: client_id.trim().to_owned(),
            client_secret,
            redirect: format!("{base}{CALLBACK_PATH}"),
            after_logout: format!("{base}/?signed_out=1"),
            http,
            discovered: RwLock::new(None),
        };
        this.issuer_url()?;
        RedirectUrl::new(this.redirect.clone())
            .map_err(|e| OidcError::Misconfigured(format!("public_url: {e}")))?;
        Ok(this)
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    fn issuer_url(&self) -> Result<IssuerUrl, OidcError> {
        IssuerUrl::new(self.issuer.clone())
            .map_err(|e| OidcError::Misconfigured(format!("oidc_issuer: {e}")))
    }

    /// The provider's metadata, discovered again when older than
    /// [`REDISCOVER_AFTER`] or when `fresh` is asked for.
    async fn metadata(&self, fresh: bool) -> Result<Arc<Discovered>, OidcError> {
        if !fresh {
            if let Some(known) = self.discovered.read().await.as_ref() {
                if known.at.elapsed() < REDISCOVER_AFTER {
                    return Ok(known.clone());
                }
            }
        }
        let metadata = ProviderMetadataWithLogout::discover_async(self.issuer_url()?, &self.http)
            .await
            .map_err(|e| OidcError::Unreachable {
                issuer: self.issuer.clone(),
                detail: error_chain(&e),
            })?;
        let known = Arc::new(Discovered {
            at: Instant::now(),
            metadata,
        });
        *self.discovered.write().await = Some(known.clone());
        Ok(known)
    }

    fn client(&self, discovered: &Discovered) -> Result<DiscoveredClient, OidcError> {
        let redirect = RedirectUrl::new(self.redirect.clone())
            .map_err(|e| OidcError::Misconfigured(format!("public_url: {e}")))?;
        Ok(CoreClient::from_provider_metadata(
            discovered.metadata.clone(),
            ClientId::new(self.client_id.clone()),
            self.client_secret
                .as_ref()
                .map(|s| ClientSecret::new(s.expose().to_owned())),
        )
        .set_redirect_uri(redirect))
    }

    /// The first leg: where to send the browser, the `state` that must
    /// come back, and what the second leg needs.
    pub async fn begin(
        &self,
        return_to: String,
    ) -> Result<(String, String, PendingLogin), OidcError> {
        let discovered = self.metadata(false).await?;
        let client = self.client(&discovered)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                || CsrfToken::new_random_len(32),
                || Nonce::new_random_len(32),
            )
            .add_scope(Scope::new("profile".to_owned()))
            .set_pkce_challenge(challenge)
            .url();
        Ok((
            url.to_string(),
            state.secret().clone(),
            PendingLogin {
                nonce,
                verifier,
                return_to,
            },
        ))
    }

    /// The second leg: exchanges the code (with the PKCE verifier) and
    /// verifies the ID token against the nonce of the first leg.
    pub async fn finish(
        &self,
        code: String,
        pending: &PendingLogin,
    ) -> Result<Identity, OidcError> {
        let discovered = self.metadata(false).await?;
        let client = self.client(&discovered)?;
        let response = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| OidcError::Misconfigured(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier.secret().clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                // The provider did not answer at all (down, unreachable).
                openidconnect::RequestTokenError::Request(_) => OidcError::Unreachable {
                    issuer: self.issuer.clone(),
                    detail: error_chain(&e),
                },
                other => OidcError::CodeRefused(error_chain(&other)),
            })?;
        // Read with every claim kept; the library's own type drops the
        // provider's extra claims.
        let raw = response
            .extra_fields()
            .id_token()
            .ok_or(OidcError::NoIdToken)?
            .to_string();
        let token: ProviderIdToken = raw
            .parse()
            .map_err(|e: serde_json::Error| OidcError::IdTokenRefused(e.to_string()))?;
        let claims = match token.claims(&client.id_token_verifier(), &pending.nonce) {
            Ok(claims) => claims.clone(),
            Err(openidconnect::ClaimsVerificationError::SignatureVerification(_)) => {
                // Perhaps the provider rotated its keys since discovery:
                // once, with its metadata fetched afresh.
                let discovered = self.metadata(true).await?;
                let client = self.client(&discovered)?;
                let verifier = client.id_token_verifier();
                let verified = token
                    .claims(&verifier, &pending.nonce)
                    .map_err(|e| OidcError::IdTokenRefused(error_chain(&e)))?
                    .clone();
                verified
            }
            Err(e) => return Err(OidcError::IdTokenRefused(error_chain(&e))),
        };
        let sub = claims.subject().as_str().to_owned();
        let name = claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str().to_owned())
            .or_else(|| claims.preferred_username().map(|u| u.as_str().to_owned()))
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| sub.clone());
        let mut all = claims.additional_claims().0.clone();
        if let Ok(serde_json::Value::Object(standard)) = serde_json::to_value(&claims) {
            for (key, value) in standard {
                all.entry(key).or_insert(value);
            }
        }
        Ok(Identity {
            sub,
            name,
            claims: all,
            id_token: raw,
        })
    }

    /// Where to send the browser to end the session at the provider too,
    /// when the provider offers RP-initiated logout (and its metadata is at
    /// hand); `None` means Baton's own page after sign-out.
    pub async fn logout_url(&self, id_token: Option<&str>) -> Option<String> {
        let discovered = self.metadata(false).await.ok()?;
        let endpoint = discovered
            .metadata
            .additional_metadata()
            .end_session_endpoint
            .clone()?;
        let mut request = LogoutRequest::from(endpoint)
            .set_client_id(ClientId::new(self.client_id.clone()))
            .set_post_logout_redirect_uri(
                PostLogoutRedirectUrl::new(self.after_logout.clone()).ok()?,
            );
        if let Some(hint) = id_token.and_then(|t| t.parse::<ProviderIdToken>().ok()) {
            request = request.set_id_token_hint(&hint);
        }
        Some(request.http_get_url().to_string())
    }
}

/// An error and its sources in one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}
