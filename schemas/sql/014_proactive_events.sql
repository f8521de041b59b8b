-- Proactive jobs' own timeline: what happened to planned work besides its state, e.g. its
-- spare taken for a failure incident, or the job moved to another technician because its
-- technician went off shift or inactive. Append-only, like incident_events.

CREATE TABLE proactive_job_events (
    id                bigserial PRIMARY KEY,
    proactive_job_id  bigint NOT NULL REFERENCES proactive_jobs(id),
    at                timestamptz NOT NULL,
    actor             text NOT NULL,
    kind              text NOT NULL,   -- spare_taken, replanned
    detail            jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX proactive_job_events_job ON proactive_job_events (proactive_job_id, id);
