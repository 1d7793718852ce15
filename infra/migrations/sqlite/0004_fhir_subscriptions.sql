-- FHIR R4 Subscriptions (see the PostgreSQL migration).
CREATE TABLE IF NOT EXISTS fhir_subscriptions
(
  id         text    PRIMARY KEY,
  principal  text    NOT NULL,
  criteria   text    NOT NULL,
  endpoint   text    NOT NULL,
  status     text    NOT NULL,
  error      text,
  position   integer NOT NULL,
  created_at text    NOT NULL
) STRICT;
