-- Facility incidents: a rack (power or network) that took many hosts down at once, with
-- its own SLA policy. facility_incidents.state mirrors schemas/states.py FacilityState.

CREATE TABLE facility_incidents (
    id                     bigserial PRIMARY KEY,
    site_id                text NOT NULL REFERENCES sites(id),
    room                   text,
    rack                   text NOT NULL,
    cause                  text NOT NULL CHECK (cause IN ('power', 'network')),
    state                  text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'resolved')),
    detected_at            timestamptz NOT NULL,  -- the sweep's time that proved it
    deadline               timestamptz NOT NULL,
    -- its own policy (design: by default 5 % per started 30 minutes past the deadline)
    sla_minutes            double precision NOT NULL DEFAULT 60 CHECK (sla_minutes > 0),
    credit_percent         numeric(6,3) NOT NULL DEFAULT 5 CHECK (credit_percent >= 0),
    credit_period_minutes  double precision NOT NULL DEFAULT 30 CHECK (credit_period_minutes > 0),
    credit_cap_percent     numeric(6,3) NOT NULL DEFAULT 100 CHECK (credit_cap_percent >= 0),
    rack_hosts             integer NOT NULL,  -- hosts the rack had when it went down
    evidence               jsonb NOT NULL DEFAULT '{}',
    resolved_at            timestamptz,
    created_at             timestamptz NOT NULL DEFAULT now()
);
-- One open facility incident per rack.
CREATE UNIQUE INDEX facility_one_open ON facility_incidents (site_id, rack) WHERE state = 'open';

CREATE TABLE facility_incident_hosts (
    facility_id  bigint NOT NULL REFERENCES facility_incidents(id),
    host_id      text NOT NULL REFERENCES hosts(id),
    customer_id  text NOT NULL REFERENCES customers(id),
    last_message timestamptz NOT NULL,  -- when it went silent
    back_at      timestamptz,           -- when it spoke again
    PRIMARY KEY (facility_id, host_id)
);
CREATE INDEX facility_incident_hosts_host ON facility_incident_hosts (host_id);
CREATE INDEX facility_incident_hosts_customer ON facility_incident_hosts (customer_id);
CREATE INDEX hosts_rack ON hosts (site_id, rack);

-- A BMC (published by the SNMP proxy as its own host) is linked to the server it manages
-- by the chassis serial both births report; the sweep reads the BMC's word through this.
CREATE INDEX host_state_chassis_serial ON host_state ((chassis->>'serial'));
