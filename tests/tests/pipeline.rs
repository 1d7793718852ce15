//! From commit to stream, against real PostgreSQL and a real nats-server
//! (each test its own database and its own server):
//! 1. every committed event reaches the stream exactly once, in aggregate order;
//! 3. with NATS down, commands still succeed, the outbox grows, and all is
//!    published in order once NATS is back;
//!
//! and one relay at a time, with another taking over when it dies. (2, a
//! killed process, is in `crash.rs`; 4, PostgreSQL down, in `outage.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use baton_tests::nats::NatsServer;
use baton_tests::postgres::TestDatabase;
use baton_tests::{assert_exactly_once_in_order, eventually, read_feed};
use futures::StreamExt;
use infra::commands::CommandBus;
use infra::feed::Feed;
use infra::metrics::RelayMetrics;
use infra::outbox;
use infra::outbox::OutboxRow;
use infra::relay::{Chain, Relay, Sink};
use infra::store::{BatonRepository, Database};
use infra::stream::{StreamSettings, Target};
use tokio::sync::watch;
use tokio::task::JoinHandle;

struct Stack {
    _pg: TestDatabase,
    db: Database,
    repo: BatonRepository,
    bus: Arc<CommandBus>,
    nats: NatsServer,
    sink: Sink,
    feed: Feed,
}

