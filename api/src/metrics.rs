//! What `/metrics` shows, on `prometheus-client`: one `Registry` per app,
//! built with it (tests run many apps in one process, and each reads its own
//! figures; a process-global recorder would add them all up). The library
//! writes the Prometheus text (format 0.0.4). Counters are registered
//! without `_total`, which the encoder appends, so the names exposed are the
//! ones documented.

use std::sync::Arc;
use std::time::Duration;

use infra::metrics::{describe, Histogram, RelayMetrics};
use infra::runner::Boards;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::server::ConnectionStats;

/// The `Content-Type` of `/metrics`.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

/// Request counts by route and status, and request latency. A request
/// takes a read lock of the family's map (a write lock only the first time
/// a method, route and status are seen) and atomics; never a mutex.
#[derive(Debug, Clone, Default)]
pub struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    latency: Histogram,
}

impl HttpMetrics {
    /// Records one answered request (by route template, never a raw path:
    /// paths carry ids).
    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.latency.observe(elapsed);
        let labels = RequestLabels {
            method: method.to_owned(),
            route: route.to_owned(),
            status,
        };
        self.requests.get_or_create(&labels).inc();
    }

    fn register(&self, registry: &mut Registry) {
        registry.register(
            "baton_http_requests",
            "Answered HTTP requests",
            self.requests.clone(),
        );
        registry.register(
            "baton_http_request_duration_seconds",
            "Time to answer a request (streams: to the first byte)",
            self.latency.clone(),
        );
    }
}

/// The boards' figures, read from them at each scrape.
#[derive(Debug)]
struct BoardsFigures(Arc<Boards>);

impl Collector for BoardsFigures {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let boards = &self.0;
        let freshness = boards.freshness();
        describe(
            &mut encoder,
            "baton_projection_position",
            "Feed position the boards include.",
            &ConstGauge::new(boards.position()),
        )?;
        describe(
            &mut encoder,
            "baton_boards_current",
            "1 while the watchdog finds the boards up to date with the record.",
            &ConstGauge::new(i64::from(freshness.current)),
        )?;
        // Not shown at all until the boards were once up to date: there is
        // no time to count from.
        if let Some(at) = freshness.up_to_date_at {
            describe(
                &mut encoder,
                "baton_boards_behind_seconds",
                "Time since the boards were last known to include everything recorded.",
                &ConstGauge::new((chrono::Utc::now() - at).as_seconds_f64().max(0.0)),
            )?;
        }
        let counters = [
            (
                "baton_projection_applied",
                "Events applied to the boards by this process.",
                boards.applied_count(),
            ),
            (
                "baton_boards_alarms",
                "Times the watchdog found the boards not up to date.",
                boards.alarm_count(),
            ),
            (
                "baton_projection_resubscribes",
                "Times the runner subscribed again because the feed stopped or skipped.",
                boards.resubscribed_count(),
            ),
            (
                "baton_projection_gaps",
                "Times the feed skipped positions (never applied).",
                boards.gap_count(),
            ),
        ];
        for (name, help, value) in counters {
            describe(&mut encoder, name, help, &ConstCounter::new(value))?;
        }
        Ok(())
    }
}

/// How far behind the feed's head the boards are: known only once the head
/// was read (asynchronously, by the scrape), so it is a registry of its own
/// made per scrape, and absent when the feed does not answer.
pub fn lag(boards: &Boards, head: u64) -> Registry {
    let mut registry = Registry::default();
    registry.register(
        "baton_projection_lag",
        "Events on the feed not yet in the boards",
        ConstGauge::new(head.saturating_sub(boards.position())),
    );
    registry
}

/// An app's registry, with everything it reports registered once. (The
/// registry ends each help text it is given with a full stop; collectors
/// write their own.)
pub fn registry(
    relay: Arc<RelayMetrics>,
    boards: Arc<Boards>,
    http: &HttpMetrics,
    connections: &ConnectionStats,
) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(relay));
    registry.register_collector(Box::new(BoardsFigures(boards)));
    http.register(&mut registry);
    connections.register(&mut registry);
    registry
}

