//! Applying the PAS's ADT messages: each message becomes (at most) one
//! commit of the command bus, under an idempotency key written in the same
//! transaction as its events (principal `hl7:<MSH-4>`, key MSH-10), so a
//! retransmission is acknowledged again and changes nothing, also after a
//! crash between the commit and the `AA`.
//!
//! Answers: `AA` once committed (or for an event Baton ignores); `AE` with
//! ERR for a message understood but not applied (unknown ward or visit,
//! occupied bed, a domain rule), which is held; `AR` for one that cannot be
//! read, also held. When the store cannot be reached the message is not
//! answered at all, so the sender sends it again later.

use std::sync::Arc;

use domain::spell::{SpellCommand, SpellError};
use domain::values::{BedLabel, CodeError, SpellId, Text, VisitNumber, WardCode};
use domain::{Actor, Issued};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use super::ack::{ack, AckCode, AckError};
use super::adt::{self, Adt, Header, PasLocation};
use super::held::{self, ToHold};
use super::mapping;
use super::message::Message;
use crate::commands::{CommandBus, CommandError, CommandOptions, Swap};
use crate::idempotency::Idempotency;
use crate::reference::ReferenceStore;
use crate::store::Database;

/// The feed's figures on /metrics.
#[derive(Debug, Clone, Default)]
pub struct FeedMetrics {
    /// Messages by trigger and outcome (`applied`, `ignored`, `held`,
    /// `unanswered`).
    pub messages: Family<Vec<(String, String)>, Counter>,
}

impl FeedMetrics {
    /// Registers the figures.
    pub fn register(&self, registry: &mut prometheus_client::registry::Registry) {
        registry.register(
            "baton_hl7_messages",
            "HL7 v2 messages received over MLLP, by trigger event and outcome",
            self.messages.clone(),
        );
    }

    fn count(&self, trigger: &str, outcome: &str) {
        self.messages
            .get_or_create(&vec![
                ("trigger".to_owned(), trigger.to_owned()),
                ("outcome".to_owned(), outcome.to_owned()),
            ])
            .inc();
    }
}

/// What to send back for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// An acknowledgement (`AA`, `AE` or `AR`).
    Ack { code: AckCode, text: String },
    /// Nothing: the message could not be recorded (the store is down), so
    /// the sender must send it again.
    Unanswered,
}

/// Why a message was not applied.
#[derive(Debug)]
pub(super) enum NotApplied {
    /// Understood, cannot apply: `AE`, held.
    Error(AckError),
    /// The store could not be reached: no answer.
    Unavailable,
}

impl From<AckError> for NotApplied {
    fn from(e: AckError) -> Self {
        NotApplied::Error(e)
    }
}

/// How long the feed trusts what it read of the location mapping and of
/// the held queue: each message would otherwise read both (two of the
/// nine round trips to the database a message makes). An admin's mapping
/// changed in another Baton process takes effect here within this time.
pub const FRESH_FOR: std::time::Duration = std::time::Duration::from_secs(2);

/// A value read from the database, trusted for [`FRESH_FOR`]. (`moka`
/// caches by key; this is one value, and a lock held for no await.)
#[derive(Debug)]
struct Fresh<T> {
    slot: std::sync::Mutex<Option<(std::time::Instant, T)>>,
}

impl<T> Default for Fresh<T> {
    fn default() -> Self {
        Self {
            slot: std::sync::Mutex::new(None),
        }
    }
}

impl<T: Clone> Fresh<T> {
    fn get(&self) -> Option<T> {
        let slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        slot.as_ref()
            .filter(|(at, _)| at.elapsed() < FRESH_FOR)
            .map(|(_, value)| value.clone())
    }

    fn set(&self, value: T) {
        *self.slot.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((std::time::Instant::now(), value));
    }

