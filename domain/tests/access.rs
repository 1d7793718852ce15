//! An admin's grants and revocations of a user's access, given/when/then.
#![allow(clippy::unwrap_used)] // test code

use domain::access::{
    AccessCommand, AccessError, AccessEvent, AccessNow, GrantedAccess, StaffAccess,
};
use domain::reference::Catalogue;
use domain::testing::given;
use domain::values::{Instant, Text};

fn now() -> Instant {
    "2026-12-02T09:00:00Z".parse().unwrap()
}

fn ward(hospital: &str) -> GrantedAccess {
    GrantedAccess {
        role: "ward".to_owned(),
        hospital: Some(hospital.to_owned()),
        trust: None,
        team: None,
        hub: None,
    }
}

fn granted(sub: &str, access: GrantedAccess) -> AccessEvent {
    AccessEvent::AccessGranted {
        sub: sub.to_owned(),
        name: "Wendy Ward".to_owned(),
        access,
        reason: None,
    }
}

fn grant(sub: &str, access: GrantedAccess) -> AccessCommand {
    AccessCommand::Grant {
        sub: sub.to_owned(),
        name: "Wendy Ward".to_owned(),
        access,
        reason: None,
    }
}

fn revoke(sub: &str) -> AccessCommand {
    AccessCommand::Revoke {
        sub: sub.to_owned(),
        reason: Some(Text::parse("left the trust").unwrap()),
    }
}

fn revoked(sub: &str) -> AccessEvent {
    AccessEvent::AccessRevoked {
        sub: sub.to_owned(),
        reason: Some(Text::parse("left the trust").unwrap()),
    }
}

#[test]
fn a_first_grant_is_recorded_with_who_it_is_for() {
    given::<StaffAccess>([])
        .when(grant("u1", ward("POOLE")), now(), &Catalogue::default())
        .then_expect(vec![granted("u1", ward("POOLE"))]);
}

#[test]
fn a_grant_of_another_scope_replaces_the_one_before() {
    given::<StaffAccess>([granted("u1", ward("POOLE"))])
        .when(grant("u1", ward("DCH")), now(), &Catalogue::default())
        .then_expect(vec![granted("u1", ward("DCH"))]);
}

#[test]
fn a_grant_that_changes_nothing_is_refused() {
    given::<StaffAccess>([granted("u1", ward("POOLE"))])
        .when(grant("u1", ward("POOLE")), now(), &Catalogue::default())
        .then_refused(AccessError::AlreadyGranted);
}

#[test]
fn access_can_be_revoked_whether_granted_in_baton_or_by_the_provider() {
    given::<StaffAccess>([])
        .when(revoke("u1"), now(), &Catalogue::default())
        .then_expect(vec![revoked("u1")]);
    given::<StaffAccess>([granted("u1", ward("POOLE"))])
        .when(revoke("u1"), now(), &Catalogue::default())
        .then_expect(vec![revoked("u1")]);
}

#[test]
fn a_revocation_is_not_recorded_twice_and_a_grant_after_it_restores_access() {
    given::<StaffAccess>([revoked("u1")])
        .when(revoke("u1"), now(), &Catalogue::default())
        .then_refused(AccessError::AlreadyRevoked);
    given::<StaffAccess>([revoked("u1")])
        .when(grant("u1", ward("POOLE")), now(), &Catalogue::default())
        .then_expect(vec![granted("u1", ward("POOLE"))]);
}

#[test]
fn one_record_holds_one_user() {
    given::<StaffAccess>([granted("u1", ward("POOLE"))])
        .when(grant("u2", ward("POOLE")), now(), &Catalogue::default())
        .then_refused(AccessError::AnotherUser);
    given::<StaffAccess>([granted("u1", ward("POOLE"))])
        .when(revoke("u2"), now(), &Catalogue::default())
        .then_refused(AccessError::AnotherUser);
}

#[test]
fn the_state_says_what_access_is_now() {
    assert_eq!(
        given::<StaffAccess>([]).state().now,
        AccessNow::FromProvider
    );
    let state = given::<StaffAccess>([granted("u1", ward("POOLE"))]);
    assert_eq!(state.state().now, AccessNow::Granted(ward("POOLE")));
    assert_eq!(state.state().sub.as_deref(), Some("u1"));
    let state = given::<StaffAccess>([granted("u1", ward("POOLE")), revoked("u1")]);
    assert_eq!(state.state().now, AccessNow::Revoked);
}

#[test]
fn access_events_keep_their_stable_names() {
    use domain::DomainEvent;
    assert_eq!(granted("u1", ward("POOLE")).event_type(), "AccessGranted");
    assert_eq!(revoked("u1").event_type(), "AccessRevoked");
    assert_eq!(revoked("u1").event_version(), "1");
}
