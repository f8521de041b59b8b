-- Telemetry on plain PostgreSQL: range-partitioned by day. The collector creates
-- partitions ahead and drops them past retention; the default partition catches
-- any row outside them, so no row is ever refused for its date.
CREATE TABLE telemetry (
    time       timestamptz NOT NULL,
    host_id    text NOT NULL,
    component  text NOT NULL,
    metric     text NOT NULL,
    value      double precision NOT NULL
) PARTITION BY RANGE (time);
CREATE TABLE telemetry_default PARTITION OF telemetry DEFAULT;
CREATE INDEX telemetry_host_time ON telemetry (host_id, time DESC);
