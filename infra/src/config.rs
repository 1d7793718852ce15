//! Configuration, layered as zero2prod does it: defaults, then a TOML file
//! (`--config` or `BATON_CONFIG`), then `BATON_*` environment variables, then
//! command-line flags. Unknown keys in the file are an error, so a typo never
//! silently leaves a default in place.

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::stream::StreamSettings;

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// A URL that can carry a password (`postgres://baton:secret@db/baton`):
/// `Debug` shows it without its user information, so a configuration
/// logged or printed in a panic never shows the password. Read the whole
/// text with [`SecretUrl::expose`], only where it is used.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretUrl(String);

impl SecretUrl {
    /// The whole URL, password included.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for SecretUrl {
    fn from(url: String) -> Self {
        Self(url)
    }
}

impl From<&str> for SecretUrl {
    fn from(url: &str) -> Self {
        Self(url.to_owned())
    }
}

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Each URL of a comma-separated list without its user information.
        let shown: Vec<String> = self
            .0
            .split(',')
            .map(|u| crate::pipeline::redact(u.trim()))
            .collect();
        write!(f, "{:?}", shown.join(","))
    }
}

/// A secret (an OpenID client secret): `Debug` never shows it. Read it
/// with [`Secret::expose`], only where it is used.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(secret: &str) -> Self {
        Self(secret.to_owned())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"[redacted]\"")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server listens on (`BATON_LISTEN`).
    pub listen: String,
    /// SQLite store of the embedded default, and the local signing key.
    pub data_dir: PathBuf,
    /// PostgreSQL URL; when set, events live in PostgreSQL.
    pub database_url: Option<SecretUrl>,
    /// PostgreSQL pool size.
    pub database_max_connections: u32,
    /// NATS servers, comma-separated (`nats://a:4222,nats://b:4222`: every
    /// seed of a cluster); when set, committed events go to JetStream.
    pub nats_url: Option<SecretUrl>,
    /// A NATS credentials file (`.creds`: user JWT and NKey seed).
    pub nats_credentials_file: Option<PathBuf>,
    /// CA certificates (PEM) that NATS servers' TLS certificates must chain to.
    pub nats_tls_ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for NATS servers that ask for one.
    pub nats_tls_cert_file: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub nats_tls_key_file: Option<PathBuf>,
    /// Refuse a NATS connection that is not TLS (implied by `tls://` URLs
    /// and by a CA or client certificate).
    pub nats_tls_required: bool,
    /// JetStream stream name.
    pub stream: String,
    /// Subject prefix of the stream.
    pub subject_prefix: String,
    pub stream_replicas: usize,
    /// JetStream de-duplication window, in seconds.
    pub stream_duplicate_window_seconds: u64,
    /// External identity provider: issuer.
    pub jwt_issuer: Option<String>,
    /// External identity provider: audience.
    pub jwt_audience: Option<String>,
    /// External identity provider: public key (PEM) file.
    pub jwt_public_key_file: Option<PathBuf>,
    /// External identity provider: JWKS URL.
    pub jwks_url: Option<String>,
    pub log_format: LogFormat,
    /// Reverse proxies (IP addresses, comma-separated) whose
    /// `X-Forwarded-For` names the client; unset means none.
    pub trusted_proxies: Option<String>,
    /// Most HTTP connections open at once (`BATON_MAX_CONNECTIONS`); kept
    /// below the open-file limit whatever is set.
    pub max_connections: usize,
    /// Most HTTP connections open at once from one client address; trusted
    /// proxies are held only to the total.
    pub max_connections_per_client: usize,
    /// Seconds a client has to send a whole request head (also how long a
    /// kept-alive HTTP/1.1 connection waits for its next request).
    pub header_read_timeout_seconds: u64,
    /// Seconds a connection with no request in flight stays open.
    pub idle_timeout_seconds: u64,
    /// OpenID provider the pages sign in through (its issuer URL, where
    /// `.well-known/openid-configuration` is found); unset means none.
    pub oidc_issuer: Option<String>,
    /// Baton's client id at that provider.
    pub oidc_client_id: Option<String>,
    /// Baton's client secret there (absent for a public client).
    pub oidc_client_secret: Option<Secret>,
    /// The address users reach Baton at (`https://baton.example.nhs.uk`):
    /// the redirect URIs are built from it, and an `https` one marks the
    /// session cookie `Secure`.
    pub public_url: Option<String>,
    /// Baton sits behind a proxy that ends TLS: session cookies are
    /// `Secure` even though Baton itself is reached over plain HTTP.
    pub behind_tls_proxy: bool,
    /// A signed-in session ends after this many seconds without a request
    /// from its user (ward PCs are shared).
    pub session_idle_seconds: u64,
    /// ...and after this many seconds whatever the activity.
    pub session_lifetime_seconds: u64,
    /// TOML file of rules turning identity provider claims (roles, groups,
    /// organisation codes) into a Baton role and scope.
    pub role_mapping_file: Option<PathBuf>,
    /// Address the MLLP listener for the PAS's HL7 v2 ADT feed listens on
    /// (`BATON_MLLP_LISTEN`, e.g. `0.0.0.0:2575`); unset means no listener.
    pub mllp_listen: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        let stream = StreamSettings::default();
        Self {
            listen: "127.0.0.1:8080".to_owned(),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            database_max_connections: 16,
            nats_url: None,
            nats_credentials_file: None,
            nats_tls_ca_file: None,
            nats_tls_cert_file: None,
            nats_tls_key_file: None,
            nats_tls_required: false,
            stream: stream.name,
            subject_prefix: stream.subject_prefix,
            stream_replicas: stream.replicas,
            stream_duplicate_window_seconds: stream.duplicate_window.as_secs(),
            jwt_issuer: None,
            jwt_audience: None,
            jwt_public_key_file: None,
            jwks_url: None,
            log_format: LogFormat::Text,
            trusted_proxies: None,
            max_connections: 4096,
            max_connections_per_client: 256,
            header_read_timeout_seconds: 15,
            idle_timeout_seconds: 60,
            oidc_issuer: None,
            oidc_client_id: None,
            oidc_client_secret: None,
            public_url: None,
            behind_tls_proxy: false,
            session_idle_seconds: 15 * 60,
            session_lifetime_seconds: 12 * 60 * 60,
            role_mapping_file: None,
            mllp_listen: None,
        }
    }
}

