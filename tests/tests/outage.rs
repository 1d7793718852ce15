//! Guarantee 4: with PostgreSQL down, commands fail fast as unavailable
//! (the API answers 503), nothing is half-written, and service resumes by
//! itself when the database returns: no restart, no operator.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_tests::eventually;
use baton_tests::fixtures::{admit, catalogue, issued, spell_id};
use baton_tests::postgres::TestDatabase;
use baton_tests::proxy::TcpProxy;
use domain::spell::{SpellCommand, SpellError};
use infra::commands::{CommandBus, CommandError};
use infra::metrics::RelayMetrics;
use infra::outbox;
use infra::relay::{Relay, Sink};
use infra::store::{BatonRepository, Database, ReservationRules};

async fn count(db: &Database, sql: &str) -> i64 {
    let Database::Postgres(pool) = db else {
        unreachable!()
    };
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

/// `pg`, migrated directly, and a store of `connections` that reaches it
/// through a proxy the test can cut: (direct, proxy, through the proxy).
async fn behind_a_proxy(pg: &TestDatabase, connections: u32) -> (Database, TcpProxy, Database) {
    let direct = Database::postgres(&pg.url, 4).unwrap();
    direct.migrate().await.unwrap();
    let proxy = TcpProxy::start("127.0.0.1:5432").await;
    let via_proxy = pg.url.replace(":5432/", &format!(":{}/", proxy.port()));
    let db = Database::postgres(&via_proxy, connections).unwrap();
    (direct, proxy, db)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_postgres_down_commands_fail_fast_and_service_resumes_by_itself() {
    let pg = TestDatabase::create().await;
    let (direct, proxy, db) = behind_a_proxy(&pg, 8).await;
    let repo = BatonRepository::new(db.clone(), ReservationRules::baton());
    let bus = Arc::new(CommandBus::new(repo.clone(), catalogue()));
    let (_stop, stop) = tokio::sync::watch::channel(false);
    let relay = Relay::new(
        db.clone(),
        Sink::Log,
        repo.relay_signals(),
        Arc::new(RelayMetrics::default()),
    );
    tokio::spawn(relay.run(stop));

    bus.spell(
        &spell_id("before"),
        issued(admit("before", 1, "W1", 1)),
        None,
    )
    .await
    .unwrap();

    proxy.cut();
    for i in 0..3u32 {
        let name = format!("down{i}");
        let started = Instant::now();
        let result = bus
            .spell(
                &spell_id(&name),
                issued(admit(&name, 10 + i, "W1", 10 + i)),
                None,
            )
            .await;
        assert!(
            matches!(result, Err(CommandError::Unavailable(_))),
            "{result:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "failed slowly: {:?}",
            started.elapsed()
        );
    }
    // Nothing of the refused commands was written.
    assert_eq!(count(&direct, "SELECT COUNT(*) FROM events").await, 1);

    proxy.restore();
    let resumed = spell_id("after");
    eventually("commands to succeed again", Duration::from_secs(20), || {
        let bus = bus.clone();
        let resumed = resumed.clone();
        async move {
            match bus
                .spell(&resumed, issued(admit("after", 2, "W1", 2)), None)
                .await
            {
                Ok(_) => true,
                // An attempt whose commit reached the database just before
                // its connection broke may already have admitted the patient.
                Err(CommandError::Refused(SpellError::AlreadyAdmitted)) => true,
                Err(_) => false,
            }
        }
    })
    .await;
    bus.spell(
        &resumed,
        issued(SpellCommand::SetDischargePathway {
            pathway: domain::values::Pathway::P1,
        }),
        None,
    )
    .await
    .unwrap();
    // Every event is in the log or still in the outbox: none half-written.
    eventually(
        "the relay to resume and drain",
        Duration::from_secs(20),
        || async {
            outbox::status(&direct).await.unwrap().depth == 0
                && count(&direct, "SELECT COUNT(*) FROM event_log").await
                    == count(&direct, "SELECT COUNT(*) FROM events").await
        },
    )
    .await;
    assert_eq!(count(&direct, "SELECT COUNT(*) FROM events").await, 3);
}

/// Connections used within the last second are not pinged before use, so a
/// network that silently drops packets must not hold a command for minutes:
/// it fails as unavailable at the bus's deadline, and service resumes when
/// packets flow again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_command_on_a_network_that_drops_packets_fails_at_its_deadline() {
    let pg = TestDatabase::create().await;
    let (_direct, proxy, db) = behind_a_proxy(&pg, 4).await;
    let repo = BatonRepository::new(db.clone(), ReservationRules::baton());
    let deadline = Duration::from_secs(1);
    let bus = CommandBus::new(repo, catalogue()).with_deadline(deadline);
    let id = spell_id("warm");
    bus.spell(&id, issued(admit("warm", 1, "W1", 1)), None)
        .await
        .unwrap();

    proxy.freeze();
    let started = Instant::now();
    let edd = || {
        issued(SpellCommand::SetExpectedDischargeDate {
            date: chrono::Utc::now().date_naive() + chrono::Duration::days(2),
        })
    };
    let result = bus.spell(&id, edd(), None).await;
    let took = started.elapsed();
    assert!(
        matches!(result, Err(CommandError::Unavailable(_))),
        "{result:?}"
    );
    assert!(took >= deadline && took < deadline * 3, "took {took:?}");

    proxy.thaw();
    eventually(
        "a command to succeed once packets flow again",
        Duration::from_secs(20),
        || async { bus.spell(&id, edd(), None).await.is_ok() },
    )
    .await;
}
