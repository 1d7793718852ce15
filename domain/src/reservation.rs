//! Rules that span aggregates: a bed holds at most one patient, an NHS
//! number has at most one open spell, a referral is raised only for an open
//! spell, a spell has at most one active referral per team, and an admission
//! is not cancelled while referrals for it are active.
//!
//! An aggregate cannot see other aggregates, and cqrs-es commits one
//! aggregate per transaction. So each event *declares* the uniqueness keys
//! it claims, releases or requires ([`DomainEvent::reservations`]), and the
//! event store applies those declarations in the same transaction as the
//! events (a keyed table with a primary key). A conflict aborts the whole
//! commit: no event is stored, and the command is refused with a
//! [`ReservationConflict`]. [`Ledger`] is the same semantics in memory: the
//! reference the stores are tested against, and what property tests use.
//!
//! [`DomainEvent::reservations`]: crate::decider::DomainEvent::reservations

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::values::{BedLabel, NhsNumber, SpellId, TeamCode, WardCode};

/// A thing at most one aggregate may hold at a time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReservationKey {
    /// A bed, held by the spell of the patient in it.
    Bed { ward: WardCode, bed: BedLabel },
    /// A patient's presence in hospital, held by their one open spell.
    PatientInHospital { nhs_number: NhsNumber },
    /// A spell being open, held by the spell itself: referrals require it.
    OpenSpell { spell: SpellId },
    /// The active referral of a spell to a team (BaRS: one active at a time).
    ActiveReferral { spell: SpellId, team: TeamCode },
}

impl ReservationKey {
    /// A stable text form, used as a primary key by the stores.
    pub fn storage_key(&self) -> String {
        match self {
            ReservationKey::Bed { ward, bed } => format!("bed/{ward}/{bed}"),
            ReservationKey::PatientInHospital { nhs_number } => {
                format!("patient/{}", nhs_number.digits())
            }
            ReservationKey::OpenSpell { spell } => format!("spell/{spell}"),
            ReservationKey::ActiveReferral { spell, team } => format!("referral/{spell}/{team}"),
        }
    }

    /// The refusal a conflict on this key means.
    pub fn conflict(&self) -> ReservationConflict {
        match self {
            ReservationKey::Bed { ward, bed } => ReservationConflict::BedOccupied {
                ward: ward.clone(),
                bed: bed.clone(),
            },
            ReservationKey::PatientInHospital { .. } => {
                ReservationConflict::PatientAlreadyInHospital
            }
            ReservationKey::OpenSpell { spell } => ReservationConflict::SpellNotOpen {
                spell: spell.clone(),
            },
            ReservationKey::ActiveReferral { team, .. } => {
                ReservationConflict::ReferralAlreadyActive { team: team.clone() }
            }
        }
    }
}

/// Every key of one kind that belongs to one owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum KeyFamily {
    /// The active referrals of a spell, whatever the team.
    ActiveReferralsOf { spell: SpellId },
}

impl KeyFamily {
    /// The prefix every storage key of the family starts with.
    pub fn storage_prefix(&self) -> String {
        match self {
            KeyFamily::ActiveReferralsOf { spell } => format!("referral/{spell}/"),
        }
    }

    /// Whether `key` is of the family.
    pub fn contains(&self, key: &ReservationKey) -> bool {
        match (self, key) {
            (
                KeyFamily::ActiveReferralsOf { spell },
                ReservationKey::ActiveReferral { spell: of, .. },
            ) => spell == of,
            _ => false,
        }
    }

    /// The refusal a held key of the family means.
    pub fn conflict(&self) -> ReservationConflict {
        match self {
            KeyFamily::ActiveReferralsOf { .. } => ReservationConflict::ReferralsStillActive,
        }
    }
}

/// One declaration of an event. Applied in order, all or nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ReservationChange {
    /// Take the key for `holder`; fails when another holder has it.
    Claim {
        key: ReservationKey,
        /// The aggregate id that takes it.
        holder: String,
    },
    /// Give the key up, if `holder` has it.
    Release {
        key: ReservationKey,
        /// The aggregate id that gives it up.
        holder: String,
    },
    /// Give up every key `holder` has (a referral ending gives up its one
    /// active-referral key without repeating spell and team).
    ReleaseAll {
        /// The aggregate that gives its keys up.
        holder: String,
    },
    /// Fail unless someone holds the key.
    Require { key: ReservationKey },
    /// Fail while anyone holds a key of the family. Checked after every
    /// other change of the commit (its releases above all), so a commit
    /// racing one that claims such a key either sees that claim or makes it
    /// fail.
    RequireNone { family: KeyFamily },
}

/// A commit's changes in the order every store applies them: as declared,
/// but each `RequireNone` after all the others (see there). The one place
/// that order is defined; the ledger and both stores go through it.
pub fn in_applying_order(
    changes: &[ReservationChange],
) -> impl Iterator<Item = &ReservationChange> {
    let last = |c: &&ReservationChange| matches!(c, ReservationChange::RequireNone { .. });
    changes
        .iter()
        .filter(move |c| !last(c))
        .chain(changes.iter().filter(last))
}

