-- What each host's agent can watch: one row per (host, probe) from its latest birth, with
-- the probe's status (working, tool_missing, permission_denied, no_devices, no_answer), why,
-- and the package that would fix it. /ops, /metrics (hourglass_hosts_coverage_short) and
-- `hourglass doctor` name the hosts whose coverage is short. Written by the collector only.
CREATE TABLE probe_coverage (
    host_id     text NOT NULL REFERENCES hosts(id),
    probe       text NOT NULL,
    status      text NOT NULL CHECK (status IN
                  ('working', 'tool_missing', 'permission_denied', 'no_devices', 'no_answer')),
    detail      text NOT NULL DEFAULT '',
    package     text,
    birth_seq   bigint NOT NULL,
    seen_at     timestamptz NOT NULL,
    PRIMARY KEY (host_id, probe)
);
CREATE INDEX probe_coverage_short ON probe_coverage (probe, status)
    WHERE status IN ('tool_missing', 'permission_denied', 'no_answer');
