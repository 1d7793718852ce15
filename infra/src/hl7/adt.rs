//! What an ADT message asks of Baton, read from its fields (pure: no
//! store, no reference data). The PAS's codes (point of care, bed) are
//! kept as sent; `mapping` turns them into Baton's wards and beds.
//!
//! Fields: NHS number from the PID-3 repetition whose assigning authority
//! (component 4) is `NHS`; names PID-5; date of birth PID-7; location PV1-3
//! (point of care^room^bed); prior location PV1-6; visit number PV1-19;
//! admission time PV1-44, else EVN-6, else EVN-2; discharge time PV1-45,
//! else EVN-6, else EVN-2; disposition PV1-36; the PAS user EVN-5.

use chrono::{NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Europe::London;
use domain::spell::Patient;
use domain::values::{Destination, Instant, NhsNumber, PersonName, VisitNumber};

use super::ack::AckError;
use super::message::Message;

/// A location as the PAS names it (PV1-3 or PV1-6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasLocation {
    /// PL.1, the point of care (a ward, as the PAS codes it).
    pub point_of_care: String,
    /// PL.3, the bed.
    pub bed: String,
}

/// Who sent a message and which one it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// MSH-3.
    pub application: String,
    /// MSH-4: control ids are unique per sending facility.
    pub facility: String,
    /// MSH-10.
    pub control_id: String,
    /// MSH-9.2, e.g. `A01`.
    pub trigger: String,
    /// EVN-5.1, the PAS user who entered the event, when sent.
    pub operator: Option<String>,
}

/// What a message asks.
#[derive(Debug, Clone, PartialEq)]
pub enum Adt {
    /// A01.
    Admit {
        visit: VisitNumber,
        patient: Patient,
        location: PasLocation,
        at: Instant,
    },
    /// A02.
    Transfer {
        visit: VisitNumber,
        to: PasLocation,
        /// PV1-6, when sent.
        prior: Option<PasLocation>,
        at: Instant,
    },
    /// A03.
    Discharge {
        visit: VisitNumber,
        at: Instant,
        destination: Destination,
    },
    /// A08: the patient's details as the PAS now holds them.
    Update {
        visit: VisitNumber,
        patient: Patient,
    },
    /// A11.
    CancelAdmit { visit: VisitNumber },
    /// A12.
    CancelTransfer { visit: VisitNumber },
    /// A13.
    CancelDischarge { visit: VisitNumber },
    /// A17: two patients swap beds; each PV1-3 is the patient's new bed.
    Swap {
        first: (VisitNumber, PasLocation),
        second: (VisitNumber, PasLocation),
        at: Instant,
    },
    /// A04, A05 and every other event: acknowledged, ignored, counted.
    Ignored,
}

fn missing(what: &str) -> AckError {
    AckError {
        code: "101",
        text: format!("required field missing: {what}"),
    }
}

fn invalid(what: &str) -> AckError {
    AckError {
        code: "102",
        text: format!("data type error: {what}"),
    }
}

/// The header of a parsed message: MSH-9 must name a message type and
/// MSH-10 a control id, or nothing can be acknowledged meaningfully.
pub fn header(m: &Message) -> Result<Header, AckError> {
    // `""` is HL7's null, not an id: no answer could echo it in MSA-2.
    let control_id = m
        .text("MSH", 10, 1)
        .filter(|id| id != "\"\"")
        .ok_or_else(|| missing("MSH-10 message control id"))?;
    let kind = m
        .text("MSH", 9, 1)
        .ok_or_else(|| missing("MSH-9 message type"))?;
    // A trigger may stand in MSH-9.2 or, in older senders, EVN-1.
    let trigger = m
        .text("MSH", 9, 2)
        .or_else(|| m.text("EVN", 1, 1))
        .ok_or_else(|| missing("MSH-9.2 trigger event"))?;
    if kind != "ADT" {
        return Err(AckError {
            code: "200",
            text: format!("unsupported message type {kind}: Baton reads ADT"),
        });
    }
    Ok(Header {
        application: m.text("MSH", 3, 1).unwrap_or_default(),
        facility: m.text("MSH", 4, 1).unwrap_or_default(),
        control_id,
        trigger,
        operator: m.text("EVN", 5, 1),
    })
}

