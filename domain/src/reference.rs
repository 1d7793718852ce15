//! Reference data the rules read: hospitals, wards with their beds, teams
//! with their services and response SLA, and the versioned list of delay
//! reasons. Decisions see it through the [`ReferenceData`] trait (the
//! deciders' `Services`), so the domain never knows where it is stored.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::values::{
    BedLabel, DelayReasonCode, HospitalCode, HubCode, ServiceKind, TeamCode, Text, TrustCode,
    WardCode,
};

/// An acute hospital site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hospital {
    pub code: HospitalCode,
    pub name: Text,
    /// The trust that runs it: its staff may be scoped to the whole trust.
    /// Absent in hospitals stored before trusts were known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust: Option<TrustCode>,
}

/// A care transfer hub: the multi-agency single point of access that
/// arranges discharges from a set of hospitals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hub {
    pub code: HubCode,
    pub name: Text,
    /// The hospitals it serves (each one Baton knows).
    pub hospitals: BTreeSet<HospitalCode>,
}

/// A ward: its beds are labelled `1..=beds`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ward {
    /// Its code, unique across the system.
    pub code: WardCode,
    pub name: Text,
    /// The hospital it belongs to.
    pub hospital: HospitalCode,
    /// How many beds it has.
    pub beds: u16,
}

impl Ward {
    /// True when `bed` is one of this ward's labels, written canonically
    /// (`7`, never `07`), so that one bed never has two names.
    pub fn has_bed(&self, bed: &BedLabel) -> bool {
        match bed.as_str().parse::<u16>() {
            Ok(n) => n >= 1 && n <= self.beds && n.to_string() == bed.as_str(),
            Err(_) => false,
        }
    }

    /// The labels of every bed, in order.
    pub fn bed_labels(&self) -> impl Iterator<Item = BedLabel> {
        (1..=self.beds).filter_map(|n| BedLabel::parse(n.to_string()).ok())
    }
}

/// A community or social-care team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Team {
    pub code: TeamCode,
    pub name: Text,
    /// The services it offers.
    pub services: BTreeSet<ServiceKind>,
    /// Minutes within which it should acknowledge a referral.
    pub response_sla_minutes: u32,
}

/// One reason a discharge-ready patient is still in hospital.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelayReason {
    /// Its code within its list.
    pub code: DelayReasonCode,
    /// The heading as published.
    pub label: String,
}

/// A published version of the delay reason list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelayReasonList {
    /// The list's version name.
    pub version: String,
    /// Where it comes from.
    pub source: String,
    pub reasons: Vec<DelayReason>,
}

/// A delay reason as an event records it: code, list version and label, so
/// boards show the text the ward chose even after the list moves on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DelayReasonRef {
    /// The reason's code.
    pub code: DelayReasonCode,
    /// The version of the list the code belongs to.
    pub version: String,
    /// The reason's label in that version.
    pub label: String,
}

/// The delay reasons of the sitrep's table 5, shipped as data.
pub fn sitrep_delay_reasons() -> Result<DelayReasonList, ReferenceError> {
    serde_json::from_str(include_str!("../reference/delay-reasons.json"))
        .map_err(|_| ReferenceError::BadReasonList)
}

/// What decisions may ask of reference data.
pub trait ReferenceData: Send + Sync {
    /// A ward by code.
    fn ward(&self, code: &WardCode) -> Option<Ward>;
    /// A team by code.
    fn team(&self, code: &TeamCode) -> Option<Team>;
    /// A delay reason in the current version of the list.
    fn delay_reason(&self, code: &DelayReasonCode) -> Option<DelayReasonRef>;
}

/// The most beds a ward may have: the largest wards (a Nightingale ward, a
/// big assessment unit) hold well under this.
pub const MAX_BEDS: u16 = 120;

/// Why a change to reference data was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum ReferenceError {
    /// A ward must belong to a hospital Baton knows.
    #[error("the ward's hospital is not known")]
    UnknownHospital,
    /// A ward with no beds cannot hold a patient.
    #[error("a ward has at least one bed")]
    NoBeds,
    /// No real ward holds more; a board of tens of thousands of beds would
    /// make every read of it slow.
    #[error("a ward has at most {MAX_BEDS} beds")]
    TooManyBeds,
    /// A ward cannot move hospital: its spells' history names the old one.
    #[error("a ward cannot move to another hospital")]
    WardChangesHospital,
    /// A hub must serve at least one hospital.
    #[error("a hub serves at least one hospital")]
    NoHospitals,
    /// A hub serves only hospitals Baton knows.
    #[error("a hub's hospitals must each be known")]
    UnknownHubHospital,
    /// A team that offers nothing cannot receive referrals.
    #[error("a team offers at least one service")]
    NoServices,
    /// An SLA of zero minutes would escalate every referral at once.
    #[error("a response SLA is at least one minute")]
    ZeroSla,
    /// Versions are immutable once published.
    #[error("this version of the delay reason list exists already")]
    DuplicateReasonVersion,
    /// A list with no reasons, or one code twice, cannot be used.
    #[error("a delay reason list has at least one reason and no code twice")]
    BadReasonList,
}

