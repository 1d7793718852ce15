//! Shared by the benchmark commands (`src/bin/`): one spell's life as a ward
//! records it, the bare postgres-es framework to compare against, and
//! percentiles.

use std::sync::Arc;
use std::time::Duration;

use cqrs_es::persist::PersistedEventStore;
use cqrs_es::CqrsFramework;
use domain::spell::{Spell, SpellCommand};
use domain::values::{DelayId, DelayReasonCode, Destination, Pathway};
use domain::{Actor, Issued};
use infra::cqrs::EsAggregate;
use postgres_es::PostgresEventRepository;

use crate::fixtures::{admit, catalogue};

/// One spell's life, as a ward would record it: 9 commands.
pub fn cycle(spell: &str, writer: u32) -> Vec<SpellCommand> {
    let now = chrono::Utc::now();
    let (ward, bed) = bed_of(writer);
    let today = now.date_naive();
    vec![
        admit(spell, 10_000 + writer, ward, bed),
        SpellCommand::SetExpectedDischargeDate {
            date: today + chrono::Duration::days(3),
        },
        SpellCommand::RecordCriteriaReview {
            meets_criteria_to_reside: false,
            at: now,
        },
        SpellCommand::SetDischargePathway {
            pathway: Pathway::P1,
        },
        SpellCommand::RecordDelay {
            reason_code: DelayReasonCode::parse("13").unwrap(),
            note: None,
            at: now,
        },
        SpellCommand::ResolveDelay {
            delay_id: DelayId::parse("D1").unwrap(),
            at: now,
        },
        SpellCommand::SetExpectedDischargeDate {
            date: today + chrono::Duration::days(1),
        },
        SpellCommand::SetDischargePathway {
            pathway: Pathway::P0,
        },
        SpellCommand::DischargePatient {
            at: now,
            destination: Destination::UsualResidence,
        },
    ]
}

/// The bed writer `writer` uses: one each, over wards W1, W2 and X1.
pub fn bed_of(writer: u32) -> (&'static str, u32) {
    (
        ["W1", "W2", "X1"][(writer / 30) as usize % 3],
        writer % 30 + 1,
    )
}

/// A command as the bench actor issues it now.
pub fn issued(command: SpellCommand) -> Issued<SpellCommand> {
    Issued::new(Actor::new("bench", "Bench"), chrono::Utc::now(), command)
}

/// postgres-es's framework as its documentation shows it.
pub type BareCqrs = CqrsFramework<
    EsAggregate<Spell>,
    PersistedEventStore<PostgresEventRepository, EsAggregate<Spell>>,
>;

/// The bare framework on a fresh events table at `url`.
pub async fn bare_framework(url: &str, connections: u32) -> Arc<BareCqrs> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(connections)
        .connect(url)
        .await
        .unwrap();
    sqlx::raw_sql(include_str!(
        "../../infra/migrations/postgres/0001_event_store.sql"
    ))
    .execute(&pool)
    .await
    .unwrap();
    let store = PersistedEventStore::new_event_store(PostgresEventRepository::new(pool));
    Arc::new(CqrsFramework::new(store, vec![], catalogue()))
}

/// Waits for load tasks, each giving how many commands it ran and their
/// latencies (or what it measured of each), and adds them up.
pub async fn gather<T>(
    tasks: impl IntoIterator<Item = tokio::task::JoinHandle<(usize, Vec<T>)>>,
) -> (usize, Vec<T>) {
    let mut total = 0;
    let mut all = Vec::new();
    for task in futures::future::join_all(tasks).await {
        let (done, latencies) = task.unwrap();
        total += done;
        all.extend(latencies);
    }
    (total, all)
}

/// The one-minute load average, as `uptime` shows it ("unknown" off
/// Linux): other work on the machine shares its cores with a benchmark.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The `p` quantile of sorted durations.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

/// Milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}