/// Why a commit was refused by a cross-aggregate rule.
/// The variant's name in snake case is the rule's stable name in API answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum ReservationConflict {
    /// A bed holds at most one patient.
    #[error("bed {bed} on ward {ward} is occupied by another patient")]
    BedOccupied { ward: WardCode, bed: BedLabel },
    /// An NHS number has at most one open spell. (No number in the message:
    /// messages reach logs.)
    #[error("this patient already has an open spell")]
    PatientAlreadyInHospital,
    /// A referral is raised only for an open spell.
    #[error("the spell is not open")]
    SpellNotOpen { spell: SpellId },
    /// A spell has at most one active referral to a team.
    #[error("a referral to team {team} is already active for this spell")]
    ReferralAlreadyActive { team: TeamCode },
    /// An admission entered in error is not cancelled while teams are
    /// working on referrals for it: the ward withdraws them first, so that
    /// each team hears of it.
    #[error("referrals for this spell are still active: withdraw them first")]
    ReferralsStillActive,
}

/// The reservations in memory: who holds each key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    held: BTreeMap<ReservationKey, String>,
}

impl Ledger {
    /// Applies all changes, or none of them when one conflicts.
    pub fn apply(&mut self, changes: &[ReservationChange]) -> Result<(), ReservationConflict> {
        let mut next = self.held.clone();
        for change in in_applying_order(changes) {
            match change {
                ReservationChange::Claim { key, holder } => match next.get(key) {
                    Some(current) if current != holder => return Err(key.conflict()),
                    _ => {
                        next.insert(key.clone(), holder.clone());
                    }
                },
                ReservationChange::Release { key, holder } => {
                    if next.get(key) == Some(holder) {
                        next.remove(key);
                    }
                }
                ReservationChange::ReleaseAll { holder } => next.retain(|_, h| h != holder),
                ReservationChange::Require { key } => {
                    if !next.contains_key(key) {
                        return Err(key.conflict());
                    }
                }
                ReservationChange::RequireNone { family } => {
                    if next.keys().any(|key| family.contains(key)) {
                        return Err(family.conflict());
                    }
                }
            }
        }
        self.held = next;
        Ok(())
    }

    /// The holder name of an aggregate: its type and id, so that ids of
    /// different aggregate types can never collide.
    pub fn holder_name(aggregate_type: &str, aggregate_id: &str) -> String {
        format!("{aggregate_type}/{aggregate_id}")
    }

    /// Who holds `key`, if anyone.
    pub fn holder(&self, key: &ReservationKey) -> Option<&str> {
        self.held.get(key).map(String::as_str)
    }

