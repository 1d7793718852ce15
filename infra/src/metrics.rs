//! Counters and a latency histogram for the relay, rendered as Prometheus
//! text. Plain atomics: the relay updates them on its hot path, and the
//! `/metrics` endpoint (with the API) reads them without locking.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
];

/// A cumulative histogram of durations.
#[derive(Debug, Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one duration.
    pub fn observe(&self, value: Duration) {
        let seconds = value.as_secs_f64();
        for (bound, count) in BUCKETS.iter().zip(&self.counts) {
            if seconds <= *bound {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(value.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// How many durations were recorded.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Appends this histogram as Prometheus text.
    pub fn render_as(&self, name: &str, help: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bound, count) in BUCKETS.iter().zip(&self.counts) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                count.load(Ordering::Relaxed)
            );
        }
        let count = self.count();
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
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

impl RelayMetrics {
    /// Appends the Prometheus text of these metrics.
    pub fn render(&self, out: &mut String) {
        let counter = |out: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        };
        let gauge = |out: &mut String, name: &str, help: &str, value: i64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        };
        counter(
            out,
            "baton_outbox_published_total",
            "Events relayed from the outbox and acknowledged by the sink.",
            self.published.load(Ordering::Relaxed),
        );
        counter(
            out,
            "baton_outbox_duplicates_total",
            "Relayed events JetStream had already stored (re-publishes).",
            self.duplicates.load(Ordering::Relaxed),
        );
        counter(
            out,
            "baton_outbox_publish_errors_total",
            "Relay passes that failed and will be retried.",
            self.errors.load(Ordering::Relaxed),
        );
        counter(
            out,
            "baton_outbox_chain_resyncs_total",
            "Publish chains refused by JetStream and re-anchored.",
            self.resyncs.load(Ordering::Relaxed),
        );
        gauge(
            out,
            "baton_outbox_depth",
            "Outbox rows waiting to be relayed.",
            self.outbox_depth.load(Ordering::Relaxed),
        );
        gauge(
            out,
            "baton_outbox_relay_leader",
            "1 while this process relays the outbox.",
            self.leader.load(Ordering::Relaxed),
        );
        self.commit_to_publish.render_as(
            "baton_outbox_commit_to_publish_seconds",
            "Time from commit to the sink's acknowledgement.",
            out,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_cumulative_histogram() {
        let metrics = RelayMetrics::default();
        metrics
            .commit_to_publish
            .observe(Duration::from_micros(1500));
        metrics.commit_to_publish.observe(Duration::from_millis(40));
        let mut text = String::new();
        metrics.render(&mut text);
        assert!(text.contains("baton_outbox_commit_to_publish_seconds_bucket{le=\"0.001\"} 0"));
        assert!(text.contains("baton_outbox_commit_to_publish_seconds_bucket{le=\"0.002\"} 1"));
        assert!(text.contains("baton_outbox_commit_to_publish_seconds_bucket{le=\"0.05\"} 2"));
        assert!(text.contains("baton_outbox_commit_to_publish_seconds_count 2"));
    }
}
