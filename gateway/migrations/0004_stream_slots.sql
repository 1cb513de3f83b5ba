-- Streams open at once, one row per stream, for the concurrent-streams rate limit. Each row expires
-- on its own, so a stream whose end was never written (its gateway died) frees its slot at its own
-- expiry, however busy the user stays.
CREATE TABLE IF NOT EXISTS stream_slots (
    scope      text        NOT NULL,
    id         text        NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (scope, id)
);
CREATE INDEX IF NOT EXISTS stream_slots_expires_at ON stream_slots (expires_at);
