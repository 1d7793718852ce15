//! The connection to NATS as deployments configure it: a list of seed
//! servers (every node of a cluster, so Baton starts whichever is up), a
//! credentials file, and TLS with a private CA and an optional client
//! certificate. async-nats does the protocol; this module only turns
//! Baton's configuration into its `ConnectOptions`.

use async_nats::{ConnectOptions, ServerAddr};

use crate::config::Config;
use crate::pipeline::redact;

/// Why Baton cannot use its NATS configuration.
#[derive(Debug, thiserror::Error)]
pub enum NatsConfigError {
    /// The server list is empty.
    #[error("BATON_NATS_URL names no server")]
    NoServers,
    /// One entry of the list is not a NATS URL.
    #[error("BATON_NATS_URL entry {position} ({entry}) is not a NATS URL: {reason}")]
    BadServer {
        /// 1-based place in the list.
        position: usize,
        /// The entry, without credentials.
        entry: String,
        /// What async-nats said.
        reason: String,
    },
    /// The credentials file could not be read.
    #[error("cannot read the NATS credentials file {path}: {reason}")]
    Credentials { path: String, reason: String },
    /// A client certificate was given without its key, or the other way round.
    #[error("BATON_NATS_TLS_CERT_FILE and BATON_NATS_TLS_KEY_FILE go together")]
    HalfClientCertificate,
    /// A TLS file named in the configuration does not exist.
    #[error("the NATS TLS file {0} does not exist")]
    MissingTlsFile(String),
}

/// The servers of `BATON_NATS_URL`: one URL, or several separated by commas
/// (spaces around them are ignored; a bare `host:port` means `nats://`).
pub fn servers(list: &str) -> Result<Vec<ServerAddr>, NatsConfigError> {
    let entries: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    if entries.is_empty() {
        return Err(NatsConfigError::NoServers);
    }
    entries
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            entry
                .parse::<ServerAddr>()
                .map_err(|e| NatsConfigError::BadServer {
                    position: i + 1,
                    entry: without_credentials(entry),
                    reason: e.to_string(),
                })
        })
        .collect()
}

/// The servers of `list`, without credentials, for logs: each as scheme,
/// host and port when it parses (whatever form the user and password took),
/// else with anything before an `@` removed.
pub fn describe(list: &str) -> String {
    list.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|entry| match entry.parse::<ServerAddr>() {
            Ok(server) => format!("{}://{}:{}", server.scheme(), server.host(), server.port()),
            Err(_) => without_credentials(entry),
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn without_credentials(entry: &str) -> String {
    let redacted = redact(entry);
    match redacted.rfind('@') {
        Some(at) if !redacted.contains("://") => redacted[at + 1..].to_owned(),
        _ => redacted,
    }
}

/// Connection options for `config`, and the servers to try.
pub async fn options(
    config: &Config,
    list: &str,
) -> Result<(ConnectOptions, Vec<ServerAddr>), NatsConfigError> {
    let servers = servers(list)?;
    let mut options = ConnectOptions::new()
        .name("baton")
        // Start even while NATS is down: the outbox holds commits until it
        // is back, and readiness says so meanwhile.
        .retry_on_initial_connect();
    if let Some(path) = &config.nats_credentials_file {
        options =
            options
                .credentials_file(path)
                .await
                .map_err(|e| NatsConfigError::Credentials {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
    }
    let exists = |path: &std::path::Path| {
        if path.exists() {
            Ok(())
        } else {
            Err(NatsConfigError::MissingTlsFile(path.display().to_string()))
        }
    };
    let mut tls = config.nats_tls_required;
    if let Some(ca) = &config.nats_tls_ca_file {
        exists(ca)?;
        options = options.add_root_certificates(ca.clone());
        tls = true;
    }
    match (&config.nats_tls_cert_file, &config.nats_tls_key_file) {
        (Some(cert), Some(key)) => {
            exists(cert)?;
            exists(key)?;
            options = options.add_client_certificate(cert.clone(), key.clone());
            tls = true;
        }
        (None, None) => {}
        _ => return Err(NatsConfigError::HalfClientCertificate),
    }
    if tls {
        options = options.require_tls(true);
    }
    Ok((options, servers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_comma_separated_list_names_every_seed_of_a_cluster() {
        let list = servers("nats://a:4222, nats://b:4223,tls://c:4224").unwrap();
        let hosts: Vec<(String, u16)> = list
            .iter()
            .map(|s| (s.host().to_owned(), s.port()))
            .collect();
        assert_eq!(
            hosts,
            [
                ("a".to_owned(), 4222),
                ("b".to_owned(), 4223),
                ("c".to_owned(), 4224)
            ]
        );
        assert!(list[2].tls_required());
    }

    #[test]
    fn one_url_is_a_list_of_one() {
        assert_eq!(servers("nats://127.0.0.1:4222").unwrap().len(), 1);
    }

    #[test]
    fn a_bad_entry_is_named_by_its_place_without_its_password() {
        match servers("nats://a:4222,nats://u:secret@b:notaport") {
            Err(NatsConfigError::BadServer {
                position, entry, ..
            }) => {
                assert_eq!(position, 2);
                assert_eq!(entry, "nats://b:notaport");
            }
            other => panic!("expected a bad server, got {other:?}"),
        }
    }

    #[test]
    fn an_empty_list_is_refused() {
        assert!(matches!(servers(" , "), Err(NatsConfigError::NoServers)));
    }

    #[test]
    fn credentials_are_left_out_of_the_description() {
        assert_eq!(
            describe("nats://u:p@a:4222,nats://b:4222"),
            "nats://a:4222,nats://b:4222"
        );
        // Without a scheme async-nats assumes nats://; the password must
        // not reach the log either way.
        assert_eq!(describe("u:secret@a:4222"), "nats://a:4222");
        assert_eq!(describe("u:secret@a:bad"), "a:bad");
    }

    #[tokio::test]
    async fn a_client_certificate_without_its_key_is_refused() {
        let config = Config {
            nats_tls_cert_file: Some("cert.pem".into()),
            ..Config::default()
        };
        assert!(matches!(
            options(&config, "nats://a:4222").await,
            Err(NatsConfigError::HalfClientCertificate)
        ));
    }

    #[tokio::test]
    async fn a_missing_credentials_file_is_refused_at_start() {
        let config = Config {
            nats_credentials_file: Some("/nonexistent/baton.creds".into()),
            ..Config::default()
        };
        assert!(matches!(
            options(&config, "nats://a:4222").await,
            Err(NatsConfigError::Credentials { .. })
        ));
    }

    #[tokio::test]
    async fn a_missing_ca_file_is_refused_at_start() {
        let config = Config {
            nats_tls_ca_file: Some("/nonexistent/ca.pem".into()),
            ..Config::default()
        };
        assert!(matches!(
            options(&config, "nats://a:4222").await,
            Err(NatsConfigError::MissingTlsFile(_))
        ));
    }
}
