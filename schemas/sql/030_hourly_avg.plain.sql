-- The hourly average in numeric: float8's avg() keeps a sum of squared deviations, which
-- overflows ("value out of range") when a series holds a value like 1e300 beside others in
-- one hour; the roll-up of that day (collector/retention.py) and any reader of the view then
-- failed. The average itself never exceeds the series' largest value, so it fits float8.
CREATE OR REPLACE VIEW telemetry_hourly AS
SELECT date_trunc('hour', time, 'UTC') AS bucket, host_id, component, metric,
       avg(value::numeric)::float8 AS avg, min(value) AS min, max(value) AS max,
       count(*) AS n
FROM telemetry
GROUP BY 1, host_id, component, metric
UNION ALL
SELECT r.bucket, h.host_id, r.component, r.metric, r.avg, r.min, r.max, r.n
FROM telemetry_hourly_rows r JOIN telemetry_hosts h ON h.id = r.host;
