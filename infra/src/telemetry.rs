//! Logging, set up once per process. `RUST_LOG` filters (default `info`);
//! `BATON_LOG_FORMAT=json` writes one JSON object per line for collectors.
//! Nothing Baton logs carries a patient identifier: errors name rules, and
//! `NhsNumber`'s `Debug` masks all but three digits.

use std::sync::Once;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

static INIT: Once = Once::new();

/// Installs the global subscriber; later calls do nothing.
pub fn init(format: LogFormat) {
    INIT.call_once(|| {
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
        let registry = tracing_subscriber::registry().with(filter);
        let result = match format {
            LogFormat::Json => registry
                .with(
                    tracing_subscriber::fmt::layer()
                        .json()
                        .with_writer(std::io::stderr),
                )
                .try_init(),
            LogFormat::Text => registry
                .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
                .try_init(),
        };
        // Another subscriber (a test harness) may be installed already.
        let _ = result;
    });
}
