-- Telemetry decimals at float4 size (issue 18): a value float4 does not hold exactly but
-- that is a decimal of few digits (41.3 °C, 12.08 V, a load of 0.37: most sensor readings
-- that are not integers) is stored in v as the integer value x 10^k, which float4 holds
-- exactly below 2^24, instead of in x at 8 bytes. d says which: NULL when no value of the
-- row is scaled, else one byte k (1..6) and a bitmap of the scaled elements (bit i from
-- 0 in byte 1 + i / 8, weight 2^(i % 8), as get_bit counts; collector/widecopy.py).
-- n / 10^k, both exact doubles, is correctly rounded to the double nearest the decimal,
-- which is the double the agent sent: readers get back exactly what was sent.
-- v may now be NULL: a row whose every value is in x (random doubles) keeps no v array;
-- where x holds a value, the collector puts 0 in v, not NULL (x is read first; a v
-- without NULLs has no null bitmap).
ALTER TABLE telemetry_rows ADD COLUMN d bytea;
ALTER TABLE telemetry_rows ALTER COLUMN v DROP NOT NULL;

-- Element i (from 1, unnest's ordinality) of a row: x's where it has one, else v's, read
-- back from its scaled integer where d marks it. A single SQL expression, so the planner
-- inlines it (no function call per value).
CREATE FUNCTION telemetry_value(x double precision, v real, d bytea, i bigint)
RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT COALESCE(x, CASE WHEN d IS NULL OR get_bit(d, 7 + i) = 0 THEN v
                            ELSE v / ('{1e1,1e2,1e3,1e4,1e5,1e6}'::float8[])[get_byte(d, 0)]
                       END)
$$;

-- The view reads d; while 019's conversion has narrow rows left it reads them too
-- (schemas/telemetry_convert.py defines the same view over the wide rows alone at its end).
DO $$
DECLARE
    wide text := 'SELECT r.time, h.host_id, u.component, u.metric,'
        ' telemetry_value(u.x, u.v, r.d, u.i) AS value'
        ' FROM telemetry_rows r'
        ' JOIN telemetry_hosts h ON h.id = r.host'
        ' JOIN telemetry_sets s ON s.id = r.set_id'
        ' CROSS JOIN LATERAL unnest(s.components, s.metrics, r.v, r.x) WITH ORDINALITY'
        ' AS u(component, metric, v, x, i)';
BEGIN
    IF to_regclass('telemetry_narrow') IS NULL THEN
        EXECUTE 'CREATE OR REPLACE VIEW telemetry AS ' || wide;
    ELSE
        EXECUTE 'CREATE OR REPLACE VIEW telemetry AS ' || wide || ' UNION ALL'
            ' SELECT time, host_id, component, metric, value FROM telemetry_narrow';
    END IF;
END $$;
