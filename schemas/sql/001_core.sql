-- Operational tables: the fleet, its people, incidents and their ledger.
-- State CHECKs mirror schemas/states.py (a test keeps them in step).

CREATE TABLE sites (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    timezone    text NOT NULL DEFAULT 'UTC',
    manager_id  text
);

CREATE TABLE technicians (
    id           text PRIMARY KEY,
    name         text NOT NULL,
    site_id      text NOT NULL REFERENCES sites(id),
    role         text NOT NULL CHECK (role IN ('technician', 'manager', 'executive')),
    skills       text[] NOT NULL DEFAULT '{}',
    shift_start  time NOT NULL DEFAULT '00:00',
    shift_end    time NOT NULL DEFAULT '24:00',
    active       boolean NOT NULL DEFAULT true
);

CREATE TABLE customers (
    id                     text PRIMARY KEY,
    name                   text NOT NULL,
    account_manager        text,
    sla_minutes            double precision NOT NULL DEFAULT 60 CHECK (sla_minutes > 0),
    credit_percent         numeric(6,3) NOT NULL DEFAULT 5 CHECK (credit_percent >= 0),
    credit_period_minutes  double precision NOT NULL DEFAULT 60 CHECK (credit_period_minutes > 0),
    credit_cap_percent     numeric(6,3) NOT NULL DEFAULT 100 CHECK (credit_cap_percent >= 0)
);

CREATE TABLE hosts (
    id           text PRIMARY KEY,
    customer_id  text NOT NULL REFERENCES customers(id),
    site_id      text NOT NULL REFERENCES sites(id),
    room         text,
    rack         text,
    unit         integer,
    monthly_fee  numeric(12,2) NOT NULL DEFAULT 0 CHECK (monthly_fee >= 0),
    currency     text NOT NULL DEFAULT 'USD'
);
CREATE INDEX hosts_customer ON hosts (customer_id);

CREATE TABLE spares (
    site_id  text NOT NULL REFERENCES sites(id),
    part     text NOT NULL,
    kind     text NOT NULL,
    count    integer NOT NULL CHECK (count >= 0),
    PRIMARY KEY (site_id, part)
);

-- Inventory from birth plus the latest status from telemetry/events.
-- status_seq/status_ts order updates by the agent's seq, never by arrival order.
CREATE TABLE components (
    host_id     text NOT NULL REFERENCES hosts(id),
    id          text NOT NULL,
    kind        text NOT NULL,
    slot        text,
    device      text,
    model       text,
    serial      text,
    size_bytes  bigint,
    attrs       jsonb NOT NULL DEFAULT '{}',
    status      text NOT NULL DEFAULT 'unknown' CHECK (status IN ('ok', 'warning', 'failed', 'unknown')),
    failure     text,
    status_seq  bigint NOT NULL DEFAULT 0,
    status_ts   timestamptz,
    first_seen  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (host_id, id)
);
CREATE INDEX components_slot ON components (host_id, kind, slot);

CREATE TABLE host_state (
    host_id        text PRIMARY KEY REFERENCES hosts(id),
    state          text NOT NULL CHECK (state IN ('online', 'offline')),
    seq            bigint NOT NULL,
    ts             timestamptz NOT NULL,
    boot_id        text,
    agent_version  text,
    interval_s     double precision,
    chassis        jsonb,
    session        text,
    offline_reason text CHECK (offline_reason IN ('lost', 'shutdown')),
    last_message   timestamptz NOT NULL DEFAULT now()
);

-- Every accepted (host, seq): the idempotency key of ingest. Insert-only.
CREATE TABLE ingest_keys (
    host_id      text NOT NULL,
    seq          bigint NOT NULL,
    kind         text NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (host_id, seq)
);

CREATE TABLE dead_letters (
    id           bigserial PRIMARY KEY,
    received_at  timestamptz NOT NULL DEFAULT now(),
    topic        text NOT NULL,
    reason       text NOT NULL,
    payload      bytea NOT NULL
);

