-- A request's rate limits, checked and counted in one statement. For each limit in the order
-- given: a tokens-per-minute window refuses when already spent; a requests-per-minute window
-- counts the request and refuses past its limit; a concurrent-streams scope takes a slot for
-- `slot` when fewer than its limit are live (admissions to one scope queue on a transaction-scoped
-- advisory lock, so two replicas cannot both take the last slot). The first refusal ends the
-- check: it names the limit and the seconds until it resets, with the slots taken before it (the
-- caller frees them with the rest of the request).
CREATE OR REPLACE FUNCTION rate_admit(
    keys text[], kinds text[], limits bigint[], slot text, slot_expires timestamptz,
    now_at timestamptz, window_end timestamptz)
RETURNS TABLE (refused text, retry_after bigint, taken text[])
LANGUAGE plpgsql AS $$
DECLARE
    i int;
    used bigint;
    ends timestamptz;
    got text[] := '{}';
    n int;
BEGIN
    FOR i IN 1 .. coalesce(array_length(keys, 1), 0) LOOP
        IF kinds[i] = 'tpm' THEN
            SELECT k.value::bigint, k.expires_at INTO used, ends
                FROM kv k WHERE k.key = keys[i] AND k.expires_at > now_at;
            IF FOUND AND used >= limits[i] THEN
                RETURN QUERY SELECT 'tokens_per_minute'::text,
                    GREATEST(ceil(extract(epoch FROM ends - now_at))::bigint, 1), got;
                RETURN;
            END IF;
        ELSIF kinds[i] = 'rpm' THEN
            INSERT INTO kv AS k (key, value, expires_at) VALUES (keys[i], '1', window_end)
                ON CONFLICT (key) DO UPDATE SET
                  value = CASE WHEN k.expires_at <= now_at THEN 1 ELSE k.value::bigint + 1 END::text,
                  expires_at = CASE WHEN k.expires_at <= now_at THEN EXCLUDED.expires_at ELSE k.expires_at END
                RETURNING k.value::bigint, k.expires_at INTO used, ends;
            IF used > limits[i] THEN
                RETURN QUERY SELECT 'requests_per_minute'::text,
                    GREATEST(ceil(extract(epoch FROM ends - now_at))::bigint, 1), got;
                RETURN;
            END IF;
        ELSIF kinds[i] = 'streams' THEN
            PERFORM pg_advisory_xact_lock(hashtextextended(keys[i], 7));
            INSERT INTO stream_slots (scope, id, expires_at)
                SELECT keys[i], slot, slot_expires
                WHERE (SELECT count(*) FROM stream_slots s
                       WHERE s.scope = keys[i] AND s.expires_at > now_at) < limits[i]
                ON CONFLICT (scope, id) DO NOTHING;
            GET DIAGNOSTICS n = ROW_COUNT;
            IF n = 0 THEN
                RETURN QUERY SELECT 'concurrent_streams'::text, 5::bigint, got;
                RETURN;
            END IF;
            got := got || keys[i];
        END IF;
    END LOOP;
    RETURN QUERY SELECT NULL::text, NULL::bigint, got;
END;
$$;
