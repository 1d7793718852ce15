//! `baton demo`: a realistic synthetic system, so a newcomer sees full boards
//! at once. Built from the published figures in the domain notes:
//! - three acute hospitals (Dorset's), 25 wards of 24-32 beds at about 95%
//!   occupancy;
//! - about 15% of patients with no criteria to reside, their delays spread
//!   like the sitrep's (June 2023: P1 capacity 2,033; P3 1,791; P2 1,727;
//!   therapy 421; medical 390; equipment 234; transport 98; medicines 44);
//! - pathways about 50% P0, 45% P1, 4% P2, 1% P3;
//! - referrals to ten community teams in every state of their life cycle.
//!
//! Everything goes through the command bus, exactly as the API would send
//! it, so the demo's events are real events. The same seed loads the same
//! system; loading twice is refused (the patients would collide).

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{Duration, Utc};
use domain::reference::{Hospital, Hub, Team, Ward};
use domain::referral::ReferralCommand;
use domain::spell::{Patient, SpellCommand};
use domain::values::{
    BedLabel, DelayReasonCode, HospitalCode, HubCode, NhsNumber, Pathway, PersonName, ReferralId,
    ServiceKind, SpellId, TeamCode, Text, TrustCode, WardCode,
};
use domain::{Actor, Issued};
use infra::commands::CommandBus;
use infra::config::Config;
use infra::pipeline::{Pipeline, PipelineError};
use infra::reference::{Change, ReferenceStoreError};

/// Why the demo could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The store could not be opened.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// Reference data was refused or not stored.
    #[error(transparent)]
    Reference(#[from] ReferenceStoreError),
    /// It is already loaded.
    #[error("the demo system is already loaded in this database")]
    AlreadyLoaded,
    /// A generated value was invalid (a bug in the generator).
    #[error("generated an invalid value: {0}")]
    Generated(String),
}

/// A small deterministic generator (xorshift64*): the demo needs
/// reproducibility, not cryptography.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// Picks by weight.
    fn weighted<'a, T>(&mut self, items: &'a [(T, u64)]) -> &'a T {
        let total: u64 = items.iter().map(|(_, w)| w).sum();
        let mut roll = self.below(total);
        for (item, weight) in items {
            if roll < *weight {
                return item;
            }
            roll -= weight;
        }
        &items[0].0
    }
}

/// Code, name, wards and trust: University Hospitals Dorset runs the Royal
/// Bournemouth and Poole, Dorset County Hospital NHS Foundation Trust runs
/// Dorset County.
const HOSPITALS: [(&str, &str, u32, &str); 3] = [
    ("RBH", "Royal Bournemouth Hospital", 9, "UHD"),
    ("POOLE", "Poole Hospital", 8, "UHD"),
    ("DCH", "Dorset County Hospital", 8, "DCHFT"),
];

/// Dorset's care transfer hub: one single point of access for all three.
const HUB: (&str, &str) = ("DORSET-HUB", "Dorset care transfer hub");

const WARD_NAMES: [&str; 12] = [
    "Ashley",
    "Bradbury",
    "Castle",
    "Durlston",
    "Eastbury",
    "Fontmell",
    "Grove",
    "Hardy",
    "Kimmeridge",
    "Lulworth",
    "Melbury",
    "Purbeck",
];

const TEAMS: [(&str, &str, &[ServiceKind], u32); 10] = [
    (
        "REAB-E",
        "Reablement East Dorset",
        &[ServiceKind::Reablement],
        120,
    ),
    (
        "REAB-W",
        "Reablement West Dorset",
        &[ServiceKind::Reablement],
        120,
    ),
    (
        "REAB-C",
        "Reablement Bournemouth and Poole",
        &[ServiceKind::Reablement],
        120,
    ),
    (
        "HOMECARE",
        "Home Care Brokerage",
        &[ServiceKind::HomeCare],
        240,
    ),
    (
        "DN-EAST",
        "District Nursing East",
        &[ServiceKind::DistrictNursing],
        240,
    ),
    (
        "DN-WEST",
        "District Nursing West",
        &[ServiceKind::DistrictNursing],
        240,
    ),
    (
        "REHAB",
        "Community Rehab Beds",
        &[ServiceKind::CommunityRehabBed],
        180,
    ),
    ("CHP", "Care Home Placements", &[ServiceKind::CareHome], 480),
    (
        "SW",
        "Adult Social Work",
        &[ServiceKind::SocialWorkAssessment],
        480,
    ),
    ("HOSPICE", "Hospice at Home", &[ServiceKind::Hospice], 120),
];

