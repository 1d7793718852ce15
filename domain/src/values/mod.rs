//! Value types that validate on construction (NHS number, codes, free text,
//! pathways and other vocabularies, clinical time). Everything past the API
//! edge holds only valid values, so the aggregates check rules, not formats.

mod codes;
mod kinds;
mod nhs_number;
mod text;
mod time;

pub use codes::{
    BedLabel, CodeError, DelayId, DelayReasonCode, HospitalCode, HubCode, ReferralId, SpellId,
    TeamCode, TrustCode, VisitNumber, WardCode,
};
pub use kinds::{Destination, Pathway, ServiceKind};
pub use nhs_number::{NhsNumber, NhsNumberError, NHS_NUMBER_SYSTEM};
pub use text::{PersonName, Text, TextError, MAX_NAME, MAX_TEXT};
pub use time::{days_between, is_in_future, local_date, Instant, CLOCK_SKEW_MINUTES};
