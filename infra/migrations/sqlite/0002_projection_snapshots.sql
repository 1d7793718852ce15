-- Checkpointed board state (see the PostgreSQL migration).
CREATE TABLE IF NOT EXISTS projection_snapshots
(
  feed     text    PRIMARY KEY,
  position integer NOT NULL,
  state    text    NOT NULL,
  generation integer NOT NULL DEFAULT 0,
  taken_at text    NOT NULL
) STRICT;
