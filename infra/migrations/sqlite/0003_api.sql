-- Reference data, idempotency keys and the access log (see the PostgreSQL
-- migration for why each exists).
CREATE TABLE IF NOT EXISTS reference_data
(
  kind       text NOT NULL,
  code       text NOT NULL,
  body       text NOT NULL,
  updated_by text NOT NULL,
  updated_at text NOT NULL,
  PRIMARY KEY (kind, code)
) STRICT;

CREATE TABLE IF NOT EXISTS idempotency_keys
(
  principal      text    NOT NULL,
  key            text    NOT NULL,
  fingerprint    text    NOT NULL,
  aggregate_type text    NOT NULL,
  aggregate_id   text    NOT NULL,
  version        integer NOT NULL,
  extra          text    NOT NULL,
  created_at     text    NOT NULL,
  PRIMARY KEY (principal, key)
) STRICT;

CREATE TABLE IF NOT EXISTS access_log
(
  id         integer PRIMARY KEY AUTOINCREMENT,
  at         text NOT NULL,
  actor      text NOT NULL,
  actor_name text NOT NULL,
  role       text NOT NULL,
  action     text NOT NULL,
  resource   text NOT NULL,
  client     text,
  request_id text
);
CREATE TABLE IF NOT EXISTS access_log_patients
(
  access_id  integer NOT NULL REFERENCES access_log (id),
  nhs_number text    NOT NULL
);
CREATE INDEX IF NOT EXISTS access_log_by_patient ON access_log_patients (nhs_number, access_id);

CREATE TRIGGER IF NOT EXISTS access_log_no_update BEFORE UPDATE ON access_log
BEGIN
  SELECT RAISE(ABORT, 'the access log is append-only');
END;
CREATE TRIGGER IF NOT EXISTS access_log_no_delete BEFORE DELETE ON access_log
BEGIN
  SELECT RAISE(ABORT, 'the access log is append-only');
END;
CREATE TRIGGER IF NOT EXISTS access_log_patients_no_update BEFORE UPDATE ON access_log_patients
BEGIN
  SELECT RAISE(ABORT, 'the access log is append-only');
END;
CREATE TRIGGER IF NOT EXISTS access_log_patients_no_delete BEFORE DELETE ON access_log_patients
BEGIN
  SELECT RAISE(ABORT, 'the access log is append-only');
END;