/// Reference data held in memory: the embedded default and the test double.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Catalogue {
    hospitals: BTreeMap<HospitalCode, Hospital>,
    wards: BTreeMap<WardCode, Ward>,
    teams: BTreeMap<TeamCode, Team>,
    #[serde(default)]
    hubs: BTreeMap<HubCode, Hub>,
    reason_lists: Vec<DelayReasonList>,
}

impl Catalogue {
    /// A catalogue holding only the shipped delay reason list.
    pub fn with_sitrep_reasons() -> Result<Self, ReferenceError> {
        let mut catalogue = Self::default();
        catalogue.publish_delay_reasons(sitrep_delay_reasons()?)?;
        Ok(catalogue)
    }

    /// Adds or renames a hospital.
    pub fn put_hospital(&mut self, hospital: Hospital) {
        self.hospitals.insert(hospital.code.clone(), hospital);
    }

    /// Adds or changes a ward.
    pub fn put_ward(&mut self, ward: Ward) -> Result<(), ReferenceError> {
        if !self.hospitals.contains_key(&ward.hospital) {
            return Err(ReferenceError::UnknownHospital);
        }
        if ward.beds == 0 {
            return Err(ReferenceError::NoBeds);
        }
        if ward.beds > MAX_BEDS {
            return Err(ReferenceError::TooManyBeds);
        }
        if let Some(existing) = self.wards.get(&ward.code) {
            if existing.hospital != ward.hospital {
                return Err(ReferenceError::WardChangesHospital);
            }
        }
        self.wards.insert(ward.code.clone(), ward);
        Ok(())
    }

    /// Adds or changes a team.
    pub fn put_team(&mut self, team: Team) -> Result<(), ReferenceError> {
        if team.services.is_empty() {
            return Err(ReferenceError::NoServices);
        }
        if team.response_sla_minutes == 0 {
            return Err(ReferenceError::ZeroSla);
        }
        self.teams.insert(team.code.clone(), team);
        Ok(())
    }

    /// Adds or changes a hub.
    pub fn put_hub(&mut self, hub: Hub) -> Result<(), ReferenceError> {
        if hub.hospitals.is_empty() {
            return Err(ReferenceError::NoHospitals);
        }
        if !hub.hospitals.iter().all(|h| self.hospitals.contains_key(h)) {
            return Err(ReferenceError::UnknownHubHospital);
        }
        self.hubs.insert(hub.code.clone(), hub);
        Ok(())
    }

    /// Publishes a new version of the delay reasons; it becomes current.
    pub fn publish_delay_reasons(&mut self, list: DelayReasonList) -> Result<(), ReferenceError> {
        if self.reason_lists.iter().any(|l| l.version == list.version) {
            return Err(ReferenceError::DuplicateReasonVersion);
        }
        let codes: BTreeSet<_> = list.reasons.iter().map(|r| &r.code).collect();
        if list.reasons.is_empty() || codes.len() != list.reasons.len() {
            return Err(ReferenceError::BadReasonList);
        }
        self.reason_lists.push(list);
        Ok(())
    }

    pub fn hospitals(&self) -> impl Iterator<Item = &Hospital> {
        self.hospitals.values()
    }

    pub fn wards(&self) -> impl Iterator<Item = &Ward> {
        self.wards.values()
    }

    pub fn teams(&self) -> impl Iterator<Item = &Team> {
        self.teams.values()
    }

    pub fn hubs(&self) -> impl Iterator<Item = &Hub> {
        self.hubs.values()
    }

    /// A hub by code.
    pub fn hub(&self, code: &HubCode) -> Option<&Hub> {
        self.hubs.get(code)
    }

    /// The hospitals a trust runs.
    pub fn trust_hospitals<'a>(
        &'a self,
        trust: &'a TrustCode,
    ) -> impl Iterator<Item = &'a Hospital> + 'a {
        self.hospitals
            .values()
            .filter(move |h| h.trust.as_ref() == Some(trust))
    }

    /// The current delay reason list, if any was published.
    pub fn current_delay_reasons(&self) -> Option<&DelayReasonList> {
        self.reason_lists.last()
    }

    /// Every published version, oldest first.
    pub fn delay_reason_versions(&self) -> &[DelayReasonList] {
        &self.reason_lists
    }

    /// A hospital by code.
    pub fn hospital(&self, code: &HospitalCode) -> Option<&Hospital> {
        self.hospitals.get(code)
    }
}

