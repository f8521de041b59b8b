-- Each collector's own word on its input, written every sweep pass (5 s) by that
-- collector and by no one else: whether it is ready, why not, and whether host-down and
-- facility detection are paused. The dispatcher shows it on /ops and /metrics; a row not
-- updated for 30 s is a collector that stopped (or lost the database).
CREATE TABLE collector_status (
    client_id         text PRIMARY KEY,
    ready             boolean NOT NULL,
    detection_paused  boolean NOT NULL,
    reasons           text[] NOT NULL DEFAULT '{}',
    held_sites        text[] NOT NULL DEFAULT '{}',
    oldest_unacked_s  double precision NOT NULL DEFAULT 0,
    updated_at        timestamptz NOT NULL
);