    fn forget(&self) {
        *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// The ADT feed: turns messages into commands.
#[derive(Debug, Clone)]
pub struct AdtFeed {
    pub(super) bus: Arc<CommandBus>,
    pub(super) reference: Arc<ReferenceStore>,
    pub(super) db: Database,
    /// The location mapping, read again at most every [`FRESH_FOR`], and
    /// at once after this process changes it.
    mappings: Arc<Fresh<Arc<Vec<mapping::LocationMapping>>>>,
    /// Whether any message is held, likewise.
    any_held: Arc<Fresh<bool>>,
    metrics: FeedMetrics,
}

fn now_ts() -> String {
    chrono::Utc::now().format("%Y%m%d%H%M%S").to_string()
}

fn rule_error(code: &'static str, rule: &'static str, text: impl std::fmt::Display) -> AckError {
    AckError {
        code,
        text: format!("{rule}: {text}"),
    }
}

impl AdtFeed {
    pub fn new(
        bus: Arc<CommandBus>,
        reference: Arc<ReferenceStore>,
        db: Database,
        metrics: FeedMetrics,
    ) -> Self {
        Self {
            bus,
            reference,
            db,
            metrics,
            mappings: Arc::new(Fresh::default()),
            any_held: Arc::new(Fresh::default()),
        }
    }

    /// Receives one message (the bytes of an MLLP frame) and answers it.
    pub async fn receive(&self, bytes: &[u8]) -> Answer {
        let control = format!("B{}", uuid::Uuid::new_v4().simple());
        let message = match Message::parse(bytes) {
            Ok(message) => message,
            Err(error) => {
                let reason = AckError {
                    code: "102",
                    text: error.to_string(),
                };
                return self
                    .refuse(None, None, AckCode::Reject, &reason, bytes, &control)
                    .await;
            }
        };
        let header = match adt::header(&message) {
            Ok(header) => header,
            Err(reason) => {
                return self
                    .refuse(
                        Some(&message),
                        None,
                        AckCode::Reject,
                        &reason,
                        bytes,
                        &control,
                    )
                    .await;
            }
        };
        match self.apply(&message, &header).await {
            Ok(applied) => {
                self.metrics.count(&header.trigger, applied);
                if applied == "applied" && self.may_be_held().await {
                    // A retransmission applied after its cause was fixed: its
                    // held copy is done with.
                    if let Err(error) =
                        held::release_applied(&self.db, &header.facility, &header.control_id).await
                    {
                        tracing::warn!(%error, "could not clear a held copy of an applied message");
                    }
                }
                Answer::Ack {
                    code: AckCode::Accept,
                    text: ack(
                        Some(&message),
                        AckCode::Accept,
                        None,
                        "BATON",
                        &now_ts(),
                        &control,
                    ),
                }
            }
            Err(NotApplied::Error(reason)) => {
                self.refuse(
                    Some(&message),
                    Some(&header),
                    AckCode::Error,
                    &reason,
                    bytes,
                    &control,
                )
                .await
            }
            Err(NotApplied::Unavailable) => {
                self.metrics.count(&header.trigger, "unanswered");
                Answer::Unanswered
            }
        }
    }

    /// Holds a message not applied and answers `code`; unanswered if it
    /// cannot even be held (nothing is dropped silently).
    async fn refuse(
        &self,
        message: Option<&Message>,
        header: Option<&Header>,
        code: AckCode,
        reason: &AckError,
        bytes: &[u8],
        control: &str,
    ) -> Answer {
        let text = String::from_utf8_lossy(bytes);
        let field = |f: usize| {
            message
                .and_then(|m| m.text("MSH", f, 1))
                .unwrap_or_default()
        };
        let trigger = header
            .map(|h| h.trigger.clone())
            .or_else(|| message.and_then(|m| m.text("MSH", 9, 2)))
            .unwrap_or_default();
        let to_hold = ToHold {
            sending_application: &field(3),
            sending_facility: &field(4),
            control_id: &field(10),
            trigger: &trigger,
            ack_code: code.as_str(),
            error_code: reason.code,
            reason: &reason.text,
            message: &text,
        };
        match held::hold(&self.db, &to_hold).await {
            Ok(id) => {
                self.any_held.set(true);
                tracing::warn!(held = id, code = code.as_str(), reason = %reason.text, "an HL7 message was held");
                self.metrics.count(&trigger, "held");
                Answer::Ack {
                    code,
                    text: ack(message, code, Some(reason), "BATON", &now_ts(), control),
                }
            }
            Err(error) => {
                tracing::warn!(%error, "could not hold an HL7 message: leaving it unanswered");
                self.metrics.count(&trigger, "unanswered");
                Answer::Unanswered
            }
        }
    }

    /// Applies a held message again; removes it when it applies.
    pub async fn retry(&self, id: i64) -> Result<Option<Answer>, sqlx::Error> {
        let Some(row) = held::get(&self.db, id).await? else {
            return Ok(None);
        };
        let answer = self.receive(row.message.as_bytes()).await;
        if let Answer::Ack {
            code: AckCode::Accept,
            ..
        } = answer
        {
            held::release(&self.db, id).await?;
        }
        Ok(Some(answer))
    }

    /// Applies what the message asks: `applied` or `ignored`.
    /// Applies a message, or answers a retransmission from the record of
    /// the first. The message is tried first and the record read only when
    /// it is not applied: every commit carries the control id, so a
    /// retransmission can never commit (its key is taken: the bus answers
    /// from the record), and one refused because the spell or the mapping
    /// has moved on since is answered `AA` from the record here. A message
    /// seen for the first time, nearly every one, costs no lookup.
    async fn apply(&self, m: &Message, h: &Header) -> Result<&'static str, NotApplied> {
        let key = Idempotency {
            principal: format!("hl7:{}", h.facility),
            key: h.control_id.clone(),
            fingerprint: format!("ADT^{}", h.trigger),
            extra: serde_json::Value::Null,
        };
        match self.apply_once(m, h, key.clone()).await {
            Err(NotApplied::Error(reason)) => match self.answered_before(&key).await? {
                Some(answer) => answer,
                None => Err(NotApplied::Error(reason)),
            },
            other => other,
        }
    }

    /// The first message's outcome under `key`'s control id, if one was
    /// recorded: applied, or the id reused for another trigger.
    async fn answered_before(
        &self,
        key: &Idempotency,
    ) -> Result<Option<Result<&'static str, NotApplied>>, NotApplied> {
        let stored = crate::idempotency::lookup(&self.db, &key.principal, &key.key)
            .await
            .map_err(|error| {
                tracing::warn!(%error, "could not read the idempotency record");
                NotApplied::Unavailable
            })?;
        Ok(stored.map(|stored| {
            if stored.fingerprint == key.fingerprint {
                Ok("applied")
            } else {
                Err(refusal(CommandError::KeyReused))
            }
        }))
    }

