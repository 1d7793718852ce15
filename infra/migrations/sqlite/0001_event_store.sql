-- The events table exactly as sqlite-es expects it (its reads use it as is).
CREATE TABLE IF NOT EXISTS events
(
  aggregate_type text                          NOT NULL,
  aggregate_id   text                          NOT NULL,
  sequence       integer CHECK (sequence >= 0) NOT NULL,
  event_type     text                          NOT NULL,
  event_version  text                          NOT NULL,
  payload        text                          NOT NULL,
  metadata       text                          NOT NULL,
  PRIMARY KEY (aggregate_type, aggregate_id, sequence)
) STRICT;

-- Cross-aggregate rules (domain::reservation), written with the events.
CREATE TABLE IF NOT EXISTS reservations
(
  key    text PRIMARY KEY,
  holder text NOT NULL,
  since  text NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS reservations_holder ON reservations (holder);

-- Transactional outbox (references to events). SQLite has one writer at a time, so positions are
-- assigned in commit order and no transaction is ever in flight beside another.
CREATE TABLE IF NOT EXISTS outbox
(
  position       integer PRIMARY KEY AUTOINCREMENT,
  aggregate_type text    NOT NULL,
  aggregate_id   text    NOT NULL,
  sequence       integer NOT NULL,
  committed_at   text    NOT NULL
);

CREATE TABLE IF NOT EXISTS outbox_relay
(
  id                      integer PRIMARY KEY CHECK (id = 1),
  owner                   text,
  owner_since             text,
  heartbeat_at            text,
  last_published_position integer NOT NULL DEFAULT 0,
  last_published_at       text,
  published_total         integer NOT NULL DEFAULT 0
) STRICT;
INSERT OR IGNORE INTO outbox_relay (id) VALUES (1);

-- The local ordered feed of the embedded default.
CREATE TABLE IF NOT EXISTS event_log
(
  position        integer PRIMARY KEY,
  aggregate_type  text    NOT NULL,
  aggregate_id    text    NOT NULL,
  sequence        integer NOT NULL,
  outbox_position integer NOT NULL,
  committed_at    text    NOT NULL,
  UNIQUE (aggregate_type, aggregate_id, sequence)
) STRICT;
