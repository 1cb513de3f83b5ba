-- Spend caps set through the Admin API. Amounts in US cents; NULL is unlimited.
CREATE TABLE IF NOT EXISTS spend_limits (
    id           text        PRIMARY KEY,
    scope_type   text        NOT NULL CHECK (scope_type IN ('user', 'rbac_group', 'organization')),
    scope_id     text        NOT NULL DEFAULT '',
    amount_cents bigint      CHECK (amount_cents IS NULL OR amount_cents >= 0),
    period       text        NOT NULL CHECK (period IN ('daily', 'weekly', 'monthly')),
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    created_by   text        NOT NULL,
    UNIQUE (scope_type, scope_id, period)
);

-- Spend per principal and period bucket ('d:2026-11-23', 'w:2026-11-23', 'm:2026-11'), in
-- micro-dollars: settled is metered cost, reserved is admitted requests' worst case not yet settled.
CREATE TABLE IF NOT EXISTS spend (
    principal       text        NOT NULL,
    bucket          text        NOT NULL,
    settled_micros  bigint      NOT NULL DEFAULT 0,
    reserved_micros bigint      NOT NULL DEFAULT 0 CHECK (reserved_micros >= 0),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (principal, bucket)
);
CREATE INDEX IF NOT EXISTS spend_bucket_settled ON spend (bucket, settled_micros DESC, principal);

-- Open reservations: released at settlement, or when they expire (a gateway that died mid-request).
CREATE TABLE IF NOT EXISTS reservations (
    id            text        PRIMARY KEY,
    principal     text        NOT NULL,
    buckets       text[]      NOT NULL,
    amount_micros bigint      NOT NULL,
    expires_at    timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS reservations_expires_at ON reservations (expires_at);

-- Daily cost per principal, group and model, for finance's cost report.
CREATE TABLE IF NOT EXISTS cost_daily (
    day           date   NOT NULL,
    principal     text   NOT NULL,
    model         text   NOT NULL,
    groups        text[] NOT NULL DEFAULT '{}',
    cost_micros   bigint NOT NULL DEFAULT 0,
    requests      bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (day, principal, model)
);

-- Last-seen identity of each principal (PII: email and name), for admin views.
CREATE TABLE IF NOT EXISTS principals (
    principal  text        PRIMARY KEY,
    email      text,
    name       text,
    groups     text[]      NOT NULL DEFAULT '{}',
    last_seen  timestamptz NOT NULL
);

-- Every Admin API mutation, written in the same transaction as the change.
CREATE TABLE IF NOT EXISTS admin_audit (
    id        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        timestamptz NOT NULL,
    actor     text        NOT NULL,
    action    text        NOT NULL,
    target_id text        NOT NULL,
    before    jsonb,
    after     jsonb
);
