-- Checkpointed board state: the fold at a feed position. A restarting
-- process resumes after that position instead of replaying all history.
-- One row per feed (a JetStream stream, or the local log); any process may
-- write it, and a snapshot only ever replaces an older one.
CREATE TABLE IF NOT EXISTS projection_snapshots
(
    feed     text        PRIMARY KEY,
    position bigint      NOT NULL,
    state    text        NOT NULL,
    -- Bumped by each rebuild: runners reload when it changes, and their own
    -- checkpoints apply only on top of the generation they started from.
    generation bigint    NOT NULL DEFAULT 0,
    taken_at timestamptz NOT NULL DEFAULT now()
);
