-- Reference data the admin API manages: hospitals, wards, teams. Small,
-- rarely changed, read by every command: each process keeps it in memory
-- and reloads it (infra/src/reference.rs).
CREATE TABLE IF NOT EXISTS reference_data
(
    kind       text        NOT NULL, -- hospital | ward | team
    code       text        NOT NULL,
    body       json        NOT NULL,
    updated_by text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, code)
);

-- Idempotency keys of commands, written in the same transaction as the
-- command's events: a retry after a crash finds the first answer, and a
-- command can never be recorded twice under one key.
CREATE TABLE IF NOT EXISTS idempotency_keys
(
    principal      text        NOT NULL,
    key            text        NOT NULL,
    fingerprint    text        NOT NULL,
    aggregate_type text        NOT NULL,
    aggregate_id   text        NOT NULL,
    version        bigint      NOT NULL,
    extra          text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (principal, key)
);

-- Who read patient-identifiable data: append-only (the trigger refuses
-- updates and deletes), shown to admins by GET /api/v1/audit.
CREATE TABLE IF NOT EXISTS access_log
(
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text        NOT NULL,
    actor_name  text        NOT NULL,
    role        text        NOT NULL,
    action      text        NOT NULL,
    resource    text        NOT NULL,
    client      text,
    request_id  text
);
-- The patients one access showed (a ward board shows many).
CREATE TABLE IF NOT EXISTS access_log_patients
(
    access_id  bigint NOT NULL REFERENCES access_log (id),
    nhs_number text   NOT NULL
);
CREATE INDEX IF NOT EXISTS access_log_by_patient ON access_log_patients (nhs_number, access_id);

CREATE OR REPLACE FUNCTION access_log_is_append_only() RETURNS trigger AS
$$
BEGIN
    RAISE EXCEPTION 'the access log is append-only';
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS access_log_append_only ON access_log;
CREATE TRIGGER access_log_append_only
    BEFORE UPDATE OR DELETE ON access_log
    FOR EACH ROW EXECUTE FUNCTION access_log_is_append_only();
DROP TRIGGER IF EXISTS access_log_patients_append_only ON access_log_patients;
CREATE TRIGGER access_log_patients_append_only
    BEFORE UPDATE OR DELETE ON access_log_patients
    FOR EACH ROW EXECUTE FUNCTION access_log_is_append_only();