/// Delay reason codes, weighted as the sitrep's June 2023 figures.
const DELAYS: [(&str, u64); 8] = [
    ("13", 2033),
    ("15", 1791),
    ("14", 1727),
    ("7", 421),
    ("1", 390),
    ("2", 234),
    ("8", 98),
    ("5", 44),
];

const FAMILY: [&str; 16] = [
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel",
    "Robinson", "Wright", "Thompson", "Evans", "Walker", "White", "Roberts",
];
const GIVEN: [&str; 16] = [
    "Margaret", "John", "Patricia", "David", "Susan", "Peter", "Jean", "Michael", "Barbara",
    "Robert", "Eileen", "William", "Doris", "Kenneth", "Joan", "Arthur",
];

fn bad(what: impl std::fmt::Display) -> DemoError {
    DemoError::Generated(what.to_string())
}

/// A valid NHS number from a counter (skipping those whose check is 10).
fn nhs_number(n: u64) -> Result<NhsNumber, DemoError> {
    let start = 900_000_000 + n * 7 % 99_999_999;
    (start..=999_999_999)
        .find_map(|candidate| NhsNumber::with_check_digit(u32::try_from(candidate).ok()?))
        .ok_or_else(|| bad(format!("no NHS number from {start}")))
}

struct Loaded {
    patients: u64,
    nctr: u64,
    referrals: u64,
    refused: u64,
}

/// Loads the demo into the configured store; answers with a summary.
pub async fn load(config: &Config, seed: u64) -> Result<String, DemoError> {
    let pipeline = Pipeline::start(config).await?;
    let result = populate(&pipeline, seed).await;
    // Leave with everything relayed, so the boards of the next `serve`
    // show the whole system as soon as they are caught up.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
    while tokio::time::Instant::now() < deadline {
        match infra::outbox::status(&pipeline.db).await {
            Ok(status) if status.depth == 0 => break,
            Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            Err(error) => {
                tracing::warn!(%error, "cannot read the outbox; the relay of `serve` will finish it");
                break;
            }
        }
    }
    pipeline.stop().await;
    let (wards, loaded) = result?;
    let next = if serving(&config.listen).await {
        format!(
            "Baton is already serving at http://{}/: its boards show the demo now (refresh \
             the page).",
            config.listen
        )
    } else {
        "Start Baton with `cargo run --release -- serve`.".to_owned()
    };
    Ok(format!(
        "loaded the demo: 3 hospitals of 2 trusts, {wards} wards, 10 teams, a care transfer \
         hub; {} patients in hospital \
         ({} with no criteria to reside), {} referrals ({} commands refused). {next} Sign in \
         at the web page, or take a token with `cargo run --release -- token --role ward \
         --hospital POOLE`.",
        loaded.patients, loaded.nctr, loaded.referrals, loaded.refused
    ))
}

/// True when something answers at Baton's listening address (a `serve`
/// already running), so the demo does not tell the user to start it.
async fn serving(listen: &str) -> bool {
    let connect = tokio::net::TcpStream::connect(listen);
    matches!(
        tokio::time::timeout(std::time::Duration::from_secs(1), connect).await,
        Ok(Ok(_))
    )
}

