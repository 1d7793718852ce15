//! The acknowledgement of a message (original mode): `AA` once its events
//! are committed, `AE` with an ERR segment for one understood but not
//! applied, `AR` for one that cannot be read. MSA-2 echoes the message's
//! control id (MSH-10), so a sender matches the answer to what it sent.

use super::message::{escape, Message};

/// MSA-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckCode {
    /// Application accept: committed.
    Accept,
    /// Application error: understood, not applied (held).
    Error,
    /// Application reject: not readable.
    Reject,
}

impl AckCode {
    pub fn as_str(self) -> &'static str {
        match self {
            AckCode::Accept => "AA",
            AckCode::Error => "AE",
            AckCode::Reject => "AR",
        }
    }
}

/// What went wrong, for the ERR segment: an HL7 table 0357 code (`207`
/// application internal error, `101` required field missing, `103` table
/// value not found, `100` segment sequence error...) and words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckError {
    pub code: &'static str,
    pub text: String,
}

/// The acknowledgement of `message` (or of bytes that were not one, when
/// `message` is `None`), sent from `facility`, stamped `now`
/// (`YYYYMMDDHHMMSS`), with its own control id `control_id`.
pub fn ack(
    message: Option<&Message>,
    code: AckCode,
    error: Option<&AckError>,
    facility: &str,
    now: &str,
    control_id: &str,
) -> String {
    let d = message.map(|m| m.delimiters).unwrap_or_default();
    let get = |field: usize, component: usize| {
        message
            .and_then(|m| m.text("MSH", field, component))
            .map(|t| escape(&t, &d))
            .unwrap_or_default()
    };
    let f = d.field;
    // MSH-2 is positional: the subcomponent separator can only follow an
    // escape character. A message that declared none (`^~`) read `&` for
    // subcomponents by default, and its answer says the same two.
    let encoding: String = match d.escape {
        Some(escape) => [d.component, d.repetition, escape, d.subcomponent]
            .iter()
            .collect(),
        None => [d.component, d.repetition].iter().collect(),
    };
    let trigger = get(9, 2);
    let version = match get(12, 1) {
        v if v.is_empty() => "2.5".to_owned(),
        v => v,
    };
    let mut out = format!(
        "MSH{f}{encoding}{f}BATON{f}{}{f}{}{f}{}{f}{now}{f}{f}ACK{c}{trigger}{c}ACK{f}{}{f}P{f}{version}\r",
        escape(facility, &d),
        get(3, 1),
        get(4, 1),
        escape(control_id, &d),
        c = d.component,
    );
    out.push_str(&format!("MSA{f}{}{f}{}\r", code.as_str(), get(10, 1)));
    if let Some(error) = error {
        let text = escape(&error.text, &d);
        out.push_str(&format!(
            "ERR{f}{f}{f}{}{c}{text}{c}HL70357{f}E{f}{f}{f}{f}{text}\r",
            error.code,
            c = d.component,
        ));
    }
    out
}
