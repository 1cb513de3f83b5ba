-- Settled requests, so a settlement retried after an unknown outcome (a timeout during COMMIT)
-- is applied once. Rows are swept after a few days.
CREATE TABLE IF NOT EXISTS settlements (
    id text        PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS settlements_at ON settlements (at);