/// What the message asks, or why it cannot be read as asking anything.
pub fn interpret(m: &Message, trigger: &str, now: Instant) -> Result<Adt, AckError> {
    match trigger {
        "A01" => Ok(Adt::Admit {
            visit: visit(m, 0)?,
            patient: patient(m)?,
            location: location(m, 0, 3)?.ok_or_else(|| missing("PV1-3 assigned location"))?,
            at: event_time(m, 44, now)?,
        }),
        "A02" => Ok(Adt::Transfer {
            visit: visit(m, 0)?,
            to: location(m, 0, 3)?.ok_or_else(|| missing("PV1-3 assigned location"))?,
            prior: location(m, 0, 6)?,
            at: event_time(m, 0, now)?,
        }),
        "A03" => Ok(Adt::Discharge {
            visit: visit(m, 0)?,
            at: event_time(m, 45, now)?,
            destination: destination(pv1(m, 0).and_then(|s| text(m, s, 36, 1)).as_deref()),
        }),
        "A08" => Ok(Adt::Update {
            visit: visit(m, 0)?,
            patient: patient(m)?,
        }),
        "A11" => Ok(Adt::CancelAdmit {
            visit: visit(m, 0)?,
        }),
        "A12" => Ok(Adt::CancelTransfer {
            visit: visit(m, 0)?,
        }),
        "A13" => Ok(Adt::CancelDischarge {
            visit: visit(m, 0)?,
        }),
        "A17" => {
            let first = (
                visit(m, 0)?,
                location(m, 0, 3)?.ok_or_else(|| missing("first PV1-3 assigned location"))?,
            );
            let second = (
                visit(m, 1)?,
                location(m, 1, 3)?.ok_or_else(|| missing("second PV1-3 assigned location"))?,
            );
            Ok(Adt::Swap {
                first,
                second,
                at: event_time(m, 0, now)?,
            })
        }
        _ => Ok(Adt::Ignored),
    }
}

fn pv1(m: &Message, nth: usize) -> Option<&super::message::Segment> {
    m.segments.iter().filter(|s| s.name == "PV1").nth(nth)
}

fn text(
    m: &Message,
    segment: &super::message::Segment,
    field: usize,
    component: usize,
) -> Option<String> {
    segment
        .field(field)
        .first()?
        .text(component, 1, &m.delimiters)
}

fn visit(m: &Message, nth: usize) -> Result<VisitNumber, AckError> {
    let segment = pv1(m, nth).ok_or_else(|| missing("PV1 segment"))?;
    let raw = text(m, segment, 19, 1).ok_or_else(|| missing("PV1-19 visit number"))?;
    VisitNumber::parse(raw.trim()).map_err(|_| invalid("PV1-19 visit number"))
}

fn location(m: &Message, nth: usize, field: usize) -> Result<Option<PasLocation>, AckError> {
    let segment = pv1(m, nth).ok_or_else(|| missing("PV1 segment"))?;
    let Some(point_of_care) = text(m, segment, field, 1) else {
        return Ok(None);
    };
    let bed = text(m, segment, field, 3).ok_or_else(|| missing(&format!("PV1-{field}.3 bed")))?;
    Ok(Some(PasLocation {
        point_of_care: point_of_care.trim().to_owned(),
        bed: bed.trim().to_owned(),
    }))
}

/// The NHS number(s) a message names (every PID segment), as digits: what
/// the access log records when an admin reads held messages.
pub fn nhs_numbers(m: &Message) -> Vec<String> {
    let d = &m.delimiters;
    m.segments
        .iter()
        .filter(|s| s.name == "PID")
        .filter_map(|pid| {
            pid.field(3)
                .iter()
                .find(|r| {
                    r.text(4, 1, d)
                        .is_some_and(|a| a.trim().eq_ignore_ascii_case("NHS"))
                })
                .and_then(|r| r.text(1, 1, d))
        })
        .filter_map(|n| NhsNumber::parse(n.trim()).ok())
        .map(|n| n.digits())
        .collect()
}

