-- On TimescaleDB telemetry keeps its narrow hypertable and (host_id, time) index, which
-- compression replaces by segments; readers bound the hour too (the plain variant of 031
-- says why), so the function they call exists here as well.
CREATE OR REPLACE FUNCTION telemetry_hour(t timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT date_bin('1 hour', t, timestamptz '2000-01-01 00:00:00+00') $$;