    async fn apply_once(
        &self,
        m: &Message,
        h: &Header,
        key: Idempotency,
    ) -> Result<&'static str, NotApplied> {
        let now = chrono::Utc::now();
        let adt = adt::interpret(m, &h.trigger, now)?;
        let by = actor(h);
        let options = CommandOptions {
            expected_version: None,
            idempotency: Some(key),
            // Looked up by `apply` only when the message is not applied
            // (the commit refuses a taken key); and the feed acts on any
            // spell of the hospitals it serves.
            key_checked: true,
        };
        let spell = |visit: &VisitNumber| {
            spell_id(&h.facility, visit)
                .map_err(|_| NotApplied::Error(rule_error("207", "spell_id", "no spell id")))
        };
        let (id, command) = match adt {
            Adt::Ignored => return Ok("ignored"),
            Adt::Admit {
                visit,
                patient,
                location,
                at,
            } => {
                let (ward, bed) = self.place(&location).await?;
                let id = spell(&visit)?;
                let command = SpellCommand::AdmitPatient {
                    spell_id: id.clone(),
                    patient,
                    ward,
                    bed,
                    admitted_at: at,
                    visit_number: Some(visit),
                };
                (id, command)
            }
            Adt::Transfer {
                visit,
                to,
                prior,
                at,
            } => {
                let id = spell(&visit)?;
                let (ward, bed) = self.place(&to).await?;
                if let Some(prior) = prior {
                    self.check_prior(&id, &prior).await?;
                }
                (id, SpellCommand::TransferPatient { ward, bed, at })
            }
            Adt::Discharge {
                visit,
                at,
                destination,
            } => (
                spell(&visit)?,
                SpellCommand::DischargePatient { at, destination },
            ),
            Adt::Update { visit, patient } => (
                spell(&visit)?,
                SpellCommand::CorrectPatientDetails { patient },
            ),
            Adt::CancelAdmit { visit } => (
                spell(&visit)?,
                SpellCommand::CancelAdmission {
                    reason: reason(&h.trigger)?,
                },
            ),
            Adt::CancelTransfer { visit } => (
                spell(&visit)?,
                SpellCommand::CancelTransfer {
                    reason: reason(&h.trigger)?,
                },
            ),
            Adt::CancelDischarge { visit } => (
                spell(&visit)?,
                SpellCommand::CancelDischarge {
                    reason: reason(&h.trigger)?,
                },
            ),
            Adt::Swap { first, second, at } => {
                let (ward, bed) = self.place(&first.1).await?;
                let one = Swap {
                    spell: spell(&first.0)?,
                    ward,
                    bed,
                };
                let (ward, bed) = self.place(&second.1).await?;
                let two = Swap {
                    spell: spell(&second.0)?,
                    ward,
                    bed,
                };
                let done = self.bus.swap_beds(one, two, by, at, options).await;
                return done.map(|_| "applied").map_err(refusal);
            }
        };
        self.bus
            .spell_with(&id, Issued::new(by, now, command), options)
            .await
            .map(|_| "applied")
            .map_err(refusal)
    }

    /// Whether a held copy of a message may exist: read again at most
    /// every [`FRESH_FOR`] (a message held by another Baton process since
    /// is released by its retry, which answers `AA` from the record).
    async fn may_be_held(&self) -> bool {
        if let Some(known) = self.any_held.get() {
            return known;
        }
        match held::any(&self.db).await {
            Ok(any) => {
                self.any_held.set(any);
                any
            }
            Err(_) => true,
        }
    }

    /// Forgets the location mapping read, after an admin changed it here:
    /// the next message reads it again.
    pub fn mapping_changed(&self) {
        self.mappings.forget();
    }

    /// Baton's ward and bed for a PAS location: mapped, then checked
    /// against the reference data.
    pub(super) async fn place(
        &self,
        location: &PasLocation,
    ) -> Result<(WardCode, BedLabel), NotApplied> {
        let rows = match self.mappings.get() {
            Some(rows) => rows,
            None => {
                let rows = Arc::new(mapping::list(&self.db).await.map_err(|error| {
                    tracing::warn!(%error, "could not read the location mapping");
                    NotApplied::Unavailable
                })?);
                self.mappings.set(rows.clone());
                rows
            }
        };
        let (ward, bed) = mapping::resolve(&rows, &location.point_of_care, &location.bed);
        let unknown_ward = || {
            rule_error(
                "103",
                "unknown_ward",
                format!(
                    "point of care {} maps to no Baton ward (map it on the admin page)",
                    location.point_of_care
                ),
            )
        };
        let ward = WardCode::parse(ward).map_err(|_| unknown_ward())?;
        let catalogue = self.reference.snapshot();
        if domain::reference::ReferenceData::ward(catalogue.as_ref(), &ward).is_none() {
            return Err(unknown_ward().into());
        }
        let bed = BedLabel::parse(bed).map_err(|_| {
            rule_error(
                "103",
                "unknown_bed",
                format!("bed {} maps to no bed of ward {ward}", location.bed),
            )
        })?;
        Ok((ward, bed))
    }

    /// A transfer's prior location (PV1-6) must be where Baton has the
    /// patient: otherwise a message was missed or came out of order.
    async fn check_prior(&self, id: &SpellId, prior: &PasLocation) -> Result<(), NotApplied> {
        let (ward, bed) = self.place(prior).await?;
        let (spell, _) = self.bus.load_spell(id).await.map_err(refusal)?;
        let Some(stay) = spell.stay() else {
            return Err(unknown_visit().into());
        };
        if stay.placement.ward != ward || stay.placement.bed != bed {
            return Err(rule_error(
                "207",
                "prior_location_differs",
                format!(
                    "PV1-6 says the patient was in {ward} bed {bed}, Baton has them in {} bed {}",
                    stay.placement.ward, stay.placement.bed
                ),
            )
            .into());
        }
        Ok(())
    }
}

