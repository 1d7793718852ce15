//! The local Ed25519 key: created on first use in the data directory,
//! trusted when no identity provider is configured, and what `baton token`
//! signs with.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde::Serialize;

use super::claims::{Principal, Role};
use super::error::{AuthError, KeySourceError};
use super::verify::TrustedKey;

/// `iss` of the tokens the local key signs.
pub const LOCAL_ISSUER: &str = "baton-local";
/// `aud` of the tokens the local key signs.
pub const LOCAL_AUDIENCE: &str = "baton";
/// File name of the local signing key inside the data directory.
pub const LOCAL_KEY_FILE: &str = "baton-signing-key.pem";

/// Signs a token with the local key of `data_dir` (creating the key on first
/// use): what `baton token` prints. The principal is checked as a verified
/// token would be, so no token is printed that the server would refuse.
pub fn sign_local(
    data_dir: &Path,
    principal: &Principal,
    valid_for: Duration,
) -> Result<String, AuthError> {
    let principal = Principal::scoped(
        principal.sub.clone(),
        principal.name.clone(),
        principal.role,
        principal.scope_claims(),
    )?;
    let local = LocalKey::load_or_create(data_dir)?;
    let iat = jsonwebtoken::get_current_timestamp();
    let claims = OutgoingClaims {
        sub: &principal.sub,
        name: &principal.name,
        role: principal.role,
        hospital: principal.hospital.as_deref(),
        trust: principal.trust.as_deref(),
        team: principal.team.as_deref(),
        hub: principal.hub.as_deref(),
        iss: LOCAL_ISSUER,
        aud: LOCAL_AUDIENCE,
        iat,
        exp: iat.saturating_add(valid_for.as_secs()),
    };
    local.sign(&claims)
}

/// The local Ed25519 key pair.
pub(super) struct LocalKey {
    pub(super) path: PathBuf,
    signing: EncodingKey,
    pub(super) verifying: TrustedKey,
}

impl LocalKey {
    /// Reads `<data_dir>/baton-signing-key.pem`, creating it first if it
    /// does not exist.
    pub(super) fn load_or_create(data_dir: &Path) -> Result<Self, AuthError> {
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

    pub(super) fn sign(&self, claims: &impl Serialize) -> Result<String, AuthError> {
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

/// The claims `baton token` signs.
#[derive(Serialize)]
struct OutgoingClaims<'a> {
    sub: &'a str,
    name: &'a str,
    role: Role,
    #[serde(skip_serializing_if = "Option::is_none")]
    hospital: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trust: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    team: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hub: Option<&'a str>,
    iss: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}
