//! Why a spell refuses a command. Each variant names the rule broken; the
//! API turns them into 422 problems with the field at fault. Messages carry
//! no patient identifiers, because errors reach logs.

/// A refusal by a spell.
/// The variant's name in snake case is the rule's stable name in API answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum SpellError {
    /// Only an admission creates a spell.
    #[error("there is no such spell")]
    UnknownSpell,
    /// A spell is admitted once; its id cannot be reused.
    #[error("this spell exists already")]
    AlreadyAdmitted,
    /// A discharged spell accepts no change but a correction.
    #[error(
        "the patient has been discharged: only cancelling the discharge can change this spell"
    )]
    Discharged,
    /// A discharge happens once.
    #[error("the patient has been discharged already")]
    AlreadyDischarged,
    /// A cancelled admission was entered in error and accepts nothing.
    #[error("the admission was cancelled as entered in error: the spell accepts no change")]
    AdmissionCancelled,
    /// The ward must be in the reference data.
    #[error("there is no such ward")]
    UnknownWard,
    /// The bed must be one of the ward's.
    #[error("the ward has no such bed")]
    UnknownBed,
    /// Another hospital is another provider: it starts a new spell.
    #[error("a transfer stays within the hospital: another hospital admits on a new spell")]
    TransferToAnotherHospital,
    /// A transfer moves the patient.
    #[error("the patient is in that bed already")]
    AlreadyInThatBed,
    /// Nothing about a spell happens before its admission.
    #[error("{field} is before the admission")]
    BeforeAdmission {
        /// The command field at fault.
        field: &'static str,
    },
    /// Nobody records what has not happened yet.
    #[error("{field} is in the future")]
    InFuture {
        /// The command field at fault.
        field: &'static str,
    },
    /// Times must follow the spell's recorded history.
    #[error("{field} is before the {earlier} already recorded")]
    OutOfOrder {
        /// The command field at fault.
        field: &'static str,
        /// What it would precede.
        earlier: &'static str,
    },
    /// A patient is born before being admitted.
    #[error("the date of birth is after the admission")]
    BornAfterAdmission,
    /// No one alive was born before 1880: a date like 0000-01-01 is a
    /// typing mistake, not a record.
    #[error("the date of birth is before 1880")]
    BornTooLongAgo,
    /// An expected discharge date is a plan for this stay, not for next
    /// year: one further ahead than a year is a typing mistake.
    #[error("{field} is more than a year ahead")]
    TooFarAhead {
        /// The command field at fault.
        field: &'static str,
    },
    /// The reason must be in the current delay reason list.
    #[error("there is no such delay reason in the current list")]
    UnknownDelayReason,
    /// One open delay per reason; several reasons may be open at once.
    #[error("a delay with this reason is open already")]
    DelayAlreadyOpen,
    /// Only a recorded delay can be resolved.
    #[error("there is no such delay")]
    UnknownDelay,
    /// A delay is resolved once.
    #[error("this delay is resolved already")]
    DelayAlreadyResolved,
    /// Only a spell with a transfer has one to cancel.
    #[error("there is no transfer to cancel")]
    NoTransferToCancel,
    /// Only a discharge can be cancelled as a discharge.
    #[error("the patient has not been discharged")]
    NotDischarged,
    /// Corrections are undone newest first.
    #[error("cancel the discharge before cancelling the admission")]
    CancelDischargeFirst,
}