async fn populate(pipeline: &Pipeline, seed: u64) -> Result<(usize, Loaded), DemoError> {
    let reference = &pipeline.reference;
    if reference
        .snapshot()
        .hospitals()
        .any(|h| h.code.as_str() == "RBH")
    {
        return Err(DemoError::AlreadyLoaded);
    }
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let admin = "baton-demo";
    let mut wards = Vec::new();
    let mut name_index = 0;
    for (code, name, count, trust) in HOSPITALS {
        let hospital = HospitalCode::parse(code).map_err(bad)?;
        reference
            .put(
                Change::Hospital(Hospital {
                    code: hospital.clone(),
                    name: Text::parse(name).map_err(bad)?,
                    trust: Some(TrustCode::parse(trust).map_err(bad)?),
                }),
                admin,
            )
            .await?;
        for i in 0..count {
            let ward_name = WARD_NAMES[name_index % WARD_NAMES.len()];
            name_index += 1;
            let ward = Ward {
                code: WardCode::parse(format!("{code}-{}", i + 1)).map_err(bad)?,
                name: Text::parse(format!("{ward_name} Ward")).map_err(bad)?,
                hospital: hospital.clone(),
                beds: 24 + rng.below(9) as u16,
            };
            reference.put(Change::Ward(ward.clone()), admin).await?;
            wards.push(ward);
        }
    }
    for (code, name, services, sla) in TEAMS {
        reference
            .put(
                Change::Team(Team {
                    code: TeamCode::parse(code).map_err(bad)?,
                    name: Text::parse(name).map_err(bad)?,
                    services: services.iter().copied().collect::<BTreeSet<_>>(),
                    response_sla_minutes: sla,
                }),
                admin,
            )
            .await?;
    }
    reference
        .put(
            Change::Hub(Hub {
                code: HubCode::parse(HUB.0).map_err(bad)?,
                name: Text::parse(HUB.1).map_err(bad)?,
                hospitals: HOSPITALS
                    .iter()
                    .map(|(code, ..)| HospitalCode::parse(*code))
                    .collect::<Result<_, _>>()
                    .map_err(bad)?,
            }),
            admin,
        )
        .await?;
    // One task per ward, each with its own generator: wards load in parallel.
    let mut tasks = Vec::new();
    let mut patient_number = 0u64;
    for ward in &wards {
        let plan = WardPlan {
            ward: ward.clone(),
            first_patient: patient_number,
            seed: rng.next() | 1,
        };
        patient_number += u64::from(ward.beds) + 8;
        tasks.push(tokio::spawn(load_ward(pipeline.bus.clone(), plan)));
    }
    let mut loaded = Loaded {
        patients: 0,
        nctr: 0,
        referrals: 0,
        refused: 0,
    };
    for task in tasks {
        let ward = task.await.map_err(bad)??;
        loaded.patients += ward.patients;
        loaded.nctr += ward.nctr;
        loaded.referrals += ward.referrals;
        loaded.refused += ward.refused;
    }
    Ok((wards.len(), loaded))
}

struct WardPlan {
    ward: Ward,
    first_patient: u64,
    seed: u64,
}

