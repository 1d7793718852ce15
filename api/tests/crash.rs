//! Guarantee 2: killing the Baton process between commit and publish loses
//! nothing. A real `baton serve` child relays while this test commits into
//! the same database; the child is killed with SIGKILL while the outbox still
//! holds rows, more is committed while it is dead, and after a restart every
//! event is on the stream (or the embedded log) exactly once, in order.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::process::Child;
use std::sync::Arc;
use std::time::Duration;

use baton_tests::fixtures::catalogue;
use baton_tests::nats::NatsServer;
use baton_tests::postgres::TestDatabase;
use baton_tests::{assert_exactly_once_in_order, eventually, read_feed};
use infra::commands::CommandBus;
use infra::feed::Feed;
use infra::outbox;
use infra::store::{BatonRepository, Database, ReservationRules};
use infra::stream::{StreamSettings, Target};

struct Baton {
    child: Option<Child>,
    envs: Vec<(String, String)>,
    log: std::path::PathBuf,
}

impl Baton {
    fn start(envs: Vec<(String, String)>, log: std::path::PathBuf) -> Self {
        let mut baton = Self {
            child: None,
            envs,
            log,
        };
        baton.spawn();
        baton
    }

    fn spawn(&mut self) {
        let child = baton_tests::serve_command(env!("CARGO_BIN_EXE_baton"), &self.log)
            .env("BATON_LISTEN", "127.0.0.1:0")
            .envs(self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap(); // SIGKILL: no shutdown code runs
            child.wait().unwrap();
        }
    }

    fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Baton {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn burst(bus: &Arc<CommandBus>, prefix: &str, first: u32, spells: u32) -> usize {
    baton_tests::fixtures::admit_and_update(bus, (prefix, first), spells, 4, |n| {
        (["W1", "W2", "X1"][(n / 30) as usize], n % 30 + 1)
    })
    .await
}

/// Commits bursts until one leaves rows in the outbox, then kills the child
/// at once: those rows were committed and not yet published.
async fn kill_with_rows_pending(baton: &mut Baton, bus: &Arc<CommandBus>, db: &Database) -> usize {
    let mut committed = 0;
    for round in 0..20u32 {
        committed += burst(bus, &format!("k{round}x"), 20 + round * 3, 3).await;
        if outbox::status(db).await.unwrap().depth > 0 {
            baton.kill();
            let left = outbox::status(db).await.unwrap().depth;
            if left > 0 {
                return committed;
            }
            baton.spawn();
        }
    }
    panic!(
        "never caught the relay with rows pending; log:\n{}",
        baton.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_baton_between_commit_and_publish_loses_nothing() {
    let pg = TestDatabase::create().await;
    let nats = NatsServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut baton = Baton::start(
        vec![
            ("BATON_DATABASE_URL".into(), pg.url.clone()),
            ("BATON_NATS_URL".into(), nats.url()),
            ("BATON_DATA_DIR".into(), dir.path().display().to_string()),
        ],
        dir.path().join("baton.log"),
    );
    // The child migrates the schema; wait for it rather than racing it.
    let db = Database::postgres(&pg.url, 10).unwrap();
    eventually(
        "the child to create the schema",
        Duration::from_secs(30),
        || async { outbox::status(&db).await.is_ok() },
    )
    .await;
    // The outbox is there before the last migrations are (0007's function):
    // migrating here too waits on the child's advisory lock and then finds
    // every migration applied.
    db.migrate().await.unwrap();
    let bus = Arc::new(CommandBus::new(
        BatonRepository::new(db.clone(), ReservationRules::baton()),
        catalogue(),
    ));
    let client = async_nats::connect(nats.url()).await.unwrap();
    let target = Arc::new(Target {
        context: async_nats::jetstream::new(client),
        settings: StreamSettings::default(),
    });
    let feed = Feed::JetStream(target.clone());
    let stream_len = || async {
        match target.context.get_stream("BATON_EVENTS").await {
            Ok(mut s) => s.info().await.map(|i| i.state.messages).unwrap_or(0),
            Err(_) => 0,
        }
    };

    let first = burst(&bus, "a", 0, 10).await;
    eventually("the child to publish", Duration::from_secs(30), || async {
        stream_len().await == first as u64
    })
    .await;

    let at_kill = kill_with_rows_pending(&mut baton, &bus, &db).await;
    let while_dead = burst(&bus, "dead", 80, 6).await;
    let total = first + at_kill + while_dead;
    assert!(outbox::status(&db).await.unwrap().depth > 0);

    baton.restart();
    eventually(
        "everything on the stream after the restart",
        Duration::from_secs(60),
        || async { stream_len().await == total as u64 },
    )
    .await;
    let events = read_feed(&feed, 0, total).await;
    assert_exactly_once_in_order(&events, total);
    eventually("the outbox to drain", Duration::from_secs(30), || async {
        outbox::status(&db).await.unwrap().depth == 0
    })
    .await;
    assert!(baton.log().contains("production mode"), "{}", baton.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_embedded_default_loses_nothing_across_a_kill_either() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut baton = Baton::start(
        vec![("BATON_DATA_DIR".into(), data.display().to_string())],
        dir.path().join("baton.log"),
    );
    eventually(
        "the child to create the SQLite store",
        Duration::from_secs(30),
        || async { data.join("baton.sqlite").exists() },
    )
    .await;
    let db = Database::sqlite(&data).await.unwrap();
    db.migrate().await.unwrap();
    let bus = Arc::new(CommandBus::new(
        BatonRepository::new(db.clone(), ReservationRules::baton()),
        catalogue(),
    ));
    let (_signal, appended) = tokio::sync::watch::channel(0);
    let feed = Feed::Log {
        db: db.clone(),
        appended,
    };

    let first = burst(&bus, "a", 0, 10).await;
    eventually(
        "the child to relay into the log",
        Duration::from_secs(30),
        || async { outbox::status(&db).await.unwrap().published_total == first as i64 },
    )
    .await;
    let at_kill = kill_with_rows_pending(&mut baton, &bus, &db).await;
    let while_dead = burst(&bus, "dead", 80, 6).await;
    let total = first + at_kill + while_dead;

    baton.restart();
    let events = read_feed(&feed, 0, total).await;
    assert_exactly_once_in_order(&events, total);
    let positions: Vec<u64> = events.iter().map(|e| e.position).collect();
    assert_eq!(
        positions,
        (1..=total as u64).collect::<Vec<_>>(),
        "a gapless log"
    );
    assert!(baton.log().contains("embedded mode"), "{}", baton.log());
}
