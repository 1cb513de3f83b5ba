-- Agent access to AWS: project members added through the Admin API (config members live in
-- gateway.yaml), write requests and their decisions, and the trail of every change to either.

-- Members: who may hold which level on a project, and during which window.
CREATE TABLE IF NOT EXISTS aws_members (
    id          text        PRIMARY KEY,
    project     text        NOT NULL,
    groups      text[]      NOT NULL DEFAULT '{}',
    emails      text[]      NOT NULL DEFAULT '{}',
    level       text        NOT NULL CHECK (level IN ('read', 'write')),
    valid_from  timestamptz,
    valid_until timestamptz,
    created_at  timestamptz NOT NULL,
    created_by  text        NOT NULL,
    CHECK (valid_from IS NULL OR valid_until IS NULL OR valid_from < valid_until),
    CHECK (cardinality(groups) + cardinality(emails) > 0)
);

-- Write requests. `until` is set at approval (approval time + duration, never past the member's
-- window end as it stood at the request, `window_until`). A pending request lapses to `expired`
-- once it is older than its own duration.
CREATE TABLE IF NOT EXISTS aws_grants (
    id               text        PRIMARY KEY,
    project          text        NOT NULL,
    user_sub         text        NOT NULL,
    user_email       text,
    reason           text        NOT NULL,
    duration_seconds integer     NOT NULL CHECK (duration_seconds > 0),
    status           text        NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'revoked', 'expired')),
    requested_at     timestamptz NOT NULL,
    window_until     timestamptz,
    decided_at       timestamptz,
    decided_by       text,
    until            timestamptz,
    CHECK (status <> 'approved' OR until IS NOT NULL)
);
-- One pending request per developer and project.
CREATE UNIQUE INDEX IF NOT EXISTS aws_grants_one_pending ON aws_grants (user_sub, project) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS aws_grants_user ON aws_grants (user_sub, requested_at DESC);
CREATE INDEX IF NOT EXISTS aws_grants_requested ON aws_grants (requested_at DESC, id);

-- Every change to members and grants, written in the same transaction as the change.
CREATE TABLE IF NOT EXISTS aws_audit (
    id      bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      timestamptz NOT NULL,
    actor   text        NOT NULL,
    action  text        NOT NULL,
    subject text        NOT NULL,
    detail  jsonb
);
CREATE INDEX IF NOT EXISTS aws_audit_at ON aws_audit (at);