impl ReferenceData for Catalogue {
    fn ward(&self, code: &WardCode) -> Option<Ward> {
        self.wards.get(code).cloned()
    }

    fn team(&self, code: &TeamCode) -> Option<Team> {
        self.teams.get(code).cloned()
    }

    fn delay_reason(&self, code: &DelayReasonCode) -> Option<DelayReasonRef> {
        let list = self.current_delay_reasons()?;
        list.reasons
            .iter()
            .find(|r| &r.code == code)
            .map(|r| DelayReasonRef {
                code: r.code.clone(),
                version: list.version.clone(),
                label: r.label.clone(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hospital() -> Hospital {
        Hospital {
            code: HospitalCode::parse("POOLE").unwrap(),
            name: Text::parse("Poole Hospital").unwrap(),
            trust: None,
        }
    }

    fn ward(beds: u16) -> Ward {
        Ward {
            code: WardCode::parse("W1").unwrap(),
            name: Text::parse("Ward 1").unwrap(),
            hospital: HospitalCode::parse("POOLE").unwrap(),
            beds,
        }
    }

    #[test]
    fn ships_the_eighteen_sitrep_delay_reasons() {
        let list = sitrep_delay_reasons().unwrap();
        assert_eq!(list.reasons.len(), 18);
        assert_eq!(list.reasons[7].label, "Awaiting transport");
    }

    #[test]
    fn a_ward_knows_its_beds_by_canonical_label() {
        let w = ward(24);
        assert!(w.has_bed(&BedLabel::parse("1").unwrap()));
        assert!(w.has_bed(&BedLabel::parse("24").unwrap()));
        assert!(!w.has_bed(&BedLabel::parse("25").unwrap()));
        assert!(!w.has_bed(&BedLabel::parse("0").unwrap()));
        assert!(!w.has_bed(&BedLabel::parse("07").unwrap()));
        assert!(!w.has_bed(&BedLabel::parse("A").unwrap()));
        assert_eq!(w.bed_labels().count(), 24);
    }

    fn run_by(code: &str, trust: Option<&str>) -> Hospital {
        Hospital {
            code: HospitalCode::parse(code).unwrap(),
            name: Text::parse(format!("{code} Hospital")).unwrap(),
            trust: trust.map(|t| TrustCode::parse(t).unwrap()),
        }
    }

    fn hub(hospitals: &[&str]) -> Hub {
        Hub {
            code: HubCode::parse("EAST").unwrap(),
            name: Text::parse("East hub").unwrap(),
            hospitals: hospitals
                .iter()
                .map(|h| HospitalCode::parse(*h).unwrap())
                .collect(),
        }
    }

    #[test]
    fn a_hub_serves_known_hospitals_only_and_at_least_one() {
        let mut c = Catalogue::default();
        c.put_hospital(run_by("POOLE", None));
        c.put_hospital(run_by("RBH", None));
        assert_eq!(c.put_hub(hub(&[])), Err(ReferenceError::NoHospitals));
        assert_eq!(
            c.put_hub(hub(&["POOLE", "DCH"])),
            Err(ReferenceError::UnknownHubHospital)
        );
        assert_eq!(c.hubs().count(), 0);
        assert_eq!(c.put_hub(hub(&["POOLE", "RBH"])), Ok(()));
        let code = HubCode::parse("EAST").unwrap();
        assert_eq!(c.hub(&code), Some(&hub(&["POOLE", "RBH"])));
        assert_eq!(c.hubs().count(), 1);
        assert_eq!(c.hub(&HubCode::parse("WEST").unwrap()), None);
    }

    #[test]
    fn a_trust_runs_the_hospitals_that_name_it_and_no_other() {
        let mut c = Catalogue::default();
        c.put_hospital(run_by("POOLE", Some("UHD")));
        c.put_hospital(run_by("RBH", Some("UHD")));
        c.put_hospital(run_by("DCH", Some("DCHFT")));
        c.put_hospital(run_by("OTHER", None));
        let uhd = TrustCode::parse("UHD").unwrap();
        let run: Vec<&str> = c.trust_hospitals(&uhd).map(|h| h.code.as_str()).collect();
        assert_eq!(run, vec!["POOLE", "RBH"]);
        let none = TrustCode::parse("NONE").unwrap();
        assert_eq!(c.trust_hospitals(&none).count(), 0);
    }

    #[test]
    fn refuses_a_ward_of_an_unknown_hospital_or_with_no_beds() {
        let mut c = Catalogue::default();
        assert_eq!(c.put_ward(ward(10)), Err(ReferenceError::UnknownHospital));
        c.put_hospital(hospital());
        assert_eq!(c.put_ward(ward(0)), Err(ReferenceError::NoBeds));
        assert_eq!(c.put_ward(ward(10)), Ok(()));
    }

    #[test]
    fn the_catalogue_lists_and_finds_what_it_holds() {
        let mut c = Catalogue::default();
        c.put_hospital(hospital());
        c.put_ward(ward(10)).unwrap();
        let team = Team {
            code: TeamCode::parse("REAB").unwrap(),
            name: Text::parse("Reablement East").unwrap(),
            services: [ServiceKind::Reablement].into(),
            response_sla_minutes: 60,
        };
        c.put_team(team.clone()).unwrap();
        assert_eq!(c.hospitals().collect::<Vec<_>>(), [&hospital()]);
        assert_eq!(c.wards().collect::<Vec<_>>(), [&ward(10)]);
        assert_eq!(c.teams().collect::<Vec<_>>(), [&team]);
        assert_eq!(c.hospital(&hospital().code), Some(&hospital()));
        assert_eq!(c.hospital(&HospitalCode::parse("RBD").unwrap()), None);
        assert_eq!(c.ward(&ward(10).code), Some(ward(10)));
        assert_eq!(c.team(&team.code), Some(team));
    }

    #[test]
    fn refuses_a_ward_bigger_than_any_real_one() {
        let mut c = Catalogue::default();
        c.put_hospital(hospital());
        assert_eq!(c.put_ward(ward(MAX_BEDS)), Ok(()));
        assert_eq!(
            c.put_ward(ward(MAX_BEDS + 1)),
            Err(ReferenceError::TooManyBeds)
        );
        assert_eq!(c.put_ward(ward(u16::MAX)), Err(ReferenceError::TooManyBeds));
    }

    #[test]
    fn refuses_moving_a_ward_to_another_hospital() {
        let mut c = Catalogue::default();
        c.put_hospital(hospital());
        c.put_hospital(Hospital {
            code: HospitalCode::parse("RBD").unwrap(),
            name: Text::parse("Dorset County").unwrap(),
            trust: None,
        });
        c.put_ward(ward(10)).unwrap();
        let moved = Ward {
            hospital: HospitalCode::parse("RBD").unwrap(),
            ..ward(10)
        };
        assert_eq!(c.put_ward(moved), Err(ReferenceError::WardChangesHospital));
    }

    #[test]
    fn refuses_a_team_with_no_services_or_a_zero_sla() {
        let mut c = Catalogue::default();
        let team = Team {
            code: TeamCode::parse("REAB").unwrap(),
            name: Text::parse("Reablement East").unwrap(),
            services: BTreeSet::new(),
            response_sla_minutes: 60,
        };
        assert_eq!(c.put_team(team.clone()), Err(ReferenceError::NoServices));
        let team = Team {
            services: [ServiceKind::Reablement].into(),
            response_sla_minutes: 0,
            ..team
        };
        assert_eq!(c.put_team(team.clone()), Err(ReferenceError::ZeroSla));
        assert_eq!(
            c.put_team(Team {
                response_sla_minutes: 60,
                ..team
            }),
            Ok(())
        );
    }

    #[test]
    fn the_newest_delay_reason_list_is_current_and_versions_are_immutable() {
        let mut c = Catalogue::with_sitrep_reasons().unwrap();
        let code = DelayReasonCode::parse("8").unwrap();
        assert_eq!(c.delay_reason(&code).unwrap().version, "sitrep-table5-2024");
        assert_eq!(
            c.publish_delay_reasons(sitrep_delay_reasons().unwrap()),
            Err(ReferenceError::DuplicateReasonVersion)
        );
        let next = DelayReasonList {
            version: "next".into(),
            source: "test".into(),
            reasons: vec![DelayReason {
                code: DelayReasonCode::parse("T1").unwrap(),
                label: "New reason".into(),
            }],
        };
        c.publish_delay_reasons(next).unwrap();
        assert_eq!(c.delay_reason(&code), None);
        assert_eq!(
            c.delay_reason(&DelayReasonCode::parse("T1").unwrap())
                .unwrap()
                .version,
            "next"
        );
        assert_eq!(c.delay_reason_versions().len(), 2);
    }

    #[test]
    fn refuses_an_empty_list_or_a_list_with_a_code_twice() {
        let mut c = Catalogue::default();
        let reason = DelayReason {
            code: DelayReasonCode::parse("1").unwrap(),
            label: "x".into(),
        };
        let twice = DelayReasonList {
            version: "v".into(),
            source: "s".into(),
            reasons: vec![reason.clone(), reason],
        };
        assert_eq!(
            c.publish_delay_reasons(twice),
            Err(ReferenceError::BadReasonList)
        );
        let empty = DelayReasonList {
            version: "v".into(),
            source: "s".into(),
            reasons: vec![],
        };
        assert_eq!(
            c.publish_delay_reasons(empty),
            Err(ReferenceError::BadReasonList)
        );
    }
}
