//! Why a user's access refuses a command.

/// The variant's name in snake case is the rule's stable name in API answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum AccessError {
    /// A grant that changes nothing is not recorded.
    #[error("the user has this role and scope already")]
    AlreadyGranted,
    /// A revocation of access already revoked is not recorded.
    #[error("the user's access is revoked already")]
    AlreadyRevoked,
    /// One aggregate holds one user.
    #[error("this access record belongs to another user")]
    AnotherUser,
}
