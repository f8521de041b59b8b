-- Hourly roll-up on plain PostgreSQL: a view with the continuous aggregate's columns.
CREATE VIEW telemetry_hourly AS
SELECT date_trunc('hour', time) AS bucket, host_id, component, metric,
       avg(value) AS avg, min(value) AS min, max(value) AS max, count(*) AS n
FROM telemetry
GROUP BY 1, host_id, component, metric;
