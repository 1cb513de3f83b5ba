-- Short-lived shared state: device grants, user-code pointers, rate-limit counters.
-- Every row expires; readers ignore expired rows and a sweeper deletes them.
CREATE TABLE IF NOT EXISTS kv (
    key        text        PRIMARY KEY,
    value      text        NOT NULL,
    expires_at timestamptz NOT NULL
);

CREATE INDEX IF NOT EXISTS kv_expires_at ON kv (expires_at);
