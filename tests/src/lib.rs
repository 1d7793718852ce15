//! Support for Baton's integration tests (in `tests/tests/`): each test gets
//! its own PostgreSQL database, its own SQLite directory and its own
//! nats-server, so tests run in parallel and never see each other's data.
//! A missing service fails the test loudly; nothing is ever skipped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test support

pub mod bench;
pub mod cluster;
pub mod cpu;
pub mod fixtures;
pub mod http;
pub mod mllp;
pub mod nats;
pub mod oidc;
pub mod pg_instance;
pub mod postgres;
pub mod proxy;
pub mod wire;

use std::future::Future;

#[doc(hidden)]
pub use mimalloc;

/// Declares, in a benchmark binary, the allocator `baton` itself runs with
/// (see `api/src/main.rs`), so the figures are the binary's.
#[macro_export]
macro_rules! bench_allocator {
    () => {
        #[global_allocator]
        static GLOBAL: $crate::mimalloc::MiMalloc = $crate::mimalloc::MiMalloc;
    };
}
use std::time::Duration;

/// Two tests of one body taking a [`http::Stack`]: the first on the
/// embedded default (SQLite and the local log), the second on PostgreSQL
/// and JetStream, each under its own name and test attribute.
#[macro_export]
macro_rules! on_both_stacks {
    ($(#[$test:meta])* $body:ident => $embedded:ident, $production:ident) => {
        $(#[$test])*
        async fn $embedded() {
            $body($crate::http::Stack::Embedded).await;
        }

        $(#[$test])*
        async fn $production() {
            $body($crate::http::Stack::Production).await;
        }
    };
}

/// Waits until `condition` holds, checking often, and fails the test with
/// `what` if it does not within `within`. Tests wait on conditions, never
/// on fixed sleeps.
pub async fn eventually<F, Fut>(what: &str, within: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if condition().await {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {within:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A port free on this machine now: bound, read, let go.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// `baton serve` as a child process (`binary` is the test's
/// `CARGO_BIN_EXE_baton`): no inherited environment, logging at info to
/// the end of `log`, standard output discarded. The caller adds the address
/// and settings.
pub fn serve_command(binary: &str, log: &std::path::Path) -> std::process::Command {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut command = std::process::Command::new(binary);
    command
        .arg("serve")
        .env_clear()
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(log);
    command
}

/// Reads `count` events from `feed` after position `after`, failing the test
/// if the feed stalls for 20 s.
pub async fn read_feed(
    feed: &infra::feed::Feed,
    after: u64,
    count: usize,
) -> Vec<infra::feed::FeedEvent> {
    use futures::StreamExt;
    let mut events = Vec::with_capacity(count);
    let mut stream = feed.subscribe(after).await.unwrap();
    while events.len() < count {
        let next = tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .expect("the feed stopped delivering")
            .expect("the feed ended")
            .unwrap();
        events.push(next);
    }
    events
}

/// Asserts `events` hold `expected` events, each (aggregate, sequence) once,
/// every aggregate's in sequence order from 1, at dense feed positions.
pub fn assert_exactly_once_in_order(events: &[infra::feed::FeedEvent], expected: usize) {
    use std::collections::{BTreeMap, HashSet};
    assert_eq!(events.len(), expected);
    let unique: HashSet<_> = events
        .iter()
        .map(|e| (e.aggregate_type.clone(), e.aggregate_id.clone(), e.sequence))
        .collect();
    assert_eq!(unique.len(), expected, "an event was delivered twice");
    let mut last: BTreeMap<&str, u64> = BTreeMap::new();
    for event in events {
        let previous = last
            .insert(&event.aggregate_id, event.sequence)
            .unwrap_or(0);
        assert_eq!(
            event.sequence,
            previous + 1,
            "{} out of order",
            event.aggregate_id
        );
    }
    let positions: Vec<u64> = events.iter().map(|e| e.position).collect();
    assert!(
        positions.windows(2).all(|w| w[1] == w[0] + 1),
        "feed positions are dense"
    );
}

/// Writes one section of docs/benchmarks.md (from its `## heading` to the
/// next), keeping every other benchmark's section as it is.
pub fn write_benchmark_section(heading: &str, body: &str) {
    let heading = &format!("## {}", heading.trim_start_matches("## "));
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/benchmarks.md");
    let existing = std::fs::read_to_string(path).unwrap_or_else(|_| {
        "# Benchmarks\n\nEach section is overwritten by the command it names.\n".into()
    });
    let mut sections: Vec<(String, String)> = Vec::new();
    let mut preamble = String::new();
    for chunk in existing.split("\n## ") {
        if sections.is_empty() && preamble.is_empty() && !existing.starts_with("## ") {
            preamble = chunk.to_owned();
            continue;
        }
        let (title, rest) = chunk.split_once('\n').unwrap_or((chunk, ""));
        sections.push((
            format!("## {}", title.trim_start_matches("## ")),
            rest.to_owned(),
        ));
    }
    let new = (heading.to_owned(), format!("\n{}", body.trim()));
    match sections.iter_mut().find(|(title, _)| title == heading) {
        Some(section) => *section = new,
        None => sections.push(new),
    }
    let mut out = preamble.trim_end().to_owned();
    for (title, rest) in sections {
        out.push_str(&format!(
            "\n\n{title}\n{}",
            rest.trim_start_matches('\n').trim_end()
        ));
    }
    out.push('\n');
    std::fs::write(path, out).unwrap();
}