/// The Prometheus text of `registries`, one after the other.
pub fn render(registries: &[&Registry]) -> String {
    let mut out = String::new();
    for registry in registries {
        // Writing to a `String` cannot fail; an encoder's error would only
        // cut the text short, which a scraper reports.
        if let Err(error) = prometheus_client::encoding::prometheus_text::encode(&mut out, registry)
        {
            tracing::warn!(%error, "could not write the metrics");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every name `/metrics` exposes, with its type and help, as documented
    /// (README, docs/architecture.md), as dashboards query them, and as the
    /// hand-written text before `prometheus-client` had them.
    const DOCUMENTED: [(&str, &str, &str); 22] = [
        (
            "baton_outbox_published_total",
            "counter",
            "Events relayed from the outbox and acknowledged by the sink.",
        ),
        (
            "baton_outbox_duplicates_total",
            "counter",
            "Relayed events JetStream had already stored (re-publishes).",
        ),
        (
            "baton_outbox_publish_errors_total",
            "counter",
            "Relay passes that failed and will be retried.",
        ),
        (
            "baton_outbox_chain_resyncs_total",
            "counter",
            "Publish chains refused by JetStream and re-anchored.",
        ),
        (
            "baton_outbox_depth",
            "gauge",
            "Outbox rows waiting to be relayed.",
        ),
        (
            "baton_outbox_relay_leader",
            "gauge",
            "1 while this process relays the outbox.",
        ),
        (
            "baton_outbox_commit_to_publish_seconds",
            "histogram",
            "Time from commit to the sink's acknowledgement.",
        ),
        (
            "baton_projection_position",
            "gauge",
            "Feed position the boards include.",
        ),
        (
            "baton_projection_applied_total",
            "counter",
            "Events applied to the boards by this process.",
        ),
        (
            "baton_boards_current",
            "gauge",
            "1 while the watchdog finds the boards up to date with the record.",
        ),
        (
            "baton_boards_behind_seconds",
            "gauge",
            "Time since the boards were last known to include everything recorded.",
        ),
        (
            "baton_boards_alarms_total",
            "counter",
            "Times the watchdog found the boards not up to date.",
        ),
        (
            "baton_projection_resubscribes_total",
            "counter",
            "Times the runner subscribed again because the feed stopped or skipped.",
        ),
        (
            "baton_projection_gaps_total",
            "counter",
            "Times the feed skipped positions (never applied).",
        ),
        (
            "baton_projection_lag",
            "gauge",
            "Events on the feed not yet in the boards.",
        ),
        (
            "baton_http_requests_total",
            "counter",
            "Answered HTTP requests.",
        ),
        (
            "baton_http_request_duration_seconds",
            "histogram",
            "Time to answer a request (streams: to the first byte).",
        ),
        (
            "baton_http_connections_open",
            "gauge",
            "Open HTTP connections.",
        ),
        (
            "baton_http_connections_shed_total",
            "counter",
            "Idle connections closed to make room or after the idle timeout.",
        ),
        (
            "baton_http_connections_refused_total",
            "counter",
            "Connections refused because every connection was busy.",
        ),
        (
            "baton_http_header_timeouts_total",
            "counter",
            "Connections closed because a request head took too long.",
        ),
        (
            "baton_http_unparsed_requests_total",
            "counter",
            "Request heads that could not be read (answered 400, 414 or 431).",
        ),
    ];

    fn text_of(http: &HttpMetrics, connections: &ConnectionStats, boards: Arc<Boards>) -> String {
        let registry = registry(Arc::default(), boards.clone(), http, connections);
        render(&[&registry, &lag(&boards, 3)])
    }

    #[test]
    fn every_documented_name_is_exposed_with_its_type() {
        let http = HttpMetrics::default();
        http.observe("GET", "/healthz", 200, Duration::from_millis(3));
        let boards = Boards::new();
        let text = text_of(&http, &ConnectionStats::default(), boards);
        for (name, kind, help) in DOCUMENTED {
            if name == "baton_boards_behind_seconds" {
                continue; // Absent until the boards were once up to date.
            }
            let described = format!("# HELP {name} {help}\n# TYPE {name} {kind}\n");
            assert!(text.contains(&described), "no\n{described}in\n{text}");
            assert!(
                text.lines()
                    .any(|l| l.starts_with(name) && !l.starts_with('#')),
                "no sample of {name} in\n{text}"
            );
        }
        for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            assert!(
                DOCUMENTED
                    .iter()
                    .any(|(name, kind, _)| line == format!("# TYPE {name} {kind}")),
                "undocumented: {line}"
            );
        }
    }

    #[test]
    fn requests_are_counted_by_method_route_and_status_and_timed() {
        let http = HttpMetrics::default();
        for _ in 0..2 {
            http.observe("GET", "/api/v1/spells/{id}", 404, Duration::from_millis(3));
        }
        http.observe("POST", "/api/v1/spells", 201, Duration::from_millis(30));
        let text = text_of(&http, &ConnectionStats::default(), Boards::new());
        assert!(text.contains(
            "\nbaton_http_requests_total{method=\"GET\",route=\"/api/v1/spells/{id}\",status=\"404\"} 2\n"
        ), "{text}");
        assert!(text.contains(
            "\nbaton_http_requests_total{method=\"POST\",route=\"/api/v1/spells\",status=\"201\"} 1\n"
        ), "{text}");
        assert!(text.contains("\nbaton_http_request_duration_seconds_bucket{le=\"0.005\"} 2\n"));
        assert!(text.contains("\nbaton_http_request_duration_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(text.contains("\nbaton_http_request_duration_seconds_count 3\n"));
        assert!(text.contains("\nbaton_projection_lag 3\n"), "{text}");
    }

    #[test]
    fn every_connection_reason_is_shown_before_it_happens() {
        let text = text_of(
            &HttpMetrics::default(),
            &ConnectionStats::default(),
            Boards::new(),
        );
        for line in [
            "\nbaton_http_connections_open 0\n",
            "\nbaton_http_connections_shed_total{reason=\"at_capacity\"} 0\n",
            "\nbaton_http_connections_shed_total{reason=\"client_at_capacity\"} 0\n",
            "\nbaton_http_connections_shed_total{reason=\"idle_timeout\"} 0\n",
            "\nbaton_http_connections_refused_total{reason=\"at_capacity\"} 0\n",
            "\nbaton_http_connections_refused_total{reason=\"client_at_capacity\"} 0\n",
            "\nbaton_http_header_timeouts_total 0\n",
            "\nbaton_http_unparsed_requests_total 0\n",
        ] {
            assert!(text.contains(line), "no {line:?} in\n{text}");
        }
    }
}
