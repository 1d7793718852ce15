-- FHIR R4 Subscriptions (rest-hook): who asked (the principal, as JSON, so
-- each notification is checked against what they may see), what for, where
-- to, and how far delivery has got in the event feed, so that delivery
-- resumes after a restart from the last event delivered.
CREATE TABLE IF NOT EXISTS fhir_subscriptions
(
  id         text   PRIMARY KEY,
  principal  text   NOT NULL,
  criteria   text   NOT NULL,
  endpoint   text   NOT NULL,
  status     text   NOT NULL,
  error      text,
  position   bigint NOT NULL,
  created_at text   NOT NULL
);
