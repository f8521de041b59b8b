-- Notifications: who can be reached how, each customer's account team, the outbox of
-- messages and every delivery attempt, and the notifier's cursor over the timeline.

-- A person's channels: person_id is a technicians.id (technician, manager, executive) or an
-- account person's id (customers.account_manager and account_team are not technicians).
CREATE TABLE contacts (
    person_id  text NOT NULL,
    channel    text NOT NULL CHECK (channel IN ('email', 'webhook')),
    address    text NOT NULL,
    PRIMARY KEY (person_id, channel)
);

-- Account people who are not on a site (account managers and their teams), by name.
CREATE TABLE account_people (
    id    text PRIMARY KEY,
    name  text NOT NULL
);

-- Each customer's account team beside its account manager (customers.account_manager).
CREATE TABLE account_team (
    customer_id  text NOT NULL REFERENCES customers(id),
    person_id    text NOT NULL,
    PRIMARY KEY (customer_id, person_id)
);

-- One message to one address. Written inside the transaction that decided it, sent later by
-- the delivery worker outside any clock transaction; (ref, recipient, channel) makes a
-- second enqueue of the same message a no-op. channel 'billing' is the signed credit webhook.
CREATE TABLE outbox (
    id          bigserial PRIMARY KEY,
    ref         text NOT NULL,
    recipient   text NOT NULL,
    channel     text NOT NULL CHECK (channel IN ('email', 'webhook', 'billing')),
    address     text NOT NULL,
    reason      text NOT NULL,
    subject     text NOT NULL,
    body        text NOT NULL,
    created_at  timestamptz NOT NULL,
    due_at      timestamptz NOT NULL,  -- next attempt (or the end of a running attempt's lease)
    attempts    integer NOT NULL DEFAULT 0,
    state       text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
    done_at     timestamptz,
    last_error  text,
    CHECK ((state = 'pending') = (done_at IS NULL)),
    UNIQUE (ref, recipient, channel)
);
CREATE INDEX outbox_due ON outbox (due_at) WHERE state = 'pending';
CREATE INDEX outbox_created ON outbox (created_at DESC, id DESC);

-- Every attempt, with its outcome: 'sent', 'retry' (failed, another attempt is planned) or
-- 'failed' (failed, and the retry limit is reached).
CREATE TABLE deliveries (
    id           bigserial PRIMARY KEY,
    outbox_id    bigint NOT NULL REFERENCES outbox(id),
    attempt      integer NOT NULL,
    started_at   timestamptz NOT NULL,
    outcome      text NOT NULL CHECK (outcome IN ('sent', 'retry', 'failed')),
    status_code  integer,
    error        text,
    duration_ms  double precision NOT NULL,
    worker       text NOT NULL
);
CREATE INDEX deliveries_outbox ON deliveries (outbox_id, attempt);

-- The notifier reads the timeline in (xid, id) order. Its cursor moves only over events of
-- transactions older than every running one (pg_snapshot_xmin), whose set is final, so an
-- event committed late with a lower id is never skipped; events above the cursor that are
-- already visible are notified at once and marked in notified_events (pruned behind the
-- cursor). Both move in the transaction that writes the outbox rows.
ALTER TABLE incident_events ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX incident_events_xid ON incident_events (xid, id);
CREATE TABLE notifier_cursor (
    name      text PRIMARY KEY,
    xid       xid8 NOT NULL,
    event_id  bigint NOT NULL
);
CREATE TABLE notified_events (
    event_id  bigint PRIMARY KEY
);
-- Events from before this migration (all stamped with its xid) are not notified again.
INSERT INTO notifier_cursor (name, xid, event_id)
SELECT 'events', pg_current_xact_id(), coalesce(max(id), 0) FROM incident_events;

-- Low-stock alerts (spare_alerts, 007) already turned into messages: one row per alert.
CREATE TABLE notified_alerts (
    alert_id  bigint PRIMARY KEY,
    at        timestamptz NOT NULL
);

-- A contract's credit period is optional: NULL takes the failure class's period from the
-- dispatcher's configuration (hardware 60 min, power and network 30 by default).
ALTER TABLE customers ALTER COLUMN credit_period_minutes DROP NOT NULL;
ALTER TABLE customers ALTER COLUMN credit_period_minutes DROP DEFAULT;