    /// Every key held, with its holder.
    pub fn iter(&self) -> impl Iterator<Item = (&ReservationKey, &str)> {
        self.held.iter().map(|(k, v)| (k, v.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bed(n: &str) -> ReservationKey {
        ReservationKey::Bed {
            ward: WardCode::parse("W1").unwrap(),
            bed: BedLabel::parse(n).unwrap(),
        }
    }

    fn claim(key: ReservationKey, holder: &str) -> ReservationChange {
        ReservationChange::Claim {
            key,
            holder: holder.into(),
        }
    }

    #[test]
    fn refuses_a_claim_on_a_key_another_holder_has() {
        let mut ledger = Ledger::default();
        ledger.apply(&[claim(bed("1"), "s1")]).unwrap();
        assert!(matches!(
            ledger.apply(&[claim(bed("1"), "s2")]),
            Err(ReservationConflict::BedOccupied { .. })
        ));
        assert_eq!(ledger.holder(&bed("1")), Some("s1"));
    }

    #[test]
    fn a_repeated_claim_by_the_same_holder_is_harmless() {
        let mut ledger = Ledger::default();
        ledger.apply(&[claim(bed("1"), "s1")]).unwrap();
        assert_eq!(ledger.apply(&[claim(bed("1"), "s1")]), Ok(()));
    }

    #[test]
    fn applies_nothing_when_any_change_conflicts() {
        let mut ledger = Ledger::default();
        ledger.apply(&[claim(bed("2"), "s1")]).unwrap();
        let before = ledger.clone();
        let result = ledger.apply(&[claim(bed("1"), "s2"), claim(bed("2"), "s2")]);
        assert_eq!(
            result,
            Err(ReservationConflict::BedOccupied {
                ward: WardCode::parse("W1").unwrap(),
                bed: BedLabel::parse("2").unwrap(),
            })
        );
        assert_eq!(ledger, before);
    }

    #[test]
    fn a_release_by_someone_else_leaves_the_key_held() {
        let mut ledger = Ledger::default();
        ledger.apply(&[claim(bed("1"), "s1")]).unwrap();
        ledger
            .apply(&[ReservationChange::Release {
                key: bed("1"),
                holder: "s2".into(),
            }])
            .unwrap();
        assert_eq!(ledger.holder(&bed("1")), Some("s1"));
    }

    #[test]
    fn a_requirement_fails_on_a_key_nobody_holds() {
        let mut ledger = Ledger::default();
        let spell = ReservationKey::OpenSpell {
            spell: SpellId::parse("s1").unwrap(),
        };
        assert!(matches!(
            ledger.apply(&[ReservationChange::Require { key: spell.clone() }]),
            Err(ReservationConflict::SpellNotOpen { .. })
        ));
        ledger.apply(&[claim(spell.clone(), "s1")]).unwrap();
        assert_eq!(
            ledger.apply(&[ReservationChange::Require { key: spell }]),
            Ok(())
        );
    }

    #[test]
    fn requiring_none_fails_while_any_key_of_the_family_is_held() {
        let mut ledger = Ledger::default();
        let spell = SpellId::parse("s1").unwrap();
        let none = ReservationChange::RequireNone {
            family: KeyFamily::ActiveReferralsOf {
                spell: spell.clone(),
            },
        };
        let referral = |spell: &str| ReservationKey::ActiveReferral {
            spell: SpellId::parse(spell).unwrap(),
            team: TeamCode::parse("REAB").unwrap(),
        };
        ledger.apply(&[claim(referral("s2"), "r2")]).unwrap();
        assert_eq!(ledger.apply(std::slice::from_ref(&none)), Ok(()));
        ledger.apply(&[claim(referral("s1"), "r1")]).unwrap();
        assert_eq!(
            ledger.apply(std::slice::from_ref(&none)),
            Err(ReservationConflict::ReferralsStillActive)
        );
        assert!(referral("s1")
            .storage_key()
            .starts_with(&KeyFamily::ActiveReferralsOf { spell }.storage_prefix()));
    }

    #[test]
    fn requiring_none_is_checked_after_the_commits_other_changes_wherever_it_is_listed() {
        let mut ledger = Ledger::default();
        let key = ReservationKey::ActiveReferral {
            spell: SpellId::parse("s1").unwrap(),
            team: TeamCode::parse("REAB").unwrap(),
        };
        ledger.apply(&[claim(key, "r1")]).unwrap();
        let none = ReservationChange::RequireNone {
            family: KeyFamily::ActiveReferralsOf {
                spell: SpellId::parse("s1").unwrap(),
            },
        };
        let release = ReservationChange::ReleaseAll {
            holder: "r1".into(),
        };
        assert_eq!(ledger.apply(&[none, release]), Ok(()));
    }

    #[test]
    fn release_all_gives_up_only_the_holders_keys() {
        let mut ledger = Ledger::default();
        ledger
            .apply(&[claim(bed("1"), "r1"), claim(bed("2"), "r2")])
            .unwrap();
        ledger
            .apply(&[ReservationChange::ReleaseAll {
                holder: "r1".into(),
            }])
            .unwrap();
        assert_eq!(ledger.holder(&bed("1")), None);
        assert_eq!(ledger.holder(&bed("2")), Some("r2"));
    }

    #[test]
    fn the_ledger_lists_every_key_held_with_its_holder() {
        let mut ledger = Ledger::default();
        ledger
            .apply(&[claim(bed("2"), "s2"), claim(bed("1"), "s1")])
            .unwrap();
        let held: Vec<_> = ledger.iter().collect();
        assert_eq!(held, [(&bed("1"), "s1"), (&bed("2"), "s2")]);
        assert_eq!(Ledger::holder_name("spell", "s1"), "spell/s1");
    }

    #[test]
    fn a_familys_prefix_is_where_its_storage_keys_begin_and_no_other_spells() {
        let family = KeyFamily::ActiveReferralsOf {
            spell: SpellId::parse("s1").unwrap(),
        };
        assert_eq!(family.storage_prefix(), "referral/s1/");
        let of = |spell: &str| ReservationKey::ActiveReferral {
            spell: SpellId::parse(spell).unwrap(),
            team: TeamCode::parse("REAB").unwrap(),
        };
        assert_eq!(of("s1").storage_key(), "referral/s1/REAB");
        assert!(!of("s10")
            .storage_key()
            .starts_with(&family.storage_prefix()));
        assert!(family.contains(&of("s1")));
        assert!(!family.contains(&of("s10")));
        assert!(!family.contains(&bed("1")));
    }

    #[test]
    fn storage_keys_are_distinct_per_kind() {
        let nhs = NhsNumber::parse("9912003888").unwrap();
        assert_eq!(bed("3").storage_key(), "bed/W1/3");
        assert_eq!(
            ReservationKey::PatientInHospital { nhs_number: nhs }.storage_key(),
            "patient/9912003888"
        );
        let spell = SpellId::parse("s1").unwrap();
        assert_eq!(
            ReservationKey::OpenSpell { spell }.storage_key(),
            "spell/s1"
        );
    }
}