/// Why configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(#[from] Box<figment::Error>);

const KEYS: [&str; 33] = [
    "listen",
    "data_dir",
    "database_url",
    "database_max_connections",
    "nats_url",
    "nats_credentials_file",
    "nats_tls_ca_file",
    "nats_tls_cert_file",
    "nats_tls_key_file",
    "nats_tls_required",
    "stream",
    "subject_prefix",
    "stream_replicas",
    "stream_duplicate_window_seconds",
    "jwt_issuer",
    "jwt_audience",
    "jwt_public_key_file",
    "jwks_url",
    "log_format",
    "trusted_proxies",
    "max_connections",
    "max_connections_per_client",
    "header_read_timeout_seconds",
    "idle_timeout_seconds",
    "oidc_issuer",
    "oidc_client_id",
    "oidc_client_secret",
    "public_url",
    "behind_tls_proxy",
    "session_idle_seconds",
    "session_lifetime_seconds",
    "role_mapping_file",
    "mllp_listen",
];

impl Config {
    /// Defaults, then `file` (or `BATON_CONFIG`), then `BATON_*` variables.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("BATON_CONFIG").map(PathBuf::from));
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        // `only` keeps other BATON_* variables (test settings, BATON_CONFIG
        // itself) from being read as unknown keys.
        figment = figment.merge(Env::prefixed("BATON_").only(&KEYS));
        figment.extract().map_err(|e| ConfigError(Box::new(e)))
    }

    /// The trusted proxies' addresses, or what in the list is not one.
    pub fn trusted_proxy_addresses(&self) -> Result<Vec<std::net::IpAddr>, String> {
        self.trusted_proxies
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                entry
                    .parse()
                    .map_err(|_| format!("BATON_TRUSTED_PROXIES: {entry} is not an IP address"))
            })
            .collect()
    }

    /// The stream's settings.
    pub fn stream_settings(&self) -> StreamSettings {
        StreamSettings {
            name: self.stream.clone(),
            subject_prefix: self.subject_prefix.clone(),
            replicas: self.stream_replicas,
            duplicate_window: std::time::Duration::from_secs(self.stream_duplicate_window_seconds),
        }
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail API returns its own error
mod tests {
    #[test]
    fn a_configuration_printed_never_shows_a_password() {
        let config = Config {
            database_url: Some("postgres://baton:s3cret@db:5432/baton".into()),
            nats_url: Some("nats://u:natspw@a:4222,nats://b:4222".into()),
            ..Config::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(!shown.contains("natspw"), "{shown}");
        assert!(shown.contains("postgres://db:5432/baton"), "{shown}");
        assert!(shown.contains("nats://a:4222,nats://b:4222"), "{shown}");
        assert_eq!(
            config.database_url.as_ref().map(SecretUrl::expose),
            Some("postgres://baton:s3cret@db:5432/baton")
        );
    }

    use super::*;

    #[test]
    fn the_defaults_are_the_embedded_mode_of_the_contract() {
        figment::Jail::expect_with(|_| {
            let config = Config::load(None).unwrap();
            assert_eq!(config.listen, "127.0.0.1:8080");
            assert_eq!(config.data_dir, PathBuf::from("./data"));
            assert_eq!(config.database_url, None);
            assert_eq!(config.stream, "BATON_EVENTS");
            assert_eq!(config.subject_prefix, "baton.events");
            Ok(())
        });
    }

    #[test]
    fn environment_variables_override_the_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "baton.toml",
                "listen = \"0.0.0.0:9000\"\nstream = \"FROM_FILE\"",
            )?;
            jail.set_env("BATON_STREAM", "FROM_ENV");
            jail.set_env("BATON_TEST_SOMETHING", "ignored");
            let config = Config::load(Some(Path::new("baton.toml"))).unwrap();
            assert_eq!(config.listen, "0.0.0.0:9000");
            assert_eq!(config.stream, "FROM_ENV");
            Ok(())
        });
    }

    #[test]
    fn the_mllp_listener_is_off_unless_its_address_is_set() {
        figment::Jail::expect_with(|jail| {
            assert_eq!(Config::load(None).unwrap().mllp_listen, None);
            jail.set_env("BATON_MLLP_LISTEN", "127.0.0.1:2575");
            assert_eq!(
                Config::load(None).unwrap().mllp_listen.as_deref(),
                Some("127.0.0.1:2575")
            );
            Ok(())
        });
    }

    #[test]
    fn an_unknown_key_in_the_file_is_an_error() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("baton.toml", "lisen = \"0.0.0.0:9000\"")?;
            let error = Config::load(Some(Path::new("baton.toml"))).unwrap_err();
            assert!(
                matches!(
                    &error.0.kind,
                    figment::error::Kind::UnknownField(field, _) if field == "lisen"
                ),
                "{error:?}"
            );
            Ok(())
        });
    }
}
