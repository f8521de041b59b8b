-- Timers as rows and clock pauses. Every clock of the promise is a timestamp here, so any
-- dispatcher may die at any instant and another picks the timer up (FOR UPDATE SKIP LOCKED).
-- timers.kind mirrors dispatcher.domain.policy.TimerKind, pauses.reason PauseReason.

CREATE TABLE timers (
    id           bigserial PRIMARY KEY,
    incident_id  bigint NOT NULL REFERENCES incidents(id),
    kind         text NOT NULL CHECK (kind IN ('ack_timeout', 'risk', 'breach', 'verify_timeout')),
    guard        text NOT NULL,  -- what the timer expects still to hold; checked before acting
    due_at       timestamptz NOT NULL,
    created_at   timestamptz NOT NULL,
    fired_at     timestamptz,
    fired_by     text,  -- which dispatcher fired it
    outcome      text CHECK (outcome IN ('acted', 'nobody', 'stale')),
    CHECK ((fired_at IS NULL) = (outcome IS NULL)),
    UNIQUE (incident_id, kind, guard)
);
-- The claim query reads only unfired timers, soonest first.
CREATE INDEX timers_due ON timers (due_at) WHERE fired_at IS NULL;
CREATE INDEX timers_incident ON timers (incident_id);

-- Pauses the policy excludes from the clock, each with its reason, actor, start and end.
CREATE TABLE pauses (
    id           bigserial PRIMARY KEY,
    incident_id  bigint NOT NULL REFERENCES incidents(id),
    reason       text NOT NULL CHECK (reason IN
                   ('customer_denied_access', 'customer_maintenance_window')),
    started_at   timestamptz NOT NULL,
    started_by   text NOT NULL,
    ended_at     timestamptz,
    ended_by     text,
    CHECK (ended_at IS NULL OR ended_at >= started_at)
);
CREATE UNIQUE INDEX pauses_one_open ON pauses (incident_id) WHERE ended_at IS NULL;
CREATE INDEX pauses_incident ON pauses (incident_id, started_at);

-- The dispatcher re-plans an incident's timers whenever updated_at moves past planned_at.
ALTER TABLE incidents ADD COLUMN planned_at timestamptz;
CREATE INDEX incidents_to_plan ON incidents (id)
    WHERE planned_at IS DISTINCT FROM updated_at AND state NOT IN ('verified', 'closed');
