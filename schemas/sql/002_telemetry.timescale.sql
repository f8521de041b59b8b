-- Telemetry on TimescaleDB: a hypertable with compression and retention policies.
-- The same columns as the plain path, so every query reads both alike.
CREATE EXTENSION IF NOT EXISTS timescaledb;
CREATE TABLE telemetry (
    time       timestamptz NOT NULL,
    host_id    text NOT NULL,
    component  text NOT NULL,
    metric     text NOT NULL,
    value      double precision NOT NULL
);
SELECT create_hypertable('telemetry', 'time', chunk_time_interval => INTERVAL '1 day');
CREATE INDEX telemetry_host_time ON telemetry (host_id, time DESC);
ALTER TABLE telemetry SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'host_id',
    timescaledb.compress_orderby = 'time DESC'
);
-- Compress after two days (recent rows stay cheap to write); keep 90 days raw.
SELECT add_compression_policy('telemetry', INTERVAL '2 days');
SELECT add_retention_policy('telemetry', INTERVAL '90 days');
