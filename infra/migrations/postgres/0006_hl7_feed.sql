-- The HL7 v2 ADT feed (issue 16, infra/src/hl7).
--
-- Messages Baton did not apply (answered AE or AR): admins see them with
-- the reason and retry them once the cause is fixed. A retransmission of a
-- held message replaces its row (one row per sender and control id).
CREATE TABLE IF NOT EXISTS hl7_held_messages
(
    id                 bigserial PRIMARY KEY,
    received_at        timestamptz NOT NULL,
    sending_application text        NOT NULL,
    sending_facility   text        NOT NULL,
    control_id         text        NOT NULL, -- '' when the message had none
    trigger            text        NOT NULL, -- '' when unreadable
    ack_code           text        NOT NULL, -- AE | AR
    error_code         text        NOT NULL, -- HL7 table 0357, or Baton's rule
    reason             text        NOT NULL,
    message            text        NOT NULL
);
CREATE INDEX IF NOT EXISTS hl7_held_messages_sender
    ON hl7_held_messages (sending_facility, control_id);

-- The PAS's locations mapped to Baton's wards and beds, edited by admins.
-- pas_bed '' maps a whole point of care to a ward, its beds as sent.
CREATE TABLE IF NOT EXISTS hl7_locations
(
    point_of_care text        NOT NULL,
    pas_bed       text        NOT NULL,
    ward          text        NOT NULL,
    bed           text,
    updated_by    text        NOT NULL,
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (point_of_care, pas_bed)
);
