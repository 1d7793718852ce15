-- Checkpointed board state: the fold at a feed position. A restarting
-- process resumes after that position instead of replaying all history.
-- One row per feed (a JetStream stream, or the local log); any process may
-- write it, and a snapshot only ever replaces an older one.
CREATE TABLE IF NOT EXISTS projection_snapshots
(
    feed     text        PRIMARY KEY,
    position bigint      NOT NULL,
    state    text        NOT NULL,
    taken_at timestamptz NOT NULL DEFAULT now()
);
