//! The NHS number, checked by Modulus 11 on construction so that no other
//! part of Baton ever holds an NHS number that could belong to nobody.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a text is not an NHS number. Each reason is a rule a user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NhsNumberError {
    /// Only `9912003888` and `991 200 3888` are accepted: other spacings are
    /// refused because they usually mean a digit was lost or doubled.
    #[error("an NHS number is ten digits, written 9912003888 or 991 200 3888")]
    BadFormat,
    /// The Modulus 11 sum gave a check of 10: no NHS number is ever issued so.
    #[error("no NHS number has this sequence of nine first digits (its check would be 10)")]
    CheckDigitTen,
    /// The tenth digit disagrees with the Modulus 11 check of the first nine.
    #[error("the check digit is wrong: this is not a valid NHS number")]
    CheckDigitMismatch,
}

/// A valid NHS number, stored as its ten digits.
///
/// `Debug` masks all but the last three digits so that an NHS number
/// never reaches a log by accident through `{:?}`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NhsNumber([u8; 10]);

/// FHIR identifier system for NHS numbers.
pub const NHS_NUMBER_SYSTEM: &str = "https://fhir.nhs.uk/Id/nhs-number";

/// The Modulus 11 check digit of nine digits, or `None` when it is 10.
fn check_digit(nine: &[u8]) -> Option<u8> {
    let sum: u32 = nine
        .iter()
        .zip((2..=10u32).rev())
        .map(|(digit, weight)| u32::from(*digit) * weight)
        .sum();
    match 11 - (sum % 11) {
        11 => Some(0),
        10 => None,
        check => u8::try_from(check).ok(),
    }
}

impl NhsNumber {
    /// Parses `9912003888` or `991 200 3888` (surrounding white space is ignored).
    pub fn parse(text: &str) -> Result<Self, NhsNumberError> {
        let text = text.trim();
        let bytes = text.as_bytes();
        let digits: Vec<u8> = match bytes.len() {
            10 => bytes.to_vec(),
            12 if bytes[3] == b' ' && bytes[7] == b' ' => bytes
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != 3 && *i != 7)
                .map(|(_, b)| *b)
                .collect(),
            _ => return Err(NhsNumberError::BadFormat),
        };
        let mut out = [0u8; 10];
        for (slot, byte) in out.iter_mut().zip(&digits) {
            if !byte.is_ascii_digit() {
                return Err(NhsNumberError::BadFormat);
            }
            *slot = byte - b'0';
        }
        let Some(check) = check_digit(&out[..9]) else {
            return Err(NhsNumberError::CheckDigitTen);
        };
        if out[9] != check {
            return Err(NhsNumberError::CheckDigitMismatch);
        }
        Ok(Self(out))
    }

    /// The NHS number whose first nine digits are those of `first_nine`
    /// (zero-padded), with its Modulus 11 check digit; `None` when the
    /// check would be 10 (no number has those nine digits) or `first_nine`
    /// has more than nine digits. Demo data and tests make numbers with it.
    pub fn with_check_digit(first_nine: u32) -> Option<Self> {
        if first_nine > 999_999_999 {
            return None;
        }
        let mut out = [0u8; 10];
        let mut rest = first_nine;
        for slot in out[..9].iter_mut().rev() {
            // A remainder of 10 is below 256.
            *slot = u8::try_from(rest % 10).ok()?;
            rest /= 10;
        }
        out[9] = check_digit(&out[..9])?;
        Some(Self(out))
    }

    /// The ten digits with no spaces, as systems exchange it.
    pub fn digits(&self) -> String {
        self.0.iter().map(|d| char::from(b'0' + d)).collect()
    }

    /// The 3-3-4 form people read, e.g. `991 200 3888`.
    pub fn spaced(&self) -> String {
        let d = self.digits();
        format!("{} {} {}", &d[..3], &d[3..6], &d[6..])
    }
}

impl fmt::Display for NhsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.digits())
    }
}

impl fmt::Debug for NhsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.digits();
        write!(f, "NhsNumber(*******{})", &d[7..])
    }
}

impl FromStr for NhsNumber {
    type Err = NhsNumberError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for NhsNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.digits())
    }
}