fn patient(m: &Message) -> Result<Patient, AckError> {
    let pid = m.segment("PID").ok_or_else(|| missing("PID segment"))?;
    let d = &m.delimiters;
    let nhs = pid
        .field(3)
        .iter()
        .find(|r| {
            r.text(4, 1, d)
                .is_some_and(|a| a.trim().eq_ignore_ascii_case("NHS"))
        })
        .and_then(|r| r.text(1, 1, d))
        .ok_or_else(|| missing("PID-3 identifier with assigning authority NHS"))?;
    let nhs_number = NhsNumber::parse(nhs.trim()).map_err(|_| invalid("PID-3 NHS number"))?;
    let name = pid.field(5).first();
    let family = name
        .and_then(|n| n.text(1, 1, d))
        .ok_or_else(|| missing("PID-5.1 family name"))?;
    let given = name
        .and_then(|n| n.text(2, 1, d))
        .ok_or_else(|| missing("PID-5.2 given name"))?;
    let dob = text(m, pid, 7, 1).ok_or_else(|| missing("PID-7 date of birth"))?;
    let date_of_birth = dob
        .get(..8)
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y%m%d").ok())
        .ok_or_else(|| invalid("PID-7 date of birth"))?;
    Ok(Patient {
        nhs_number,
        family_name: PersonName::parse(family).map_err(|_| invalid("PID-5.1 family name"))?,
        given_name: PersonName::parse(given).map_err(|_| invalid("PID-5.2 given name"))?,
        date_of_birth,
    })
}

/// PV1-`field` when given (0: none), else EVN-6 (when the event
/// happened), else EVN-2 (when it was recorded), else now.
fn event_time(m: &Message, field: usize, now: Instant) -> Result<Instant, AckError> {
    let from_pv1 = (field > 0)
        .then(|| pv1(m, 0).and_then(|s| text(m, s, field, 1)))
        .flatten()
        .map(|t| (t, format!("PV1-{field}")));
    let chosen = from_pv1
        .or_else(|| m.text("EVN", 6, 1).map(|t| (t, "EVN-6".to_owned())))
        .or_else(|| m.text("EVN", 2, 1).map(|t| (t, "EVN-2".to_owned())));
    match chosen {
        Some((raw, name)) => timestamp(&raw).ok_or_else(|| invalid(&name)),
        None => Ok(now),
    }
}

/// An HL7 TS (`YYYYMMDDHHMM[SS[.S...]][+/-ZZZZ]`): with an offset, as
/// sent; without one, English local time (what a PAS in England means).
pub fn timestamp(raw: &str) -> Option<Instant> {
    let raw = raw.trim();
    let (clock, offset) = match raw.find(['+', '-']) {
        Some(i) => (&raw[..i], Some(&raw[i..])),
        None => (raw, None),
    };
    let clock = clock.split('.').next()?;
    if !clock.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let padded = match clock.len() {
        8 => format!("{clock}000000"),
        10 => format!("{clock}0000"),
        12 => format!("{clock}00"),
        14 => clock.to_owned(),
        _ => return None,
    };
    let naive = NaiveDateTime::parse_from_str(&padded, "%Y%m%d%H%M%S").ok()?;
    match offset {
        Some(offset) => {
            let sign = if offset.starts_with('-') { -1 } else { 1 };
            let digits = offset.get(1..)?;
            if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let hours: i32 = digits.get(..2)?.parse().ok()?;
            let minutes: i32 = digits.get(2..)?.parse().ok()?;
            let zone = chrono::FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))?;
            Some(
                zone.from_local_datetime(&naive)
                    .single()?
                    .with_timezone(&Utc),
            )
        }
        // In the autumn's repeated hour, the earlier of the two.
        None => Some(
            London
                .from_local_datetime(&naive)
                .earliest()?
                .with_timezone(&Utc),
        ),
    }
}

/// PV1-36 (discharge disposition) as Baton's destination. English PAS
/// feeds send the NHS Data Dictionary's discharge destination codes;
/// Baton's own names are read too. Anything else, or nothing, is `Other`.
pub fn destination(code: Option<&str>) -> Destination {
    match code.map(str::trim).unwrap_or_default() {
        "19" | "usual_residence" => Destination::UsualResidence,
        "usual_residence_with_support" => Destination::UsualResidenceWithSupport,
        "community_rehab_bed" => Destination::CommunityRehabBed,
        "54" | "65" | "85" | "care_home_new" => Destination::CareHomeNew,
        "care_home_usual" => Destination::CareHomeUsual,
        "88" | "hospice" => Destination::Hospice,
        "49" | "50" | "51" | "52" | "53" | "84" | "87" | "other_acute_trust" => {
            Destination::OtherAcuteTrust
        }
        "79" | "died" => Destination::Died,
        _ => Destination::Other,
    }
}
