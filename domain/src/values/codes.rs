//! Identifiers of places, teams and reference entries. Each is a newtype
//! validated on construction, so a ward code can never be passed where a
//! team code is expected and no code carries spaces, markup or a path.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// Why a text is not a valid code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// Codes are what systems exchange and put in URLs, so they are short.
    #[error("a {kind} is 1 to {max} characters")]
    Length {
        /// Which kind of code.
        kind: &'static str,
        /// The longest allowed.
        max: usize,
    },
    /// Letters, digits, `-` and `_` only: codes appear in URLs and NATS subjects.
    #[error("a {kind} may hold only letters, digits, '-' and '_'")]
    Characters {
        /// Which kind of code.
        kind: &'static str,
    },
}

fn check_code(kind: &'static str, max: usize, text: &str) -> Result<(), CodeError> {
    if text.is_empty() || text.len() > max {
        return Err(CodeError::Length { kind, max });
    }
    if !text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(CodeError::Characters { kind });
    }
    Ok(())
}

macro_rules! code_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The most characters it may have (the OpenAPI document's
            /// `maxLength` for it is this constant).
            pub const MAX_LEN: usize = $max;

            /// Validates and wraps a code.
            pub fn parse(text: impl Into<String>) -> Result<Self, CodeError> {
                let text = text.into();
                check_code($kind, Self::MAX_LEN, &text)?;
                Ok(Self(text))
            }

            /// The code as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                Self::parse(String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
            }
        }

        impl std::str::FromStr for $name {
            type Err = CodeError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
    };
}

code_type!(
    /// A hospital (acute site), e.g. `RBD` or `POOLE`.
    HospitalCode, "hospital code", 32
);
code_type!(
    /// An NHS trust, which runs one or more hospitals, e.g. `UHD`.
    TrustCode, "trust code", 32
);
code_type!(
    /// A care transfer hub (the single point of access for a set of
    /// hospitals' discharges), e.g. `DORSET-HUB`.
    HubCode, "hub code", 32
);
code_type!(
    /// A ward, unique across the system, e.g. `POOLE-W3`.
    WardCode, "ward code", 32
);
code_type!(
    /// A bed on a ward. Beds are labelled `1..=beds` by the ward's reference data.
    BedLabel, "bed label", 16
);
code_type!(
    /// A community or social-care team that receives referrals.
    TeamCode, "team code", 32
);
code_type!(
    /// A delay reason's code within a version of the reason list.
    DelayReasonCode, "delay reason code", 16
);
code_type!(
    /// The identifier of an inpatient spell (the aggregate id).
    SpellId, "spell id", 64
);
code_type!(
    /// The identifier of a referral (the aggregate id).
    ReferralId, "referral id", 64
);
code_type!(
    /// A delay within a spell, assigned by the spell (`D1`, `D2`, ...).
    DelayId, "delay id", 16
);
code_type!(
    /// The patient administration system's own identifier of a spell (HL7 v2
    /// PV1-19, the visit number): how an ADT feed names the spell it means.
    VisitNumber, "visit number", 32
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_codes() {
        assert_eq!(
            WardCode::parse("POOLE-W3_a").unwrap().as_str(),
            "POOLE-W3_a"
        );
        assert_eq!(BedLabel::parse("12").unwrap().to_string(), "12");
    }

    #[test]
    fn refuses_empty_long_and_unsafe_codes() {
        assert!(matches!(WardCode::parse(""), Err(CodeError::Length { .. })));
        assert!(matches!(
            WardCode::parse("x".repeat(33)),
            Err(CodeError::Length { .. })
        ));
        for bad in ["a b", "a/b", "a.b", "<w>", "a*", "é"] {
            assert!(
                matches!(TeamCode::parse(bad), Err(CodeError::Characters { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn refuses_an_invalid_code_in_json() {
        let unsafe_code = serde_json::from_str::<HospitalCode>("\"a.b\"").unwrap_err();
        let rule = CodeError::Characters {
            kind: "hospital code",
        };
        assert!(
            unsafe_code.to_string().starts_with(&rule.to_string()),
            "{unsafe_code}"
        );
        assert_eq!(
            serde_json::from_str::<HospitalCode>("\"RBD\"").unwrap(),
            HospitalCode::parse("RBD").unwrap()
        );
    }
}
