-- Proactive jobs: a prediction (006) handed to a technician as planned work, without an SLA
-- clock, a credit or an escalation timer. Kept apart from `jobs`/`incidents`, whose timers
-- and credits assume an SLA. proactive_jobs.state mirrors dispatcher/domain/proactive.py
-- ProactiveState.

CREATE TABLE proactive_jobs (
    id               bigserial PRIMARY KEY,
    prediction_id    bigint NOT NULL REFERENCES predictions(id),
    site_id          text NOT NULL REFERENCES sites(id),
    technician_id    text NOT NULL REFERENCES technicians(id),
    state            text NOT NULL DEFAULT 'planned'
                       CHECK (state IN ('planned', 'acknowledged', 'done', 'dismissed')),
    spare_part       text,           -- the spare reserved for it, if any
    part_note        text,           -- why no spare was reserved (e.g. the last one is kept)
    planned_at       timestamptz NOT NULL,
    acknowledged_at  timestamptz,
    finished_at      timestamptz,
    finished_by      text,           -- technician:<id>, manager:<id> or telemetry
    new_serial       text,
    note             text,           -- the technician's note at done, or the dismissal reason
    reminded_at      timestamptz,    -- the last daily reminder (no other escalation)
    CHECK ((state IN ('done', 'dismissed')) = (finished_at IS NOT NULL))
);
-- One live proactive job per prediction: a second dispatcher's insert fails.
CREATE UNIQUE INDEX proactive_jobs_one_live ON proactive_jobs (prediction_id)
    WHERE state IN ('planned', 'acknowledged');
CREATE INDEX proactive_jobs_technician ON proactive_jobs (technician_id, state);

-- Nobody fit (no one on shift with the skill): plan again then, not on every pass.
ALTER TABLE predictions ADD COLUMN next_plan_at timestamptz;

-- A spare may be held for a proactive job too: one owner per reservation, either kind.
ALTER TABLE spare_reservations DROP CONSTRAINT spare_reservations_pkey;
ALTER TABLE spare_reservations ALTER COLUMN incident_id DROP NOT NULL;
ALTER TABLE spare_reservations ADD COLUMN proactive_job_id bigint REFERENCES proactive_jobs(id);
ALTER TABLE spare_reservations ADD CONSTRAINT spare_reservations_one_owner
    CHECK ((incident_id IS NULL) <> (proactive_job_id IS NULL));
CREATE UNIQUE INDEX spare_reservations_incident ON spare_reservations (incident_id);
CREATE UNIQUE INDEX spare_reservations_proactive ON spare_reservations (proactive_job_id);
ALTER TABLE spare_movements ADD COLUMN proactive_job_id bigint REFERENCES proactive_jobs(id);
