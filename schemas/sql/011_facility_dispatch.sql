-- The dispatcher's side of facility incidents: who was told (an append-only timeline), each
-- once-only step by a unique key, and the per-host credit ledger.

-- Append-only timeline of a facility incident, as incident_events is of an incident.
CREATE TABLE facility_events (
    id           bigserial PRIMARY KEY,
    facility_id  bigint NOT NULL REFERENCES facility_incidents(id),
    at           timestamptz NOT NULL,
    actor        text NOT NULL,
    kind         text NOT NULL,
    detail       jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX facility_events_facility ON facility_events (facility_id, at, id);

-- Each once-only step of a facility incident: the key is taken in the same transaction as
-- the step's messages and ledger rows, so a second dispatcher (or a restarted one) does
-- nothing. 'opened': site manager and account teams told; 'breach': the executive told;
-- 'credited': every linked host credited.
CREATE TABLE facility_steps (
    facility_id  bigint NOT NULL REFERENCES facility_incidents(id),
    step         text NOT NULL CHECK (step IN ('opened', 'breach', 'credited')),
    at           timestamptz NOT NULL,
    worker       text NOT NULL,
    PRIMARY KEY (facility_id, step)
);

-- One credit per (facility incident, host) at most, for the host's customer.
CREATE TABLE facility_credits (
    id            bigserial PRIMARY KEY,
    facility_id   bigint NOT NULL REFERENCES facility_incidents(id),
    host_id       text NOT NULL REFERENCES hosts(id),
    customer_id   text NOT NULL REFERENCES customers(id),
    amount        numeric(12,2) NOT NULL CHECK (amount >= 0),
    currency      text NOT NULL,
    percent       numeric(6,3) NOT NULL,
    periods       integer NOT NULL,
    late_seconds  double precision NOT NULL,
    restored_at   timestamptz NOT NULL,  -- the host's back_at, or the resolution time
    policy        jsonb NOT NULL,
    issued_at     timestamptz NOT NULL,
    UNIQUE (facility_id, host_id)
);
CREATE INDEX facility_credits_issued ON facility_credits (issued_at, id);
CREATE INDEX facility_credits_customer ON facility_credits (customer_id, id);

-- The dispatcher's pass looks for open facilities and resolved ones not yet credited.
CREATE INDEX facility_incidents_state ON facility_incidents (state, deadline);
