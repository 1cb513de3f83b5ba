-- Finance's daily rows and who each principal is, as last seen, from one batch of served
-- requests: `days` is a JSON array of {day, principal, model, groups, cost, requests}, `people` of
-- {principal, email, name, groups, at} with `at` in microseconds since the epoch.
CREATE OR REPLACE FUNCTION spend_finance(days jsonb, people jsonb)
RETURNS void
LANGUAGE sql AS $$
    INSERT INTO cost_daily (day, principal, model, groups, cost_micros, requests)
    SELECT (e->>'day')::date, e->>'principal', e->>'model',
           ARRAY(SELECT jsonb_array_elements_text(e->'groups')),
           (e->>'cost')::bigint, (e->>'requests')::bigint
    FROM jsonb_array_elements(days) AS e
    ON CONFLICT (day, principal, model) DO UPDATE
    SET cost_micros = cost_daily.cost_micros + EXCLUDED.cost_micros,
        requests = cost_daily.requests + EXCLUDED.requests, groups = EXCLUDED.groups;
    INSERT INTO principals (principal, email, name, groups, last_seen)
    SELECT e->>'principal', e->>'email', e->>'name',
           ARRAY(SELECT jsonb_array_elements_text(e->'groups')),
           to_timestamp((e->>'at')::double precision / 1000000)
    FROM jsonb_array_elements(people) AS e
    ON CONFLICT (principal) DO UPDATE SET email = EXCLUDED.email, name = EXCLUDED.name,
        groups = EXCLUDED.groups, last_seen = GREATEST(principals.last_seen, EXCLUDED.last_seen);
$$;

-- A settlement batch in one statement, once: the batch id is recorded first, and a batch already
-- recorded changes nothing (the function answers false). Then, in the order every spend statement
-- locks in, the buckets touched (created when missing) and the leases charged or given back.
--
-- `whos`, `bucket_keys` and `adds`: what each (principal, bucket) gains in settled spend, every
-- bucket the batch touches. `lease_ids`, `owes` and `given_back`: each lease once, what was
-- charged to it, and whether it is given back. A lease's amount turns into settled spend as far
-- as it reaches (it is shrunk by the charge, and kept open until `renew_until`); a lease given
-- back releases all of it and its row goes. A lease that expired meanwhile releases nothing more.
CREATE OR REPLACE FUNCTION spend_settle(
    batch_id text, whos text[], bucket_keys text[], adds bigint[],
    lease_ids text[], owes bigint[], given_back boolean[], renew_until timestamptz,
    days jsonb, people jsonb)
RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO settlements (id) VALUES (batch_id) ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO spend (principal, bucket)
        SELECT * FROM unnest(whos, bucket_keys) ON CONFLICT DO NOTHING;
    PERFORM 1 FROM spend s WHERE (s.principal, s.bucket) IN (SELECT * FROM unnest(whos, bucket_keys))
        ORDER BY s.principal, s.bucket FOR UPDATE;
    PERFORM 1 FROM reservations r WHERE r.id = ANY(lease_ids) ORDER BY r.id FOR UPDATE;
    WITH freed AS (
        SELECT r.id, r.principal, r.buckets, l.back,
               CASE WHEN l.back THEN r.amount_micros
                    ELSE GREATEST(LEAST(l.cost, r.amount_micros), 0) END AS amount
        FROM reservations r JOIN unnest(lease_ids, owes, given_back) AS l(id, cost, back)
            ON r.id = l.id
    ), gone AS (
        DELETE FROM reservations r USING freed f WHERE r.id = f.id AND f.back
    ), shrunk AS (
        UPDATE reservations r SET amount_micros = r.amount_micros - f.amount,
            expires_at = GREATEST(r.expires_at, renew_until)
        FROM freed f WHERE r.id = f.id AND NOT f.back
    ), released AS (
        SELECT f.principal, k AS bucket, sum(f.amount)::bigint AS amount
        FROM freed f CROSS JOIN LATERAL unnest(f.buckets) AS k GROUP BY f.principal, k
    )
    UPDATE spend s SET settled_micros = s.settled_micros + c.add,
        reserved_micros = GREATEST(s.reserved_micros - COALESCE(x.amount, 0), 0),
        updated_at = now()
    FROM unnest(whos, bucket_keys, adds) AS c(principal, bucket, add)
    LEFT JOIN released x ON x.principal = c.principal AND x.bucket = c.bucket
    WHERE s.principal = c.principal AND s.bucket = c.bucket;
    PERFORM spend_finance(days, people);
    RETURN true;
END;
$$;
