//! The relay's figures and the latency histogram Baton's metrics share,
//! exposed through `prometheus-client` (which writes the text). Both are
//! plain atomics: the relay and every HTTP request update them on their hot
//! paths, and a scrape reads them without locking.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
];

/// A histogram of durations, registered like any `prometheus-client`
/// metric. Its own rather than the library's: `prometheus_client`'s
/// `Histogram` takes a mutex on every observation, and this one is observed
/// on every request. Clones share their figures (one to register, one to
/// observe).
#[derive(Debug, Clone, Default)]
pub struct Histogram(Arc<Figures>);

#[derive(Debug, Default)]
struct Figures {
    /// Observations per bucket (not cumulative: the encoder adds them up);
    /// the last one is past the highest bound.
    counts: [AtomicU64; BUCKETS.len() + 1],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one duration.
    pub fn observe(&self, value: Duration) {
        let seconds = value.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BUCKETS.len());
        if let Some(count) = self.0.counts.get(bucket) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        self.0.count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(value.as_micros()).unwrap_or(u64::MAX);
        self.0.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// How many durations were recorded.
    pub fn count(&self) -> u64 {
        self.0.count.load(Ordering::Relaxed)
    }
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let buckets: Vec<(f64, u64)> = BUCKETS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(self.0.counts.iter().map(|c| c.load(Ordering::Relaxed)))
            .collect();
        // The count is read after the buckets, so a scrape racing an
        // observation may show `+Inf` one short of `_count` for a moment,
        // never a bucket above it.
        let sum = self.0.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        encoder.encode_histogram::<NoLabelSet>(sum, self.count(), &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// What the relay reports.
#[derive(Debug, Default)]
pub struct RelayMetrics {
    /// Events handed to the sink and acknowledged.
    pub published: AtomicU64,
    /// Of those, how many JetStream reported as duplicates (re-publishes).
    pub duplicates: AtomicU64,
    /// Publish chains JetStream refused because the stream's end was not
    /// where the relay expected (another publisher, or a lost message).
    pub resyncs: AtomicU64,
    /// Failed relay passes (sink or database errors).
    pub errors: AtomicU64,
    /// Outbox rows waiting, as last counted.
    pub outbox_depth: AtomicI64,
    /// 1 while this process is the relay leader.
    pub leader: AtomicI64,
    /// From commit to the sink's acknowledgement.
    pub commit_to_publish: Histogram,
}

/// Registered with an app's registry (`Arc<RelayMetrics>` is a collector
/// too): the relay keeps its plain atomics, and each scrape reads them.
/// Counters are named without `_total`, which the encoder appends.
impl Collector for RelayMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counters = [
            (
                "baton_outbox_published",
                "Events relayed from the outbox and acknowledged by the sink.",
                &self.published,
            ),
            (
                "baton_outbox_duplicates",
                "Relayed events JetStream had already stored (re-publishes).",
                &self.duplicates,
            ),
            (
                "baton_outbox_publish_errors",
                "Relay passes that failed and will be retried.",
                &self.errors,
            ),
            (
                "baton_outbox_chain_resyncs",
                "Publish chains refused by JetStream and re-anchored.",
                &self.resyncs,
            ),
        ];
        for (name, help, value) in counters {
            let value = ConstCounter::new(value.load(Ordering::Relaxed));
            describe(&mut encoder, name, help, &value)?;
        }
        let gauges = [
            (
                "baton_outbox_depth",
                "Outbox rows waiting to be relayed.",
                &self.outbox_depth,
            ),
            (
                "baton_outbox_relay_leader",
                "1 while this process relays the outbox.",
                &self.leader,
            ),
        ];
        for (name, help, value) in gauges {
            let value = ConstGauge::new(value.load(Ordering::Relaxed));
            describe(&mut encoder, name, help, &value)?;
        }
        describe(
            &mut encoder,
            "baton_outbox_commit_to_publish_seconds",
            "Time from commit to the sink's acknowledgement.",
            &self.commit_to_publish,
        )
    }
}

/// Writes one metric of a collector, its help and type first. A counter's
/// `name` is without `_total`, which the encoder appends.
pub fn describe(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric: &impl EncodeMetric,
) -> Result<(), std::fmt::Error> {
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

#[cfg(test)]
mod tests {
    use prometheus_client::encoding::prometheus_text::encode;
    use prometheus_client::registry::Registry;

    use super::*;

    fn text(metrics: Arc<RelayMetrics>) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(metrics));
        let mut text = String::new();
        assert!(encode(&mut text, &registry).is_ok());
        text
    }

    #[test]
    fn renders_a_cumulative_histogram() {
        let metrics = Arc::new(RelayMetrics::default());
        metrics
            .commit_to_publish
            .observe(Duration::from_micros(1500));
        metrics.commit_to_publish.observe(Duration::from_millis(40));
        metrics.commit_to_publish.observe(Duration::from_secs(60));
        let text = text(metrics);
        assert!(text.contains("baton_outbox_commit_to_publish_seconds_bucket{le=\"0.001\"} 0\n"));
        assert!(text.contains("baton_outbox_commit_to_publish_seconds_bucket{le=\"0.002\"} 1\n"));
        assert!(text.contains("baton_outbox_commit_to_publish_seconds_bucket{le=\"0.05\"} 2\n"));
        assert!(text.contains("baton_outbox_commit_to_publish_seconds_bucket{le=\"1\"} 2\n"));
        assert!(text.contains("baton_outbox_commit_to_publish_seconds_bucket{le=\"30\"} 2\n"));
        assert!(text.contains("baton_outbox_commit_to_publish_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(text.contains("baton_outbox_commit_to_publish_seconds_count 3\n"));
        assert!(text.contains("baton_outbox_commit_to_publish_seconds_sum 60.0415\n"));
    }

    #[test]
    fn the_relay_figures_keep_their_names_and_types() {
        let metrics = Arc::new(RelayMetrics::default());
        metrics.published.store(7, Ordering::Relaxed);
        metrics.leader.store(1, Ordering::Relaxed);
        let text = text(metrics);
        for (name, kind) in [
            ("baton_outbox_published_total", "counter"),
            ("baton_outbox_duplicates_total", "counter"),
            ("baton_outbox_publish_errors_total", "counter"),
            ("baton_outbox_chain_resyncs_total", "counter"),
            ("baton_outbox_depth", "gauge"),
            ("baton_outbox_relay_leader", "gauge"),
            ("baton_outbox_commit_to_publish_seconds", "histogram"),
        ] {
            assert!(
                text.contains(&format!("\n# TYPE {name} {kind}\n")),
                "{name} {kind}: {text}"
            );
        }
        assert!(
            text.contains("\nbaton_outbox_published_total 7\n"),
            "{text}"
        );
        assert!(text.contains("\nbaton_outbox_relay_leader 1\n"), "{text}");
    }
}