impl<'de> Deserialize<'de> for NhsNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_made_from_nine_digits_is_the_one_parse_accepts() {
        assert_eq!(
            NhsNumber::with_check_digit(991_200_388),
            Some(NhsNumber::parse("9912003888").unwrap())
        );
        assert_eq!(NhsNumber::with_check_digit(1_000_000_000), None);
        assert_eq!(
            NhsNumber::with_check_digit(999_999_999).map(|n| n.digits()[..9].to_owned()),
            NhsNumber::parse("9999999999")
                .ok()
                .map(|n| n.digits()[..9].to_owned())
        );
        for prefix in 100_000_000..100_000_200u32 {
            let made = NhsNumber::with_check_digit(prefix);
            let parsed: Vec<NhsNumber> = (0..10)
                .filter_map(|d| NhsNumber::parse(&format!("{prefix}{d}")).ok())
                .collect();
            assert_eq!(made.into_iter().collect::<Vec<_>>(), parsed, "{prefix}");
        }
        // Leading zeros are digits too.
        assert_eq!(
            NhsNumber::with_check_digit(12_345).map(|n| n.digits()[..9].to_owned()),
            Some("000012345".to_owned())
        );
    }

    #[test]
    fn accepts_the_documented_example_in_both_written_forms() {
        assert_eq!(
            NhsNumber::parse("9912003888").unwrap().digits(),
            "9912003888"
        );
        assert_eq!(
            NhsNumber::parse("991 200 3888").unwrap().digits(),
            "9912003888"
        );
        assert_eq!(
            NhsNumber::parse(" 9912003888 ").unwrap().spaced(),
            "991 200 3888"
        );
    }

    #[test]
    fn accepts_other_valid_numbers() {
        for valid in ["9434765919", "4010232137", "9876543210", "0000000000"] {
            assert!(NhsNumber::parse(valid).is_ok(), "{valid} should be valid");
        }
    }

    #[test]
    fn refuses_the_two_wrongly_copied_examples() {
        assert_eq!(
            NhsNumber::parse("9912003814"),
            Err(NhsNumberError::CheckDigitMismatch)
        );
        assert_eq!(
            NhsNumber::parse("4123456879"),
            Err(NhsNumberError::CheckDigitMismatch)
        );
    }

    #[test]
    fn refuses_a_number_whose_check_would_be_ten() {
        // 1000000060: weights 10,9,...,2 give sum 10 + 6*3 = 28; 11 - 28 % 11 = 5,
        // so search a real check-10 prefix instead of trusting arithmetic by hand.
        let prefix = (0..1_000u32)
            .map(|n| format!("{n:09}"))
            .find(|p| {
                let sum: u32 = p
                    .bytes()
                    .zip((2..=10u32).rev())
                    .map(|(b, w)| u32::from(b - b'0') * w)
                    .sum();
                11 - sum % 11 == 10
            })
            .unwrap();
        for last in 0..10 {
            assert_eq!(
                NhsNumber::parse(&format!("{prefix}{last}")),
                Err(NhsNumberError::CheckDigitTen)
            );
        }
    }

    #[test]
    fn refuses_wrong_lengths_letters_and_odd_spacing() {
        for bad in [
            "",
            "991200388",
            "99120038888",
            "99120038a8",
            "991-200-3888",
            "99 12003888",
            "9912 003 888",
            "991  200 3888",
            "991 200 388８",
            "+912003888",
        ] {
            assert_eq!(
                NhsNumber::parse(bad),
                Err(NhsNumberError::BadFormat),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn refuses_the_spaced_form_with_only_one_of_its_two_spaces() {
        // Twelve characters with a digit where one space should be: the ten
        // digits left once the 4th and 8th characters are dropped make a
        // valid number, so only checking both spaces refuses them.
        for bad in ["991 20053888", "9915200 3888"] {
            assert_eq!(
                NhsNumber::parse(bad),
                Err(NhsNumberError::BadFormat),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn displays_as_the_ten_digits_systems_exchange() {
        let n = NhsNumber::parse("991 200 3888").unwrap();
        assert_eq!(n.to_string(), "9912003888");
        assert_eq!(format!("{n}"), n.digits());
        assert_eq!("9912003888".parse::<NhsNumber>(), Ok(n));
    }

    #[test]
    fn debug_output_masks_all_but_the_last_three_digits() {
        let n = NhsNumber::parse("9912003888").unwrap();
        assert_eq!(format!("{n:?}"), "NhsNumber(*******888)");
    }

    #[test]
    fn round_trips_through_json_as_ten_digits() {
        let n: NhsNumber = serde_json::from_str("\"991 200 3888\"").unwrap();
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"9912003888\"");
        let wrong = serde_json::from_str::<NhsNumber>("\"9912003814\"").unwrap_err();
        assert!(
            wrong
                .to_string()
                .starts_with(&NhsNumberError::CheckDigitMismatch.to_string()),
            "{wrong}"
        );
    }
}
