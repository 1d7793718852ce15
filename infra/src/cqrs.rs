//! One generic bridge from the domain's pure deciders to cqrs-es.
//!
//! cqrs-es wants `handle` to write events into a sink and `apply` to take
//! events by value; the domain's `decide` returns events and `evolve`
//! borrows them. [`EsAggregate`] and [`EsEvent`] are transparent newtypes
//! (the orphan rule forbids implementing cqrs-es's traits on domain types
//! directly), so stored JSON is exactly the domain's `Recorded<E>`.

use std::sync::Arc;

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use domain::{Decider, DomainEvent, Issued, Recorded};
use serde::{Deserialize, Serialize};

/// A domain decider as a cqrs-es aggregate.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EsAggregate<D>(pub D);

/// A domain event, stamped with who and when, as a cqrs-es event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
#[serde(bound(deserialize = "E: DomainEvent"))]
pub struct EsEvent<E>(pub Recorded<E>);

impl<E: DomainEvent> cqrs_es::DomainEvent for EsEvent<E> {
    fn event_type(&self) -> String {
        self.0.event.event_type().to_owned()
    }

    fn event_version(&self) -> String {
        self.0.event.event_version().to_owned()
    }
}

impl<D> Aggregate for EsAggregate<D>
where
    D: Decider,
{
    const TYPE: &'static str = D::TYPE;
    type Command = Issued<D::Command>;
    type Event = EsEvent<D::Event>;
    type Error = D::Error;
    type Services = Arc<D::Services>;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let events = domain::handle(&self.0, command, services.as_ref())?;
        for event in events {
            sink.write(EsEvent(event), self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.0.evolve(&event.0.event);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use cqrs_es::mem_store::MemStore;
    use cqrs_es::{AggregateError, CqrsFramework, EventStore};
    use domain::reference::{Catalogue, Hospital, ReferenceData, Ward};
    use domain::spell::{Patient, Spell, SpellCommand, SpellError, SpellStatus};
    use domain::values::{BedLabel, HospitalCode, NhsNumber, PersonName, SpellId, Text, WardCode};
    use domain::Actor;

    pub(crate) fn catalogue() -> Arc<dyn ReferenceData> {
        let mut c = Catalogue::with_sitrep_reasons().unwrap();
        c.put_hospital(Hospital {
            code: HospitalCode::parse("POOLE").unwrap(),
            name: Text::parse("Poole").unwrap(),
            trust: None,
        });
        c.put_ward(Ward {
            code: WardCode::parse("W1").unwrap(),
            name: Text::parse("Ward 1").unwrap(),
            hospital: HospitalCode::parse("POOLE").unwrap(),
            beds: 4,
        })
        .unwrap();
        Arc::new(c)
    }

    pub(crate) fn issued(command: SpellCommand) -> Issued<SpellCommand> {
        Issued::new(
            Actor::new("u1", "Nurse One"),
            "2026-03-02T10:00:00Z".parse().unwrap(),
            command,
        )
    }

    #[tokio::test]
    async fn a_spell_runs_through_cqrs_es_and_its_events_record_the_actor() {
        let store = MemStore::<EsAggregate<Spell>>::default();
        let cqrs = CqrsFramework::new(store.clone(), vec![], catalogue());
        let admit = SpellCommand::AdmitPatient {
            spell_id: SpellId::parse("s1").unwrap(),
            patient: Patient {
                nhs_number: NhsNumber::parse("9912003888").unwrap(),
                family_name: PersonName::parse("Smith").unwrap(),
                given_name: PersonName::parse("Ada").unwrap(),
                date_of_birth: "1940-05-01".parse().unwrap(),
            },
            ward: WardCode::parse("W1").unwrap(),
            bed: BedLabel::parse("2").unwrap(),
            admitted_at: "2026-03-01T09:00:00Z".parse().unwrap(),
            visit_number: None,
        };
        cqrs.execute("s1", issued(admit)).await.unwrap();
        let refused = cqrs
            .execute(
                "s1",
                issued(SpellCommand::CancelDischarge {
                    reason: Text::parse("wrong patient").unwrap(),
                }),
            )
            .await;
        assert!(matches!(
            refused,
            Err(AggregateError::UserError(SpellError::NotDischarged))
        ));

        let events = store.load_events("s1").await.unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].payload.0.by, Actor::new("u1", "Nurse One"));
        assert_eq!(
            cqrs_es::DomainEvent::event_type(&events[0].payload),
            "PatientAdmitted"
        );
        let context = store.load_aggregate("s1").await.unwrap();
        let spell = &context.aggregate.0;
        assert_eq!(spell.stay().unwrap().status, SpellStatus::Open);
    }

    #[test]
    fn stored_json_is_the_domain_envelope_unchanged() {
        let event = EsEvent(Recorded {
            by: Actor::new("u1", "Nurse One"),
            recorded_at: "2026-03-02T10:00:00Z".parse().unwrap(),
            event: domain::spell::SpellEvent::DischargePathwaySet {
                pathway: domain::values::Pathway::P1,
                previous: None,
            },
        });
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["event"]["DischargePathwaySet"]["pathway"], "P1");
        assert_eq!(json["by"]["name"], "Nurse One");
        let back: EsEvent<domain::spell::SpellEvent> = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }
}
