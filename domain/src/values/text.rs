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
    /// A control character (NUL, BEL, ESC, ...; in a name also a line break
    /// or tab) is never part of what a person meant to write: PostgreSQL
    /// cannot store NUL at all, and the others garble screens and logs.
    #[error("this text contains a control character (U+{code:04X})")]
    Control {
        /// The character's code point.
        code: u32,
    },
    /// Bidirectional overrides and isolates make text display in another
    /// order than it is stored: a name could show as someone else's.
    #[error("this text contains a bidirectional control (U+{code:04X})")]
    Bidirectional {
        /// The character's code point.
        code: u32,
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
        bounded(text.as_ref(), MAX_TEXT, Lines::Allowed).map(Self)
    }

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
        bounded(text.as_ref(), MAX_NAME, Lines::Refused).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether line breaks and tabs may stand in a text (a note, a summary) or
/// not (a name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lines {
    Allowed,
    Refused,
}

/// U+061C, U+200E-U+200F, U+202A-U+202E, U+2066-U+2069: the characters
/// that change the order text is shown in.
fn is_bidirectional_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

fn bounded(text: &str, max: usize, lines: Lines) -> Result<String, TextError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(TextError::Blank);
    }
    if text.chars().count() > max {
        return Err(TextError::TooLong { max });
    }
    for c in text.chars() {
        let layout = matches!(c, '\n' | '\r' | '\t');
        if c.is_control() && !(layout && lines == Lines::Allowed) {
            return Err(TextError::Control { code: u32::from(c) });
        }
        if is_bidirectional_control(c) {
            return Err(TextError::Bidirectional { code: u32::from(c) });
        }
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

/// What was once accepted is read back as it was: stored events are facts,
/// and a rule added later (as the control-character rule was) must not
/// make them unreadable. So reading checks only what every stored text has
/// always met (non-blank, bounded); new input goes through `parse`.
fn recorded(text: String, max: usize) -> Result<String, TextError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(TextError::Blank);
    }
    if trimmed.chars().count() > max {
        return Err(TextError::TooLong { max });
    }
    Ok(trimmed.to_owned())
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        recorded(String::deserialize(deserializer)?, MAX_TEXT)
            .map(Self)
            .map_err(serde::de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for PersonName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        recorded(String::deserialize(deserializer)?, MAX_NAME)
            .map(Self)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn control_characters_are_refused_and_named_by_their_code_point() {
        assert_eq!(Text::parse("a\u{0}b"), Err(TextError::Control { code: 0 }));
        assert_eq!(
            PersonName::parse("Smi\u{7}th"),
            Err(TextError::Control { code: 7 })
        );
        assert_eq!(
            Text::parse("esc \u{1b}[31m"),
            Err(TextError::Control { code: 0x1b })
        );
        assert_eq!(
            Text::parse("del \u{7f}"),
            Err(TextError::Control { code: 0x7f })
        );
    }

    #[test]
    fn a_note_keeps_its_line_breaks_and_tabs_but_a_name_does_not() {
        assert_eq!(
            Text::parse("line one\r\nline two\tend").unwrap().as_str(),
            "line one\r\nline two\tend"
        );
        assert_eq!(
            PersonName::parse("Ann\nSmith"),
            Err(TextError::Control { code: 0x0a })
        );
        assert_eq!(
            PersonName::parse("Ann\tSmith"),
            Err(TextError::Control { code: 0x09 })
        );
        assert_eq!(
            PersonName::parse("Ann\rSmith"),
            Err(TextError::Control { code: 0x0d })
        );
    }

    #[test]
    fn bidirectional_overrides_and_isolates_are_refused_at_both_ends_of_each_range() {
        for code in [0x061C, 0x200E, 0x200F, 0x202A, 0x202E, 0x2066, 0x2069] {
            let c = char::from_u32(code).unwrap();
            assert_eq!(
                PersonName::parse(format!("Ann{c}Smith")),
                Err(TextError::Bidirectional { code }),
                "U+{code:04X}"
            );
        }
        // Their neighbours are ordinary (or at least not bidirectional).
        for code in [0x061B, 0x200D, 0x2010, 0x2029, 0x202F, 0x2065, 0x206A] {
            let c = char::from_u32(code).unwrap();
            assert!(
                !matches!(
                    Text::parse(format!("a{c}b")),
                    Err(TextError::Bidirectional { .. })
                ),
                "U+{code:04X}"
            );
        }
    }

    #[test]
    fn text_recorded_before_the_control_character_rule_is_still_read_back() {
        let name: PersonName = serde_json::from_str("\"Ann\\tSmith\\u200f\"").unwrap();
        assert_eq!(name.as_str(), "Ann\tSmith\u{200f}");
        let note: Text = serde_json::from_str("\"a\\u0007b\"").unwrap();
        assert_eq!(note.as_str(), "a\u{7}b");
        let blank = serde_json::from_str::<PersonName>("\"  \"").unwrap_err();
        assert!(
            blank.to_string().starts_with(&TextError::Blank.to_string()),
            "{blank}"
        );
    }

    #[test]
    fn names_in_any_script_are_kept() {
        for name in ["O'Brien", "Zoë", "Nguyễn", "محمد", "Łukasz-Smith"] {
            assert_eq!(PersonName::parse(name).unwrap().as_str(), name);
        }
    }

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
