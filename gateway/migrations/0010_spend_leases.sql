-- A spend lease: a replica's slice of a principal's remaining budget, kept as one row of
-- `reservations` (so an abandoned lease expires like any reservation). The replica admits requests
-- against its lease without a round trip and grows it with this function: one statement that
-- creates and locks the principal's buckets in a fixed order, and adds `give` to them and to the
-- lease only when the least headroom under any capped bucket covers `need`. The extra beyond
-- `need` is at most a quarter of that headroom, so replicas leave room for each other.
--
-- `existing` says the caller believes the lease row exists: when it has expired meanwhile the
-- function grants nothing and answers `lost`, so the caller starts a new lease instead of counting
-- on budget that went back to the principal.
--
-- One row per bucket, in the order given: the bucket's settled and reserved micro-dollars before
-- this grant and without this lease's amount, whether it would pass its cap, what was granted, the
-- lease's amount after the grant, and whether the lease was lost.
CREATE OR REPLACE FUNCTION spend_lease(
    lease_id text, who text, keys text[], caps bigint[],
    need bigint, want bigint, expires timestamptz, existing boolean)
RETURNS TABLE (bucket text, settled bigint, reserved bigint, over boolean, granted bigint,
               lease_amount bigint, lost boolean)
LANGUAGE plpgsql AS $$
DECLARE
    room bigint;
    give bigint;
    held bigint := 0;
BEGIN
    INSERT INTO spend (principal, bucket)
        SELECT who, k FROM unnest(keys) AS k ORDER BY k ON CONFLICT DO NOTHING;
    PERFORM 1 FROM spend s WHERE s.principal = who AND s.bucket = ANY(keys)
        ORDER BY s.bucket FOR UPDATE;
    IF existing THEN
        SELECT r.amount_micros INTO held FROM reservations r WHERE r.id = lease_id FOR UPDATE;
        IF NOT FOUND THEN
            RETURN QUERY SELECT c.k, 0::bigint, 0::bigint, false, 0::bigint, 0::bigint, true
                FROM unnest(keys) WITH ORDINALITY AS c(k, n) ORDER BY c.n;
            RETURN;
        END IF;
    END IF;
    SELECT min(c.cap - s.settled_micros - s.reserved_micros) INTO room
        FROM spend s JOIN unnest(keys, caps) AS c(k, cap) ON s.bucket = c.k
        WHERE s.principal = who AND c.cap IS NOT NULL;
    IF room IS NOT NULL AND room < need THEN
        RETURN QUERY SELECT c.k, s.settled_micros, s.reserved_micros - held,
                c.cap IS NOT NULL AND s.settled_micros + s.reserved_micros + need > c.cap,
                0::bigint, held, false
            FROM unnest(keys, caps) WITH ORDINALITY AS c(k, cap, n)
            JOIN spend s ON s.principal = who AND s.bucket = c.k ORDER BY c.n;
        RETURN;
    END IF;
    give := CASE WHEN room IS NULL THEN want
                 ELSE GREATEST(need, LEAST(want, room / 4)) END;
    INSERT INTO reservations (id, principal, buckets, amount_micros, expires_at)
        VALUES (lease_id, who, keys, give, expires)
        ON CONFLICT (id) DO UPDATE
        SET amount_micros = reservations.amount_micros + EXCLUDED.amount_micros,
            expires_at = GREATEST(reservations.expires_at, EXCLUDED.expires_at);
    RETURN QUERY
        WITH grown AS (
            UPDATE spend s SET reserved_micros = s.reserved_micros + give, updated_at = now()
            WHERE s.principal = who AND s.bucket = ANY(keys)
            RETURNING s.bucket AS k, s.settled_micros AS settled_now,
                      s.reserved_micros - give - held AS others
        )
        SELECT c.k, g.settled_now, g.others, false, give, held + give, false
            FROM unnest(keys) WITH ORDINALITY AS c(k, n) JOIN grown g ON g.k = c.k ORDER BY c.n;
END;
$$;