async fn load_ward(bus: Arc<CommandBus>, plan: WardPlan) -> Result<Loaded, DemoError> {
    let mut rng = Rng(plan.seed);
    let nurse = Actor::new("demo-nurse", "Demo Ward Nurse");
    let team_actor = Actor::new("demo-team", "Demo Team Coordinator");
    let now = Utc::now();
    let mut loaded = Loaded {
        patients: 0,
        nctr: 0,
        referrals: 0,
        refused: 0,
    };
    let mut n = plan.first_patient;
    let fine = |result: Result<infra::commands::Committed, String>, loaded: &mut Loaded| {
        if let Err(error) = result {
            tracing::warn!(%error, "demo command refused");
            loaded.refused += 1;
        }
    };
    for bed in plan.ward.bed_labels() {
        n += 1;
        // Drawn first, so the bed's history can end before them.
        let early = rng
            .chance(6)
            .then(|| now - Duration::hours(30 + rng.below(200) as i64));
        let occupied = rng.chance(95);
        // Most inpatients came in recently; a few have stayed for weeks.
        let longest = rng.below(21) + 1;
        let days_in = rng.below(longest) as i64;
        let current_at = now - Duration::days(days_in) - Duration::hours(2 + rng.below(20) as i64);
        let free_until = [early, occupied.then_some(current_at)]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now);
        history(
            &bus,
            &nurse,
            &plan.ward,
            &bed,
            n,
            free_until,
            &mut rng,
            &mut loaded,
        )
        .await?;
        // A few beds saw a discharge earlier today (the boards count them).
        if let Some(admitted_at) = early {
            let id = SpellId::parse(format!("demo-{n}-early")).map_err(bad)?;
            let admitted = admit(
                &bus,
                &nurse,
                &id,
                n + 500_000,
                &plan.ward,
                &bed,
                admitted_at,
                &mut rng,
            )
            .await;
            if !admitted {
                tracing::warn!("demo early admission refused");
            }
            if admitted {
                let at = now - Duration::minutes(30 + rng.below(300) as i64);
                let at = at.max(admitted_at + Duration::hours(1));
                let discharged = bus
                    .spell(
                        &id,
                        Issued::new(
                            nurse.clone(),
                            now,
                            SpellCommand::DischargePatient {
                                at,
                                destination: domain::values::Destination::UsualResidence,
                            },
                        ),
                        None,
                    )
                    .await;
                fine(discharged.map_err(|e| e.to_string()), &mut loaded);
            }
        }
        // About 95% occupancy.
        if !occupied {
            continue;
        }
        let id = SpellId::parse(format!("demo-{n}")).map_err(bad)?;
        let admitted_at = current_at;
        if !admit(
            &bus,
            &nurse,
            &id,
            n,
            &plan.ward,
            &bed,
            admitted_at,
            &mut rng,
        )
        .await
        {
            loaded.refused += 1;
            continue;
        }
        loaded.patients += 1;
        let spell = |command: SpellCommand| Issued::new(nurse.clone(), now, command);
        let edd = (now + Duration::days(rng.below(7) as i64 - 2))
            .max(admitted_at)
            .date_naive();
        let r = bus
            .spell(
                &id,
                spell(SpellCommand::SetExpectedDischargeDate { date: edd }),
                None,
            )
            .await;
        fine(r.map_err(|e| e.to_string()), &mut loaded);
        let pathway = *rng.weighted(&[
            (Pathway::P0, 50),
            (Pathway::P1, 45),
            (Pathway::P2, 4),
            (Pathway::P3, 1),
        ]);
        let nctr = days_in >= 1 && rng.chance(17);
        let review_at = if nctr {
            admitted_at.max(now - Duration::days(rng.below(4) as i64 + 1))
        } else {
            now - Duration::hours(rng.below(6) as i64 + 1)
        }
        .max(admitted_at + Duration::minutes(30));
        let r = bus
            .spell(
                &id,
                spell(SpellCommand::RecordCriteriaReview {
                    meets_criteria_to_reside: !nctr,
                    at: review_at,
                }),
                None,
            )
            .await;
        fine(r.map_err(|e| e.to_string()), &mut loaded);
        let r = bus
            .spell(
                &id,
                spell(SpellCommand::SetDischargePathway { pathway }),
                None,
            )
            .await;
        fine(r.map_err(|e| e.to_string()), &mut loaded);
        if !nctr {
            continue;
        }
        loaded.nctr += 1;
        let reason = DelayReasonCode::parse(*rng.weighted(&DELAYS)).map_err(bad)?;
        let r = bus
            .spell(
                &id,
                spell(SpellCommand::RecordDelay {
                    reason_code: reason,
                    note: None,
                    at: review_at + Duration::minutes(10),
                }),
                None,
            )
            .await;
        fine(r.map_err(|e| e.to_string()), &mut loaded);
        if pathway == Pathway::P0 {
            continue;
        }
        let (team, service) = match pathway {
            Pathway::P1 => match rng.below(4) {
                0 => ("HOMECARE", ServiceKind::HomeCare),
                1 => ("DN-EAST", ServiceKind::DistrictNursing),
                _ => (
                    *rng.pick(&["REAB-E", "REAB-W", "REAB-C"]),
                    ServiceKind::Reablement,
                ),
            },
            Pathway::P2 => ("REHAB", ServiceKind::CommunityRehabBed),
            _ => ("CHP", ServiceKind::CareHome),
        };
        let referral_id = ReferralId::parse(format!("demo-ref-{n}")).map_err(bad)?;
        let raised = bus
            .raise_referral(
                &referral_id,
                &id,
                TeamCode::parse(team).map_err(bad)?,
                service,
                pathway,
                Text::parse("Medically optimised; needs support to return home").map_err(bad)?,
                nurse.clone(),
                now - Duration::minutes(rng.below(600) as i64),
            )
            .await;
        if let Err(error) = raised {
            tracing::warn!(%error, "demo referral refused");
            loaded.refused += 1;
            continue;
        }
        loaded.referrals += 1;
        // Teams are at every stage: some not yet seen (a few breached),
        // some acknowledged, asking, or accepted with a start date.
        let answer = |command: ReferralCommand| Issued::new(team_actor.clone(), now, command);
        let stage = rng.below(10);
        if stage >= 3 {
            let r = bus
                .referral(
                    &referral_id,
                    answer(ReferralCommand::AcknowledgeReferral),
                    None,
                )
                .await;
            fine(r.map_err(|e| e.to_string()), &mut loaded);
        }
        if stage == 4 {
            let question = Text::parse("Is there a key safe at the property?").map_err(bad)?;
            let r = bus
                .referral(
                    &referral_id,
                    answer(ReferralCommand::RequestInformation { question }),
                    None,
                )
                .await;
            fine(r.map_err(|e| e.to_string()), &mut loaded);
        }
        if stage >= 7 {
            let planned_start = (now + Duration::days(rng.below(5) as i64 + 1)).date_naive();
            let r = bus
                .referral(
                    &referral_id,
                    answer(ReferralCommand::AcceptReferral { planned_start }),
                    None,
                )
                .await;
            fine(r.map_err(|e| e.to_string()), &mut loaded);
        }
    }
    Ok(loaded)
}