struct RunningRelay {
    metrics: Arc<RelayMetrics>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

async fn stack() -> Stack {
    let pg = TestDatabase::create().await;
    let db = Database::postgres(&pg.url, 20).unwrap();
    let (repo, bus) = baton_tests::fixtures::store_and_bus(&db).await;
    let nats = NatsServer::start().await;
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(nats.url())
        .await
        .unwrap();
    let context = async_nats::jetstream::new(client);
    let target = Arc::new(Target {
        context,
        settings: StreamSettings::default(),
    });
    Stack {
        _pg: pg,
        db,
        repo,
        bus,
        nats,
        sink: Sink::JetStream(target.clone()),
        feed: Feed::JetStream(target),
    }
}

fn start_relay(db: &Database, repo: &BatonRepository, sink: &Sink) -> RunningRelay {
    let metrics = Arc::new(RelayMetrics::default());
    let (shutdown, stop) = watch::channel(false);
    let relay = Relay::new(
        db.clone(),
        sink.clone(),
        repo.relay_signals(),
        metrics.clone(),
    );
    RunningRelay {
        metrics,
        shutdown,
        task: tokio::spawn(relay.run(stop)),
    }
}

/// Admits `spells` patients (beds and NHS numbers from `first` on, so batches
/// do not collide) and sets `updates` EDDs on each, spells in parallel.
async fn commit_events(
    bus: &Arc<CommandBus>,
    prefix: &str,
    first: u32,
    spells: u32,
    updates: i64,
) -> usize {
    baton_tests::fixtures::admit_and_update(bus, (prefix, first), spells, updates, |n| {
        if n < 30 {
            ("W1", n + 1)
        } else {
            ("W2", n - 29)
        }
    })
    .await
}

async fn stream_len(stack: &Stack) -> u64 {
    let Sink::JetStream(target) = &stack.sink else {
        unreachable!()
    };
    match target.context.get_stream(&target.settings.name).await {
        Ok(mut stream) => stream.info().await.map(|i| i.state.messages).unwrap_or(0),
        Err(_) => 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_committed_event_reaches_the_stream_once_in_aggregate_order() {
    let s = stack().await;
    let relay = start_relay(&s.db, &s.repo, &s.sink);
    let expected = commit_events(&s.bus, "a", 0, 20, 5).await;
    eventually(
        "all events on the stream",
        Duration::from_secs(30),
        || async { stream_len(&s).await == expected as u64 },
    )
    .await;
    let events = read_feed(&s.feed, 0, expected).await;
    assert_exactly_once_in_order(&events, expected);
    let first = &events[0];
    assert_eq!(first.event_type, "PatientAdmitted");
    assert_eq!(first.json().unwrap()["by"]["id"], "nurse-1");
    outbox_emptied(&s.db).await;
    assert_eq!(
        relay.metrics.published.load(Ordering::Relaxed),
        expected as u64
    );
    assert!(relay.metrics.commit_to_publish.count() >= expected as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_event_published_again_is_stored_once() {
    let s = stack().await;
    let relay = start_relay(&s.db, &s.repo, &s.sink);
    let expected = commit_events(&s.bus, "d", 0, 3, 1).await;
    eventually(
        "all events on the stream",
        Duration::from_secs(30),
        || async { stream_len(&s).await == expected as u64 },
    )
    .await;
    // As if the relay had died after publishing but before deleting its rows:
    // put the already-published events back into the outbox.
    let Database::Postgres(pool) = &s.db else {
        unreachable!()
    };
    sqlx::query(
        "INSERT INTO outbox (aggregate_type, aggregate_id, sequence) \
         SELECT aggregate_type, aggregate_id, sequence FROM events",
    )
    .execute(pool)
    .await
    .unwrap();
    sqlx::query("SELECT pg_notify('baton_outbox', '')")
        .execute(pool)
        .await
        .unwrap();
    eventually(
        "the re-published rows acknowledged",
        Duration::from_secs(30),
        || async { relay.metrics.duplicates.load(Ordering::Relaxed) == expected as u64 },
    )
    .await;
    assert_eq!(stream_len(&s).await, expected as u64);
    outbox_emptied(&s.db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_nats_down_commands_succeed_and_everything_follows_in_order_later() {
    let mut s = stack().await;
    let relay = start_relay(&s.db, &s.repo, &s.sink);
    let before = commit_events(&s.bus, "b", 0, 5, 1).await;
    eventually(
        "the first events on the stream",
        Duration::from_secs(30),
        || async { stream_len(&s).await == before as u64 },
    )
    .await;

    s.nats.stop();
    let during = commit_events(&s.bus, "c", 5, 10, 2).await;
    let depth = outbox::status(&s.db).await.unwrap().depth;
    assert_eq!(
        depth, during as i64,
        "the outbox holds what NATS could not take"
    );

    s.nats.restart().await;
    eventually(
        "the outbox drained to the stream",
        Duration::from_secs(60),
        || async { stream_len(&s).await == (before + during) as u64 },
    )
    .await;
    let events = read_feed(&s.feed, 0, before + during).await;
    assert_exactly_once_in_order(&events, before + during);
    // Publishes buffered through the outage may land before their rows are
    // acknowledged; once drained, every row was acknowledged exactly once
    // (a re-send of a row already stored counts as a duplicate, not twice).
    eventually("the outbox drained", Duration::from_secs(30), || async {
        outbox::status(&s.db).await.unwrap().depth == 0
    })
    .await;
    assert_eq!(
        relay.metrics.published.load(Ordering::Relaxed),
        (before + during) as u64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_relay_leads_and_another_takes_over_when_it_dies() {
    let s = stack().await;
    let first = start_relay(&s.db, &s.repo, &s.sink);
    let second = start_relay(&s.db, &s.repo, &s.sink);
    eventually("a leader", Duration::from_secs(10), || async {
        first.metrics.leader.load(Ordering::Relaxed) + second.metrics.leader.load(Ordering::Relaxed)
            == 1
    })
    .await;
    let batch = commit_events(&s.bus, "e", 0, 10, 1).await;
    eventually(
        "the first batch on the stream",
        Duration::from_secs(30),
        || async { stream_len(&s).await == batch as u64 },
    )
    .await;
    assert_eq!(
        first.metrics.leader.load(Ordering::Relaxed)
            + second.metrics.leader.load(Ordering::Relaxed),
        1,
        "never two leaders"
    );
    let (leader, follower) = if first.metrics.leader.load(Ordering::Relaxed) == 1 {
        (first, second)
    } else {
        (second, first)
    };
    let owner_before = outbox::status(&s.db).await.unwrap().relay_owner;
    // The leader dies: its task and its lock connection go with it.
    leader.task.abort();
    let _ = leader.task.await;
    drop(leader.shutdown);

    let more = commit_events(&s.bus, "f", 10, 10, 1).await;
    eventually(
        "the follower to take over and publish",
        Duration::from_secs(10),
        || async { stream_len(&s).await == (batch + more) as u64 },
    )
    .await;
    assert_eq!(follower.metrics.leader.load(Ordering::Relaxed), 1);
    let owner_after = outbox::status(&s.db).await.unwrap().relay_owner;
    assert_ne!(owner_before, owner_after);
    let events = read_feed(&s.feed, 0, batch + more).await;
    assert_exactly_once_in_order(&events, batch + more);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_that_cannot_reach_nats_keeps_its_lease() {
    let s = stack().await;
    let first = start_relay(&s.db, &s.repo, &s.sink);
    let second = start_relay(&s.db, &s.repo, &s.sink);
    let batch = commit_events(&s.bus, "k", 0, 4, 0).await;
    eventually(
        "the first batch on the stream",
        Duration::from_secs(30),
        || async { stream_len(&s).await == batch as u64 },
    )
    .await;
    let owner = outbox::status(&s.db).await.unwrap().relay_owner;
    assert!(owner.is_some());
    // NATS hangs: every publish now waits for an acknowledgement that never
    // comes, while the leader is alive and reaches the database.
    s.nats.freeze();
    let more = commit_events(&s.bus, "l", 4, 6, 1).await;
    // Three leases' worth of watching: the leader must stay the leader.
    let until = tokio::time::Instant::now() + Duration::from_secs(15);
    while tokio::time::Instant::now() < until {
        assert_eq!(
            outbox::status(&s.db).await.unwrap().relay_owner,
            owner,
            "leadership changed hands while NATS was frozen"
        );
        assert_eq!(
            first.metrics.leader.load(Ordering::Relaxed)
                + second.metrics.leader.load(Ordering::Relaxed),
            1
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    s.nats.thaw();
    eventually(
        "everything on the stream once NATS answers",
        Duration::from_secs(60),
        || async { stream_len(&s).await == (batch + more) as u64 },
    )
    .await;
    assert_eq!(outbox::status(&s.db).await.unwrap().relay_owner, owner);
    let events = read_feed(&s.feed, 0, batch + more).await;
    assert_exactly_once_in_order(&events, batch + more);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_feed_resumes_after_a_checkpoint_and_delivers_new_events_live() {
    let s = stack().await;
    let _relay = start_relay(&s.db, &s.repo, &s.sink);
    let first = commit_events(&s.bus, "g", 0, 4, 2).await;
    let all = read_feed(&s.feed, 0, first).await;
    let tail = read_feed(&s.feed, 5, first - 5).await;
    assert_eq!(&all[5..], &tail[..]);

    let mut live = s.feed.subscribe(first as u64).await.unwrap();
    commit_events(&s.bus, "h", 4, 1, 0).await;
    let next = tokio::time::timeout(Duration::from_secs(10), live.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(next.position, first as u64 + 1);
    assert_eq!(next.aggregate_id, "h0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_that_stops_renewing_its_heartbeat_is_replaced() {
    use sqlx::Connection;
    let s = stack().await;
    // A leader whose host hung: its session (and so its lock) stays open,
    // but it no longer renews its heartbeat.
    let mut hung = sqlx::PgConnection::connect(&s._pg.url).await.unwrap();
    let (hung_pid,): (i32,) = sqlx::query_as("SELECT pg_backend_pid()")
        .fetch_one(&mut hung)
        .await
        .unwrap();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(0x4241_544F_4E52_4C59_i64) // the relay's lock key, "BATONRLY"
        .execute(&mut hung)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE outbox_relay SET owner = 'hung', heartbeat_at = now() - interval '1 minute'",
    )
    .execute(&mut hung)
    .await
    .unwrap();
    let relay = start_relay(&s.db, &s.repo, &s.sink);
    let expected = commit_events(&s.bus, "h", 0, 3, 1).await;
    eventually(
        "a new relay to take over and publish",
        Duration::from_secs(20),
        || async { stream_len(&s).await == expected as u64 },
    )
    .await;
    assert_eq!(relay.metrics.leader.load(Ordering::Relaxed), 1);
    // Ended by the server (pg_terminate_backend: FATAL 57P01, or the socket
    // closed under it), not failing for some other reason.
    let ended = sqlx::query("SELECT 1").execute(&mut hung).await;
    assert!(
        match &ended {
            Err(sqlx::Error::Database(e)) => e.code().as_deref() == Some("57P01"),
            Err(sqlx::Error::Io(_)) => true,
            _ => false,
        },
        "the hung session was not ended: {ended:?}"
    );
    let observer = sqlx::PgPool::connect(&s._pg.url).await.unwrap();
    eventually(
        "the hung session's backend to be gone",
        Duration::from_secs(5),
        || async {
            let (left,): (i64,) =
                sqlx::query_as("SELECT count(*) FROM pg_stat_activity WHERE pid = $1")
                    .bind(hung_pid)
                    .fetch_one(&observer)
                    .await
                    .unwrap();
            left == 0
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_message_stored_by_another_publisher_breaks_the_chain_and_the_relay_re_anchors() {
    let s = stack().await;
    let relay = start_relay(&s.db, &s.repo, &s.sink);
    let before = commit_events(&s.bus, "f", 0, 4, 1).await;
    eventually(
        "the first events on the stream",
        Duration::from_secs(30),
        || async { stream_len(&s).await == before as u64 },
    )
    .await;
    // Something else writes to the stream: the relay's next chain expects
    // a last sequence that no longer holds, and must not stall or skip.
    let Sink::JetStream(target) = &s.sink else {
        unreachable!()
    };
    target
        .context
        .publish("baton.events.foreign.x", "not Baton's".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let after = commit_events(&s.bus, "g", 4, 6, 3).await;
    let total = before + after;
    eventually(
        "every event on the stream",
        Duration::from_secs(30),
        || async { stream_len(&s).await == total as u64 + 1 },
    )
    .await;
    // Read the raw stream: Baton's messages exactly once, in aggregate order.
    let stream = target.context.get_stream("BATON_EVENTS").await.unwrap();
    let mut seen = std::collections::BTreeMap::<String, u64>::new();
    let mut count = 0;
    for seq in 1..=total as u64 + 1 {
        let message = stream.get_raw_message(seq).await.unwrap();
        let Some(id) = message.headers.get("Baton-Aggregate-Id") else {
            continue;
        };
        let sequence: u64 = message
            .headers
            .get("Baton-Sequence")
            .unwrap()
            .as_str()
            .parse()
            .unwrap();
        let previous = seen.insert(id.as_str().to_owned(), sequence).unwrap_or(0);
        assert_eq!(sequence, previous + 1, "aggregate {id} out of order");
        count += 1;
    }
    assert_eq!(count, total);
    assert!(relay.metrics.resyncs.load(Ordering::Relaxed) >= 1);
    outbox_emptied(&s.db).await;
    assert_eq!(
        relay.metrics.published.load(Ordering::Relaxed),
        total as u64
    );
}

fn row(position: i64, aggregate: &str, sequence: i64) -> OutboxRow {
    OutboxRow {
        position,
        aggregate_type: "Spell".into(),
        aggregate_id: aggregate.into(),
        sequence,
        event_type: "ExpectedDischargeDateSet".into(),
        event_version: "1.0".into(),
        payload: serde_json::json!({ "n": position }),
        committed_at: chrono::Utc::now(),
    }
}

/// Each message in a chain expects the one before it. Expecting only the
/// last sequence is not enough: one foreign message makes message 1 wrong
/// and message 2 exactly right, so 2 would be stored ahead of 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_is_refused_whole_after_a_foreign_message_and_then_sent_in_order() {
    let nats = NatsServer::start().await;
    let context = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let settings = StreamSettings::default();
    infra::stream::ensure_stream(&context, &settings)
        .await
        .unwrap();
    let mut chain = Chain::default();
    let first = chain.publish(&context, &settings, &[row(1, "a", 1)]).await;
    assert_eq!((first.acked, first.failure), (1, None));
    assert!(chain.is_anchored());

    context
        .publish("baton.events.foreign.x", "not Baton's".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let rows: Vec<_> = (2..=6).map(|n| row(n, "a", n)).collect();
    let refused = chain.publish(&context, &settings, &rows).await;
    assert_eq!(refused.acked, 0);
    assert!(refused.resync);
    assert_eq!(refused.failure, None);
    assert!(!chain.is_anchored());
    let stream = context.get_stream(&settings.name).await.unwrap();
    assert_eq!(
        stream.get_info().await.unwrap().state.messages,
        2,
        "nothing of the refused chain was stored"
    );

    let sent = chain.publish(&context, &settings, &rows).await;
    assert_eq!((sent.acked, sent.failure), (rows.len(), None));
    for (seq, expected) in (3..=7).zip(2..=6) {
        let message = stream.get_raw_message(seq).await.unwrap();
        let sequence = message.headers.get("Baton-Sequence").unwrap().as_str();
        assert_eq!(sequence, expected.to_string());
    }
}

/// The relay removes acknowledged rows with its next pass, within
/// `REMOVE_WITHIN` when no commit wakes it sooner.
async fn outbox_emptied(db: &Database) {
    eventually("the outbox emptied", Duration::from_secs(30), || async {
        outbox::status(db).await.unwrap().depth == 0
    })
    .await;
}
