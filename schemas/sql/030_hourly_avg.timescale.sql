-- On TimescaleDB telemetry_hourly is a continuous aggregate (003); changing its avg() to
-- numeric means dropping and rebuilding it, which is not done blind (it cannot run here).
-- The plain variant of 030 explains the float8 overflow this leaves open on that path.
SELECT 1;