fn unknown_visit() -> AckError {
    rule_error(
        "204",
        "unknown_spell",
        "no spell has this visit number (PV1-19)",
    )
}

fn reason(trigger: &str) -> Result<Text, NotApplied> {
    Text::parse(format!("cancelled by the PAS ({trigger})"))
        .map_err(|_| NotApplied::Error(rule_error("207", "reason", "no reason")))
}

/// The spell a visit number of a sending facility names: an id derived
/// from both, so finding it needs no lookup table and survives any
/// restart.
pub fn spell_id(facility: &str, visit: &VisitNumber) -> Result<SpellId, CodeError> {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{facility}\u{1f}{visit}").as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    SpellId::parse(format!("pas-{hex}"))
}

/// The sending system (MSH-3 at MSH-4) as the actor, with the PAS user
/// (EVN-5) when sent.
fn actor(h: &Header) -> Actor {
    let system = match (h.application.as_str(), h.facility.as_str()) {
        ("", "") => "PAS".to_owned(),
        (app, "") => app.to_owned(),
        ("", facility) => format!("PAS at {facility}"),
        (app, facility) => format!("{app} at {facility}"),
    };
    let name = match &h.operator {
        Some(user) => format!("{system} (PAS user {user})"),
        None => system,
    };
    Actor::new(format!("hl7:{}@{}", h.application, h.facility), name)
}

pub(super) fn refusal(error: CommandError<SpellError>) -> NotApplied {
    match error {
        CommandError::Refused(SpellError::UnknownSpell) => NotApplied::Error(unknown_visit()),
        CommandError::Refused(e) => {
            let rule: &'static str = (&e).into();
            NotApplied::Error(rule_error("207", rule, e))
        }
        CommandError::Reservation(c) => {
            let rule: &'static str = (&c).into();
            NotApplied::Error(rule_error("207", rule, c))
        }
        CommandError::KeyReused => NotApplied::Error(rule_error(
            "207",
            "control_id_reused",
            "this control id (MSH-10) was used for another kind of message",
        )),
        CommandError::Unavailable(error) => {
            tracing::warn!(%error, "the event store is unavailable: the message is not answered");
            NotApplied::Unavailable
        }
        CommandError::Contended => NotApplied::Unavailable,
        other => {
            tracing::error!(error = %other, "an HL7 message failed");
            NotApplied::Error(rule_error("207", "internal", "Baton failed to apply it"))
        }
    }
}
