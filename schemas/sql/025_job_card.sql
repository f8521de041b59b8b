-- The technician's job card: where a spare stands, the photos taken at the rack, and a
-- technician's requests for a clock pause with the manager's answer.

-- Where a (site, part) stands in the store room: free text from the fleet file or
-- `hourglass spares locate` ("Store room B, shelf 3, bin 12"); NULL when not given.
ALTER TABLE spares ADD COLUMN location text CHECK (length(location) <= 64);

-- A photo of the work, re-encoded by the dispatcher (metadata stripped, at most 2048 px on
-- the long side) with a small thumbnail for /ops. Capped so a row stays a photo: the
-- re-encoded JPEG of a 2048 px picture is well under 4 MB.
CREATE TABLE job_photos (
    id               bigserial PRIMARY KEY,
    incident_id      bigint NOT NULL REFERENCES incidents(id),
    job_id           bigint NOT NULL REFERENCES jobs(id),
    author           text NOT NULL,  -- technician:<id> or manager:<id>
    taken_at         timestamptz NOT NULL,  -- when it arrived
    content_type     text NOT NULL DEFAULT 'image/jpeg' CHECK (content_type = 'image/jpeg'),
    width            integer NOT NULL CHECK (width BETWEEN 1 AND 2048),
    height           integer NOT NULL CHECK (height BETWEEN 1 AND 2048),
    image            bytea NOT NULL CHECK (octet_length(image) <= 4194304),
    thumb            bytea NOT NULL CHECK (octet_length(thumb) <= 262144),
    idempotency_key  text,  -- a retried upload of the same tap stores one photo
    UNIQUE (job_id, idempotency_key)
);
CREATE INDEX job_photos_incident ON job_photos (incident_id, id);

-- A technician asks the site manager to pause the clock; the manager grants it (the pause
-- route pauses the clock and marks the request granted) or refuses it with a reason.
CREATE TABLE pause_requests (
    id             bigserial PRIMARY KEY,
    incident_id    bigint NOT NULL REFERENCES incidents(id),
    job_id         bigint REFERENCES jobs(id),
    technician_id  text NOT NULL REFERENCES technicians(id),
    reason         text NOT NULL,
    note           text CHECK (length(note) <= 1000),
    requested_at   timestamptz NOT NULL,
    state          text NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'granted', 'refused')),
    answered_at    timestamptz,
    answered_by    text,
    answer         text CHECK (length(answer) <= 500),
    CHECK ((state = 'pending') = (answered_at IS NULL))
);
-- At most one request waits per incident.
CREATE UNIQUE INDEX pause_requests_pending ON pause_requests (incident_id)
    WHERE state = 'pending';
CREATE INDEX pause_requests_state ON pause_requests (state, requested_at);
