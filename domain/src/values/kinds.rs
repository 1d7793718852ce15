//! Closed vocabularies fixed by national guidance: discharge pathways, the
//! kinds of community service and the sitrep's discharge destination groups.
//! They are enums because a new value needs new rules, not just new data
//! (the delay reasons, which change without new rules, are reference data).

use serde::{Deserialize, Serialize};

/// Discharge pathway (DHSC hospital discharge guidance, Annex B).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Pathway {
    /// Home or usual residence with no new support.
    P0,
    /// Home or usual residence with new, additional or restarted support.
    P1,
    /// A short-term community bed with recovery support.
    P2,
    /// 24-hour bed-based care, usually a first care-home admission.
    P3,
}

impl Pathway {
    /// Every pathway, in order.
    pub const ALL: [Pathway; 4] = [Pathway::P0, Pathway::P1, Pathway::P2, Pathway::P3];

    /// P1-P3 need a community or social-care team to take the person on; P0 does not.
    pub fn needs_community_support(self) -> bool {
        !matches!(self, Pathway::P0)
    }

    /// The code as in the guidance.
    pub fn as_str(self) -> &'static str {
        match self {
            Pathway::P0 => "P0",
            Pathway::P1 => "P1",
            Pathway::P2 => "P2",
            Pathway::P3 => "P3",
        }
    }
}

/// A service a community team offers and a referral asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceKind {
    /// Short-term support at home to regain independence.
    Reablement,
    /// Ongoing care at home.
    HomeCare,
    /// Community (district) nursing.
    DistrictNursing,
    /// Intermediate care or rehabilitation bed.
    CommunityRehabBed,
    /// Residential or nursing home placement.
    CareHome,
    /// Social work (Care Act) assessment.
    SocialWorkAssessment,
    Hospice,
    Other,
}

/// Where a patient went on discharge (the sitrep's destination groups).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Destination {
    /// Home or usual place of residence, no new support.
    UsualResidence,
    /// Home or usual place of residence with new support.
    UsualResidenceWithSupport,
    /// A community rehabilitation bed.
    CommunityRehabBed,
    /// A care home the person did not live in before.
    CareHomeNew,
    /// The care home the person lives in.
    CareHomeUsual,
    Hospice,
    /// Another acute trust (a new spell starts there).
    OtherAcuteTrust,
    /// The patient died.
    Died,
    Other,
}

impl ServiceKind {
    /// Every service, in the order the contract lists them (the OpenAPI
    /// document's `enum` is built from this).
    pub const ALL: [ServiceKind; 8] = [
        ServiceKind::Reablement,
        ServiceKind::HomeCare,
        ServiceKind::DistrictNursing,
        ServiceKind::CommunityRehabBed,
        ServiceKind::CareHome,
        ServiceKind::SocialWorkAssessment,
        ServiceKind::Hospice,
        ServiceKind::Other,
    ];
}

impl Destination {
    /// Every destination group, in the contract's order (the OpenAPI
    /// document's `enum` is built from this).
    pub const ALL: [Destination; 9] = [
        Destination::UsualResidence,
        Destination::UsualResidenceWithSupport,
        Destination::CommunityRehabBed,
        Destination::CareHomeNew,
        Destination::CareHomeUsual,
        Destination::Hospice,
        Destination::OtherAcuteTrust,
        Destination::Died,
        Destination::Other,
    ];
}

#[cfg(test)]
mod every_value_is_listed {
    use super::*;

    // A variant added without being listed in ALL would be missing from
    // the document's enum, and refused by the schema check: the match
    // makes adding one a compile error here until it is counted.
    fn service_rank(s: ServiceKind) -> usize {
        match s {
            ServiceKind::Reablement => 0,
            ServiceKind::HomeCare => 1,
            ServiceKind::DistrictNursing => 2,
            ServiceKind::CommunityRehabBed => 3,
            ServiceKind::CareHome => 4,
            ServiceKind::SocialWorkAssessment => 5,
            ServiceKind::Hospice => 6,
            ServiceKind::Other => 7,
        }
    }

    fn destination_rank(d: Destination) -> usize {
        match d {
            Destination::UsualResidence => 0,
            Destination::UsualResidenceWithSupport => 1,
            Destination::CommunityRehabBed => 2,
            Destination::CareHomeNew => 3,
            Destination::CareHomeUsual => 4,
            Destination::Hospice => 5,
            Destination::OtherAcuteTrust => 6,
            Destination::Died => 7,
            Destination::Other => 8,
        }
    }

    #[test]
    fn all_lists_each_service_and_destination_once_in_order() {
        for (i, s) in ServiceKind::ALL.into_iter().enumerate() {
            assert_eq!(service_rank(s), i);
        }
        for (i, d) in Destination::ALL.into_iter().enumerate() {
            assert_eq!(destination_rank(d), i);
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pathways_one_to_three_need_a_community_team_and_pathway_zero_does_not() {
        let needing: Vec<_> = Pathway::ALL
            .into_iter()
            .filter(|p| p.needs_community_support())
            .collect();
        assert_eq!(needing, [Pathway::P1, Pathway::P2, Pathway::P3]);
    }

    #[test]
    fn each_pathway_is_written_as_in_the_guidance_the_same_as_in_json() {
        let codes: Vec<_> = Pathway::ALL.iter().map(|p| p.as_str()).collect();
        assert_eq!(codes, ["P0", "P1", "P2", "P3"]);
        for pathway in Pathway::ALL {
            assert_eq!(
                serde_json::to_value(pathway).unwrap_or_default(),
                pathway.as_str()
            );
        }
    }
}
