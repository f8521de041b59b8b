-- Inventory history from birth, predictions (proactive jobs without an SLA clock), the
-- state the collector's stateful rules keep between messages, and the BMC's power word.
-- predictions.state mirrors schemas/states.py PredictionState.

-- The seq of the last birth that listed a component / that a host sent: a new birth is
-- compared with the previous one by seq, never by arrival order.
ALTER TABLE components ADD COLUMN birth_seq bigint;
ALTER TABLE host_state ADD COLUMN birth_seq bigint;

-- Append-only: what changed in a host's inventory between two births. A replacement
-- (a new serial in a slot) is what verifies a fix; a missing part opens an incident.
CREATE TABLE inventory_changes (
    id          bigserial PRIMARY KEY,
    host_id     text NOT NULL REFERENCES hosts(id),
    component   text NOT NULL,  -- the id in the newer birth (the old id when missing)
    kind        text NOT NULL,
    slot        text,
    change      text NOT NULL CHECK (change IN ('added', 'replaced', 'missing', 'returned')),
    old_serial  text,
    new_serial  text,
    at          timestamptz NOT NULL,  -- the birth's ts
    seq         bigint NOT NULL,       -- the birth's seq
    prev_seq    bigint                 -- the birth it was compared with
);
CREATE INDEX inventory_changes_host ON inventory_changes (host_id, at);

CREATE TABLE predictions (
    id           bigserial PRIMARY KEY,
    host_id      text NOT NULL REFERENCES hosts(id),
    site_id      text NOT NULL REFERENCES sites(id),
    customer_id  text NOT NULL REFERENCES customers(id),
    component    text NOT NULL,
    kind         text NOT NULL,
    prediction   text NOT NULL,
    rule         text NOT NULL,
    slot         text,
    serial       text,
    state        text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'dismissed', 'done')),
    detected_at  timestamptz NOT NULL,  -- the evidence that first proved it
    last_seen    timestamptz NOT NULL,  -- the newest evidence
    repeats      integer NOT NULL DEFAULT 1,
    evidence     jsonb NOT NULL DEFAULT '{}',  -- the first evidence
    last_evidence jsonb NOT NULL DEFAULT '{}',
    closed_at    timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);
-- One open prediction per (host, component, prediction); a repeat updates it.
CREATE UNIQUE INDEX predictions_one_open ON predictions (host_id, component, prediction)
    WHERE state = 'open';
CREATE INDEX predictions_customer ON predictions (customer_id, detected_at DESC);

-- What a stateful rule remembers of one component (baselines, streaks, windows). Written
-- only when it changes; `seq` is the message that last changed it (older ones are stale).
CREATE TABLE rule_state (
    host_id     text NOT NULL REFERENCES hosts(id),
    component   text NOT NULL,
    rule        text NOT NULL,
    seq         bigint NOT NULL,
    state       jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (host_id, component, rule)
);

-- The newest power state a BMC reported for the host it belongs to (bmc.power_on).
CREATE TABLE bmc_power (
    host_id     text PRIMARY KEY REFERENCES hosts(id),
    power_on    boolean NOT NULL,
    ts          timestamptz NOT NULL,
    reporter    text NOT NULL  -- the host (SNMP proxy) whose telemetry carried it
);
