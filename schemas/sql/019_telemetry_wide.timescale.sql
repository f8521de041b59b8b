-- Telemetry on TimescaleDB keeps the narrow hypertable of 002 (issue 18): its native
-- compression (segmented by host_id, ordered by time: delta-of-delta timestamps, Gorilla
-- floats, dictionary names) already packs a value into about 1-2 bytes once a chunk is
-- compressed, which the wide plain layout (about 6 bytes) cannot beat, and its continuous
-- aggregate needs a plain table. The collector writes whichever layout it finds
-- (collector/teleids.py). Nothing to change; the version is recorded. 029 segments the
-- compression by (host_id, component, metric): a series per compressed batch.
SELECT 1;
