//! An HL7 v2 message, read as the standard lays it out (v2.x, chapter 2):
//! segments, fields, repetitions, components and subcomponents, with the
//! separators the message itself declares in MSH-1 and MSH-2, its escape
//! sequences undone, and the difference between a field that is absent
//! (empty) and one sent as the explicit null `""` (delete the value).
//!
//! Segments may end with `\r` (the standard), `\n` or `\r\n` (what many
//! senders and files use). Any byte string is either a message or a
//! [`ParseError`]; nothing here panics (property-tested).

use std::fmt;

/// The separators a message declares (MSH-1 and MSH-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delimiters {
    pub field: char,
    pub component: char,
    pub repetition: char,
    pub escape: Option<char>,
    pub subcomponent: char,
}

impl Default for Delimiters {
    fn default() -> Self {
        Self {
            field: '|',
            component: '^',
            repetition: '~',
            escape: Some('\\'),
            subcomponent: '&',
        }
    }
}

/// Why bytes are not an HL7 v2 message (answered with an `AR`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the message is not text (UTF-8)")]
    NotText,
    #[error("the message does not begin with an MSH segment")]
    NoHeader,
    #[error("MSH-1 and MSH-2 do not declare usable separators")]
    BadDelimiters,
    #[error("segment {0} has no valid three-character name")]
    BadSegmentName(usize),
}

/// One value of a field: its components, each its subcomponents, kept
/// raw (escapes still in) until read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repetition(Vec<Vec<String>>);

/// A field as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// Nothing sent: leave the value as it is.
    Absent,
    /// `""`: the sender says the value is now empty (delete it).
    Null,
    /// One or more repetitions.
    Values(Vec<Repetition>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub name: String,
    /// Fields from 1 (for MSH, field 1 is the field separator itself and
    /// field 2 the encoding characters, as the standard numbers them).
    fields: Vec<Field>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub delimiters: Delimiters,
    pub segments: Vec<Segment>,
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

fn split_segments(text: &str) -> impl Iterator<Item = &str> {
    text.split(['\r', '\n']).filter(|s| !s.trim().is_empty())
}

impl Message {
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let text = std::str::from_utf8(bytes).map_err(|_| ParseError::NotText)?;
        let text = text.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
        let mut lines = split_segments(text);
        let header = lines.next().ok_or(ParseError::NoHeader)?;
        if !header.starts_with("MSH") {
            return Err(ParseError::NoHeader);
        }
        let delimiters = read_delimiters(header)?;
        let mut segments = vec![parse_msh(header, &delimiters)];
        for (index, line) in lines.enumerate() {
            segments.push(parse_segment(line, &delimiters, index + 2)?);
        }
        Ok(Self {
            delimiters,
            segments,
        })
    }

    /// The first segment named `name`.
    pub fn segment(&self, name: &str) -> Option<&Segment> {
        self.segments.iter().find(|s| s.name == name)
    }

    /// The decoded text of `segment`-`field`, first repetition, component
    /// `component` (from 1), first subcomponent; `None` when absent or
    /// null.
    pub fn text(&self, segment: &str, field: usize, component: usize) -> Option<String> {
        self.segment(segment)?
            .field(field)
            .first()?
            .text(component, 1, &self.delimiters)
    }
}

fn read_delimiters(header: &str) -> Result<Delimiters, ParseError> {
    let mut chars = header.chars().skip(3);
    let field = chars.next().ok_or(ParseError::BadDelimiters)?;
    let encoding: Vec<char> = chars.take_while(|c| *c != field).collect();
    let (Some(&component), Some(&repetition)) = (encoding.first(), encoding.get(1)) else {
        return Err(ParseError::BadDelimiters);
    };
    let escape = encoding.get(2).copied();
    let subcomponent = encoding.get(3).copied().unwrap_or('&');
    let all = [
        Some(field),
        Some(component),
        Some(repetition),
        escape,
        Some(subcomponent),
    ];
    let distinct = all
        .iter()
        .flatten()
        .collect::<std::collections::BTreeSet<_>>()
        .len()
        == all.iter().flatten().count();
    if !distinct
        || all
            .iter()
            .flatten()
            .any(|c| c.is_alphanumeric() || c.is_whitespace())
    {
        return Err(ParseError::BadDelimiters);
    }
    Ok(Delimiters {
        field,
        component,
        repetition,
        escape,
        subcomponent,
    })
}

fn parse_field(raw: &str, d: &Delimiters) -> Field {
    match raw {
        "" => Field::Absent,
        "\"\"" => Field::Null,
        _ => Field::Values(
            raw.split(d.repetition)
                .map(|rep| {
                    Repetition(
                        rep.split(d.component)
                            .map(|c| c.split(d.subcomponent).map(str::to_owned).collect())
                            .collect(),
                    )
                })
                .collect(),
        ),
    }
}