/// How far back the demo's history goes: the leaders' charts show 30 days.
const HISTORY_DAYS: i64 = 30;

/// The bed's past 30 days up to `until`: patients admitted, some found no
/// longer meeting the criteria to reside days before they left (with a
/// delay recorded), and discharged, so the leaders' charts of NCTR, delay
/// days and discharges per day show real shapes on a newcomer's first run.
/// Clinical times are in the past; each command is recorded now.
#[allow(clippy::too_many_arguments)]
async fn history(
    bus: &CommandBus,
    nurse: &Actor,
    ward: &Ward,
    bed: &BedLabel,
    n: u64,
    until: chrono::DateTime<Utc>,
    rng: &mut Rng,
    loaded: &mut Loaded,
) -> Result<(), DemoError> {
    let now = Utc::now();
    // Admitted before the window too: the first days see discharges.
    let mut cursor = now - Duration::days(HISTORY_DAYS) - Duration::hours(rng.below(240) as i64);
    for k in 0..12u64 {
        let stay = Duration::days(1 + rng.below(10) as i64) + Duration::hours(rng.below(20) as i64);
        let admitted_at = cursor;
        let discharged_at = admitted_at + stay;
        if discharged_at + Duration::hours(2) > until {
            break;
        }
        let id = SpellId::parse(format!("demo-{n}-past-{k}")).map_err(bad)?;
        if !admit(
            bus,
            nurse,
            &id,
            HISTORY_PATIENTS + n * 16 + k,
            ward,
            bed,
            admitted_at,
            rng,
        )
        .await
        {
            loaded.refused += 1;
            break;
        }
        let spell = |command: SpellCommand| Issued::new(nurse.clone(), now, command);
        let mut commands = Vec::new();
        // Many stayed on past being ready to leave.
        let waited = rng
            .chance(40)
            .then(|| Duration::days(1 + rng.below(5) as i64))
            .filter(|waited| *waited + Duration::hours(4) < stay);
        if let Some(waited) = waited {
            let ready_at = discharged_at - waited;
            commands.push(SpellCommand::RecordCriteriaReview {
                meets_criteria_to_reside: false,
                at: ready_at,
            });
            commands.push(SpellCommand::RecordDelay {
                reason_code: DelayReasonCode::parse(*rng.weighted(&DELAYS)).map_err(bad)?,
                note: None,
                at: ready_at + Duration::minutes(10),
            });
        }
        commands.push(SpellCommand::DischargePatient {
            at: discharged_at,
            destination: domain::values::Destination::UsualResidence,
        });
        for command in commands {
            if let Err(error) = bus.spell(&id, spell(command), None).await {
                tracing::warn!(%error, "demo history command refused");
                loaded.refused += 1;
            }
        }
        cursor = discharged_at + Duration::hours(2 + rng.below(10) as i64);
    }
    Ok(())
}

/// Patient numbers of the history, clear of the current patients'.
const HISTORY_PATIENTS: u64 = 2_000_000;

#[allow(clippy::too_many_arguments)]
async fn admit(
    bus: &CommandBus,
    nurse: &Actor,
    id: &SpellId,
    n: u64,
    ward: &Ward,
    bed: &BedLabel,
    admitted_at: chrono::DateTime<Utc>,
    rng: &mut Rng,
) -> bool {
    let Ok(nhs_number) = nhs_number(n) else {
        return false;
    };
    let (Ok(family_name), Ok(given_name)) = (
        PersonName::parse(*rng.pick(&FAMILY)),
        PersonName::parse(*rng.pick(&GIVEN)),
    ) else {
        return false;
    };
    let born = chrono::NaiveDate::from_ymd_opt(
        1930 + rng.below(70) as i32,
        1 + rng.below(12) as u32,
        1 + rng.below(28) as u32,
    );
    let Some(date_of_birth) = born else {
        return false;
    };
    let command = SpellCommand::AdmitPatient {
        spell_id: id.clone(),
        patient: Patient {
            nhs_number,
            family_name,
            given_name,
            date_of_birth,
        },
        ward: ward.code.clone(),
        bed: bed.clone(),
        admitted_at,
        visit_number: None,
    };
    bus.spell(id, Issued::new(nurse.clone(), Utc::now(), command), None)
        .await
        .is_ok()
}