CREATE TABLE incidents (
    id           bigserial PRIMARY KEY,
    host_id      text NOT NULL REFERENCES hosts(id),
    site_id      text NOT NULL REFERENCES sites(id),
    customer_id  text NOT NULL REFERENCES customers(id),
    component    text NOT NULL,
    kind         text NOT NULL,
    failure      text NOT NULL,
    slot         text,
    serial       text,
    state        text NOT NULL DEFAULT 'detected' CHECK (state IN
                   ('detected', 'dispatched', 'acknowledged', 'on_site', 'replaced',
                    'verified', 'closed', 'paused')),
    detected_at  timestamptz NOT NULL,
    deadline     timestamptz NOT NULL,
    sla_minutes  double precision NOT NULL,
    evidence     jsonb NOT NULL DEFAULT '{}',
    assignee     text REFERENCES technicians(id),
    verified_at  timestamptz,
    closed_at    timestamptz,
    next_assign_at timestamptz,  -- when no one fit: try again then (someone may come on shift)
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
-- One open incident per (host, component, failure class).
CREATE UNIQUE INDEX incidents_one_open ON incidents (host_id, component, failure)
    WHERE state NOT IN ('verified', 'closed');
CREATE INDEX incidents_state ON incidents (state);
CREATE INDEX incidents_customer ON incidents (customer_id, detected_at DESC);

CREATE TABLE jobs (
    id               bigserial PRIMARY KEY,
    incident_id      bigint NOT NULL REFERENCES incidents(id),
    technician_id    text NOT NULL REFERENCES technicians(id),
    state            text NOT NULL DEFAULT 'dispatched' CHECK (state IN
                       ('dispatched', 'acknowledged', 'on_site', 'replaced', 'done',
                        'declined', 'cancelled')),
    dispatched_at    timestamptz NOT NULL,
    acknowledged_at  timestamptz,
    on_site_at       timestamptz,
    replaced_at      timestamptz,
    new_serial       text,
    finished_at      timestamptz
);
-- One live job per incident.
CREATE UNIQUE INDEX jobs_one_live ON jobs (incident_id)
    WHERE state NOT IN ('done', 'declined', 'cancelled');
CREATE INDEX jobs_technician ON jobs (technician_id, state);

-- Append-only timeline; the customer's view of an incident.
CREATE TABLE incident_events (
    id           bigserial PRIMARY KEY,
    incident_id  bigint NOT NULL REFERENCES incidents(id),
    at           timestamptz NOT NULL,
    actor        text NOT NULL,
    kind         text NOT NULL,
    detail       jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX incident_events_incident ON incident_events (incident_id, at, id);

-- The credit ledger: one row per incident at most, never updated.
CREATE TABLE credits (
    id           bigserial PRIMARY KEY,
    incident_id  bigint NOT NULL UNIQUE REFERENCES incidents(id),
    customer_id  text NOT NULL REFERENCES customers(id),
    amount       numeric(12,2) NOT NULL CHECK (amount >= 0),
    currency     text NOT NULL,
    percent      numeric(6,3) NOT NULL,
    periods      integer NOT NULL,
    late_seconds double precision NOT NULL,
    policy       jsonb NOT NULL,
    issued_at    timestamptz NOT NULL
);

CREATE TABLE api_tokens (
    id           bigserial PRIMARY KEY,
    token_hash   text NOT NULL UNIQUE,
    role         text NOT NULL CHECK (role IN ('customer', 'technician', 'manager', 'admin')),
    customer_id  text REFERENCES customers(id),
    person_id    text REFERENCES technicians(id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (role <> 'customer' OR customer_id IS NOT NULL)
);

-- Responses of job actions by Idempotency-Key, so a retried tap does nothing twice.
CREATE TABLE idempotency_keys (
    token_id     bigint NOT NULL REFERENCES api_tokens(id),
    key          text NOT NULL,
    request      text NOT NULL,  -- what the key was first used for; a reuse must match
    status_code  integer NOT NULL,
    response     jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (token_id, key)
);

CREATE TABLE surveys (
    incident_id  bigint PRIMARY KEY REFERENCES incidents(id),
    score        integer NOT NULL CHECK (score BETWEEN 0 AND 10),
    comment      text,
    at           timestamptz NOT NULL
);
