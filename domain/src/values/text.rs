//! Free text typed by people (reasons, notes, questions, names). Bounded and
//! never blank, so that a correction always says why and a board row never
//! carries a megabyte of pasted text.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// Why a free text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// Blank text says nothing; where text is asked for, it is needed.
    #[error("this text must not be blank")]
    Blank,
    /// Longer texts belong in the clinical record, not in a flow tracker.
    #[error("this text is longer than {max} characters")]
    TooLong {
        /// The most characters allowed.
        max: usize,
    },
}

/// The longest free text Baton keeps (a summary of a referral).
pub const MAX_TEXT: usize = 4000;
/// The longest person name part.
pub const MAX_NAME: usize = 100;

/// Non-blank text of at most [`MAX_TEXT`] characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Text(String);

impl Text {
    /// Trims and validates.
    pub fn parse(text: impl AsRef<str>) -> Result<Self, TextError> {
        bounded(text.as_ref(), MAX_TEXT).map(Self)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A part of a person's name: non-blank, at most [`MAX_NAME`] characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct PersonName(String);

impl PersonName {
    /// Trims and validates.
    pub fn parse(text: impl AsRef<str>) -> Result<Self, TextError> {
        bounded(text.as_ref(), MAX_NAME).map(Self)
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn bounded(text: &str, max: usize) -> Result<String, TextError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(TextError::Blank);
    }
    if text.chars().count() > max {
        return Err(TextError::TooLong { max });
    }
    Ok(text.to_owned())
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::parse(String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for PersonName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::parse(String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_keeps_ordinary_text() {
        assert_eq!(
            Text::parse("  entered on the wrong patient ")
                .unwrap()
                .as_str(),
            "entered on the wrong patient"
        );
    }

    #[test]
    fn refuses_blank_and_overlong_text() {
        assert_eq!(Text::parse(" \n\t "), Err(TextError::Blank));
        assert_eq!(
            Text::parse("x".repeat(MAX_TEXT + 1)),
            Err(TextError::TooLong { max: MAX_TEXT })
        );
        assert_eq!(
            PersonName::parse("y".repeat(MAX_NAME + 1)),
            Err(TextError::TooLong { max: MAX_NAME })
        );
        assert!(PersonName::parse("Ó Súilleabháin").is_ok());
    }
}
