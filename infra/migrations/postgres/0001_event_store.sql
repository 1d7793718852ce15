-- The events table exactly as postgres-es expects it (its reads use it as is).
CREATE TABLE IF NOT EXISTS events
(
    aggregate_type text                         NOT NULL,
    aggregate_id   text                         NOT NULL,
    sequence       bigint CHECK (sequence >= 0) NOT NULL,
    event_type     text                         NOT NULL,
    event_version  text                         NOT NULL,
    payload        json                         NOT NULL,
    metadata       json                         NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);

-- Cross-aggregate rules (domain::reservation): one row per key held.
-- Written in the same transaction as the events that claim or release it.
CREATE TABLE IF NOT EXISTS reservations
(
    key    text        PRIMARY KEY,
    holder text        NOT NULL,
    since  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS reservations_holder ON reservations (holder);

-- Transactional outbox: a reference to every committed event, until the relay
-- has handed it to the sink (JetStream PubAck, or the local event log). It
-- names the event rather than copying it, halving what each commit writes.
-- The relay keeps no cursor: it takes the lowest visible rows and deletes
-- them once relayed, so a row of a transaction still in flight is never
-- passed over (infra/src/outbox.rs).
CREATE TABLE IF NOT EXISTS outbox
(
    position       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    aggregate_type text        NOT NULL,
    aggregate_id   text        NOT NULL,
    sequence       bigint      NOT NULL,
    committed_at   timestamptz NOT NULL DEFAULT now()
);

-- One row: who relays now, and what was published last.
CREATE TABLE IF NOT EXISTS outbox_relay
(
    id                      int PRIMARY KEY CHECK (id = 1),
    owner                   text,
    owner_since             timestamptz,
    heartbeat_at            timestamptz,
    last_published_position bigint NOT NULL DEFAULT 0,
    last_published_at       timestamptz,
    published_total         bigint NOT NULL DEFAULT 0
);
INSERT INTO outbox_relay (id) VALUES (1) ON CONFLICT (id) DO NOTHING;

-- The local ordered feed, when no NATS is configured: the relay appends here
-- with a gapless position that only it assigns, so readers can use a cursor.
-- Like the outbox, it names events rather than copying them.
CREATE TABLE IF NOT EXISTS event_log
(
    position        bigint PRIMARY KEY,
    aggregate_type  text        NOT NULL,
    aggregate_id    text        NOT NULL,
    sequence        bigint      NOT NULL,
    outbox_position bigint      NOT NULL,
    committed_at    timestamptz NOT NULL,
    UNIQUE (aggregate_type, aggregate_id, sequence)
);
