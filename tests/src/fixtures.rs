//! A small system to run commands against, and command builders.

use std::sync::Arc;

use domain::reference::{Catalogue, Hospital, ReferenceData, Team, Ward};
use domain::spell::{Patient, Placement, SpellCommand};
use domain::values::{
    BedLabel, HospitalCode, Instant, NhsNumber, PersonName, ServiceKind, SpellId, TeamCode, Text,
    WardCode,
};
use domain::{Actor, Issued};

/// Two hospitals, wards of 30 beds, and two community teams.
pub fn catalogue() -> Arc<dyn ReferenceData> {
    let mut c = Catalogue::with_sitrep_reasons().unwrap();
    for code in ["POOLE", "DCH"] {
        c.put_hospital(Hospital {
            code: HospitalCode::parse(code).unwrap(),
            name: Text::parse(format!("{code} hospital")).unwrap(),
            trust: None,
        });
    }
    for (code, hospital) in [("W1", "POOLE"), ("W2", "POOLE"), ("X1", "DCH")] {
        c.put_ward(Ward {
            code: WardCode::parse(code).unwrap(),
            name: Text::parse(format!("Ward {code}")).unwrap(),
            hospital: HospitalCode::parse(hospital).unwrap(),
            beds: 30,
        })
        .unwrap();
    }
    c.put_team(Team {
        code: TeamCode::parse("REAB").unwrap(),
        name: Text::parse("Reablement").unwrap(),
        services: [ServiceKind::Reablement].into(),
        response_sla_minutes: 120,
    })
    .unwrap();
    Arc::new(c)
}

/// A valid NHS number for every `n` (check 10 skipped).
pub fn nhs_number(n: u32) -> NhsNumber {
    let start = n.wrapping_mul(7919) % 900_000_000 + 100_000_000;
    (start..).find_map(NhsNumber::with_check_digit).unwrap()
}

/// The clock tests record at.
pub fn now() -> Instant {
    chrono::Utc::now()
}

/// A nurse.
pub fn nurse() -> Actor {
    Actor::new("nurse-1", "Nurse One")
}

/// Wraps a command as issued by [`nurse`] now.
pub fn issued<C>(command: C) -> Issued<C> {
    Issued::new(nurse(), now(), command)
}

/// Patient `n`.
pub fn patient(n: u32) -> Patient {
    Patient {
        nhs_number: nhs_number(n),
        family_name: PersonName::parse(format!("Family{n}")).unwrap(),
        given_name: PersonName::parse("Pat").unwrap(),
        date_of_birth: "1950-01-01".parse().unwrap(),
    }
}

/// Bed `bed` of `ward` at Poole.
pub fn placement(ward: &str, bed: &str) -> Placement {
    Placement {
        hospital: HospitalCode::parse("POOLE").unwrap(),
        ward: WardCode::parse(ward).unwrap(),
        bed: BedLabel::parse(bed).unwrap(),
    }
}

/// Admits patient `n` to `ward`/`bed` an hour ago.
pub fn admit(spell: &str, n: u32, ward: &str, bed: u32) -> SpellCommand {
    SpellCommand::AdmitPatient {
        spell_id: SpellId::parse(spell).unwrap(),
        patient: patient(n),
        ward: WardCode::parse(ward).unwrap(),
        bed: BedLabel::parse(bed.to_string()).unwrap(),
        admitted_at: now() - chrono::Duration::hours(1),
        visit_number: None,
    }
}

/// Baton's store on `db`, migrated, and a command bus over it with
/// [`catalogue`], as the app builds them.
pub async fn store_and_bus(
    db: &infra::store::Database,
) -> (
    infra::store::BatonRepository,
    Arc<infra::commands::CommandBus>,
) {
    db.migrate().await.unwrap();
    let repo =
        infra::store::BatonRepository::new(db.clone(), infra::store::ReservationRules::baton());
    let bus = Arc::new(infra::commands::CommandBus::new(repo.clone(), catalogue()));
    (repo, bus)
}

/// A spell id.
pub fn spell_id(id: &str) -> SpellId {
    SpellId::parse(id).unwrap()
}

/// Admits `spells` patients at once (spells `{prefix}0`.., NHS numbers from
/// `first` on, bed `place(n)` for patient `n`), each then setting `updates`
/// expected discharge dates in turn: how many commands that was.
pub async fn admit_and_update(
    bus: &Arc<infra::commands::CommandBus>,
    (prefix, first): (&str, u32),
    spells: u32,
    updates: i64,
    place: fn(u32) -> (&'static str, u32),
) -> usize {
    let work = (0..spells).map(|i| {
        let bus = bus.clone();
        let name = format!("{prefix}{i}");
        async move {
            let id = spell_id(&name);
            let n = first + i;
            let (ward, bed) = place(n);
            bus.spell(&id, issued(admit(&name, n, ward, bed)), None)
                .await
                .unwrap();
            for day in 1..=updates {
                let date = chrono::Utc::now().date_naive() + chrono::Duration::days(day);
                bus.spell(
                    &id,
                    issued(SpellCommand::SetExpectedDischargeDate { date }),
                    None,
                )
                .await
                .unwrap();
            }
        }
    });
    futures::future::join_all(work).await;
    spells as usize * (1 + updates as usize)
}