fn parse_msh(line: &str, d: &Delimiters) -> Segment {
    // MSH-1 is the separator, MSH-2 the encoding characters (never split).
    let rest: String = line.chars().skip(4).collect();
    let mut parts = rest.split(d.field);
    let encoding = parts.next().unwrap_or_default().to_owned();
    let mut fields = vec![
        Field::Values(vec![Repetition(vec![vec![d.field.to_string()]])]),
        Field::Values(vec![Repetition(vec![vec![encoding]])]),
    ];
    fields.extend(parts.map(|raw| parse_field(raw, d)));
    Segment {
        name: "MSH".to_owned(),
        fields,
    }
}

fn parse_segment(line: &str, d: &Delimiters, number: usize) -> Result<Segment, ParseError> {
    let mut parts = line.split(d.field);
    let name = parts.next().unwrap_or_default();
    let valid = name.len() == 3
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        && name.chars().next().is_some_and(|c| c.is_ascii_uppercase());
    if !valid {
        return Err(ParseError::BadSegmentName(number));
    }
    Ok(Segment {
        name: name.to_owned(),
        fields: parts.map(|raw| parse_field(raw, d)).collect(),
    })
}

impl Segment {
    /// Field `n` (from 1) as its repetitions; empty when absent or null.
    pub fn field(&self, n: usize) -> &[Repetition] {
        match n.checked_sub(1).and_then(|i| self.fields.get(i)) {
            Some(Field::Values(reps)) => reps,
            _ => &[],
        }
    }

    /// Field `n` as sent.
    pub fn raw_field(&self, n: usize) -> &Field {
        n.checked_sub(1)
            .and_then(|i| self.fields.get(i))
            .unwrap_or(&Field::Absent)
    }
}

impl Repetition {
    /// Component `component`, subcomponent `sub` (both from 1), decoded;
    /// `None` when empty.
    pub fn text(&self, component: usize, sub: usize, d: &Delimiters) -> Option<String> {
        let raw = self
            .0
            .get(component.checked_sub(1)?)?
            .get(sub.checked_sub(1)?)?;
        let text = unescape(raw, d);
        (!text.is_empty()).then_some(text)
    }
}

/// Undoes HL7 escape sequences: `\F\ \S\ \T\ \R\ \E\` (the separators),
/// `\Xhh..\` (bytes, as UTF-8 where they form it), `\.br\` (a line break);
/// formatting sequences are dropped and anything else is kept as sent.
pub fn unescape(raw: &str, d: &Delimiters) -> String {
    let Some(escape) = d.escape else {
        return raw.to_owned();
    };
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(start) = rest.find(escape) {
        out.push_str(&rest[..start]);
        let after = &rest[start + escape.len_utf8()..];
        let Some(end) = after.find(escape) else {
            out.push_str(&rest[start..]);
            return out;
        };
        let code = &after[..end];
        match code {
            "F" => out.push(d.field),
            "S" => out.push(d.component),
            "T" => out.push(d.subcomponent),
            "R" => out.push(d.repetition),
            "E" => out.push(escape),
            ".br" => out.push('\n'),
            c if c.starts_with('X') && c.len() > 1 && c.len() % 2 == 1 => {
                let bytes: Option<Vec<u8>> = (1..c.len())
                    .step_by(2)
                    .map(|i| c.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
                    .collect();
                match bytes {
                    Some(bytes) => out.push_str(&String::from_utf8_lossy(&bytes)),
                    None => {
                        out.push(escape);
                        out.push_str(code);
                        out.push(escape);
                    }
                }
            }
            c if c.starts_with('H') || c.starts_with('N') || c.starts_with('.') => {}
            _ => {
                out.push(escape);
                out.push_str(code);
                out.push(escape);
            }
        }
        rest = &after[end + escape.len_utf8()..];
    }
    out.push_str(rest);
    out
}

/// Escapes text for a field of a message with these separators.
pub fn escape(text: &str, d: &Delimiters) -> String {
    let Some(escape) = d.escape else {
        return text.to_owned();
    };
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let code = if c == escape {
            Some("E")
        } else if c == d.field {
            Some("F")
        } else if c == d.component {
            Some("S")
        } else if c == d.subcomponent {
            Some("T")
        } else if c == d.repetition {
            Some("R")
        } else if c == '\r' || c == '\n' {
            Some(".br")
        } else {
            None
        };
        match code {
            Some(code) => {
                out.push(escape);
                out.push_str(code);
                out.push(escape);
            }
            None => out.push(c),
        }
    }
    out
}
