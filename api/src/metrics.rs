//! Request counts by route and status, and request latency, for /metrics.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use infra::metrics::Histogram;

/// HTTP figures.
#[derive(Debug, Default)]
pub struct HttpMetrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Histogram,
}

impl HttpMetrics {
    /// Records one answered request (by route template, never a raw path:
    /// paths carry ids).
    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.latency.observe(elapsed);
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        *requests
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default() += 1;
    }

    /// Appends the Prometheus text.
    pub fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP baton_http_requests_total Answered HTTP requests.\n\
             # TYPE baton_http_requests_total counter"
        );
        let requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        for ((method, route, status), n) in requests.iter() {
            let _ = writeln!(
                out,
                "baton_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        drop(requests);
        self.latency.render_as(
            "baton_http_request_duration_seconds",
            "Time to answer a request (streams: to the first byte).",
            out,
        );
    }
}
