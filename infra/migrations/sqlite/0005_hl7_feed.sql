-- The HL7 v2 ADT feed (see the PostgreSQL migration).
CREATE TABLE IF NOT EXISTS hl7_held_messages
(
    id                  integer PRIMARY KEY AUTOINCREMENT,
    received_at         text NOT NULL,
    sending_application text NOT NULL,
    sending_facility    text NOT NULL,
    control_id          text NOT NULL,
    trigger             text NOT NULL,
    ack_code            text NOT NULL,
    error_code          text NOT NULL,
    reason              text NOT NULL,
    message             text NOT NULL
);
CREATE INDEX IF NOT EXISTS hl7_held_messages_sender
    ON hl7_held_messages (sending_facility, control_id);

CREATE TABLE IF NOT EXISTS hl7_locations
(
    point_of_care text NOT NULL,
    pas_bed       text NOT NULL,
    ward          text NOT NULL,
    bed           text,
    updated_by    text NOT NULL,
    updated_at    text NOT NULL,
    PRIMARY KEY (point_of_care, pas_bed)
);
