-- The gateway in the data path of agents' AWS calls: every call recorded, single calls held for
-- a person's approval, and the per-user call counts behind the tiered rate limits.

-- One row per call through the proxy, under the session (the gateway credential's key id) it
-- came with. Parameters and body are masked before they are written.
CREATE TABLE IF NOT EXISTS aws_calls (
    id                 bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at                 timestamptz NOT NULL,
    session_id         text        NOT NULL,
    user_sub           text        NOT NULL,
    user_email         text,
    project            text        NOT NULL,
    level              text        NOT NULL CHECK (level IN ('read', 'write')),
    grant_id           text,
    service            text        NOT NULL,
    region             text        NOT NULL,
    operation          text,
    action             text,
    class              text        NOT NULL CHECK (class IN ('read', 'list', 'write')),
    params             jsonb       NOT NULL,
    decision           text        NOT NULL,
    reason             text,
    approval_id        text,
    approver           text,
    status             integer,
    request_bytes      bigint      NOT NULL DEFAULT 0,
    response_bytes     bigint      NOT NULL DEFAULT 0,
    duration_ms        integer     NOT NULL DEFAULT 0,
    masked             jsonb       NOT NULL DEFAULT '{}',
    body               text,
    body_truncated     boolean     NOT NULL DEFAULT false,
    turn_request_id    text,
    prompt_fingerprint text
);
CREATE INDEX IF NOT EXISTS aws_calls_at ON aws_calls (at);
CREATE INDEX IF NOT EXISTS aws_calls_session ON aws_calls (session_id, id);
CREATE INDEX IF NOT EXISTS aws_calls_user ON aws_calls (user_sub, id);
CREATE INDEX IF NOT EXISTS aws_calls_turn ON aws_calls (turn_request_id) WHERE turn_request_id IS NOT NULL;

-- A single call held for approval. `fingerprint` names the exact call (user, project, region,
-- operation and a hash of method, path, query and body); an approved one lets the identical
-- call through until `until`.
CREATE TABLE IF NOT EXISTS aws_call_approvals (
    id           text        PRIMARY KEY,
    fingerprint  text        NOT NULL,
    project      text        NOT NULL,
    user_sub     text        NOT NULL,
    user_email   text,
    service      text        NOT NULL,
    region       text        NOT NULL,
    operation    text,
    action       text,
    params       jsonb       NOT NULL,
    reasons      text[]      NOT NULL DEFAULT '{}',
    status       text        NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'expired')),
    requested_at timestamptz NOT NULL,
    decided_at   timestamptz,
    decided_by   text,
    until        timestamptz,
    CHECK (status <> 'approved' OR until IS NOT NULL)
);
-- One pending approval per call.
CREATE UNIQUE INDEX IF NOT EXISTS aws_call_approvals_one_pending ON aws_call_approvals (fingerprint) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS aws_call_approvals_fingerprint ON aws_call_approvals (fingerprint, requested_at DESC);
CREATE INDEX IF NOT EXISTS aws_call_approvals_requested ON aws_call_approvals (requested_at DESC, id);

-- Calls per user and class in fixed windows, counted by one upsert per call.
CREATE TABLE IF NOT EXISTS aws_call_counts (
    user_sub     text        NOT NULL,
    class        text        NOT NULL,
    window_start timestamptz NOT NULL,
    calls        integer     NOT NULL,
    PRIMARY KEY (user_sub, class, window_start)
);
