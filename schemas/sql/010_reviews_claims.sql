-- Breach reviews and claims: what went wrong on an incident and what we do about it, and the
-- customer's claim that support failed (investigation, action plan, notice, exit survey).
-- claims.state mirrors schemas.states.ClaimState (tests/domain/test_claims_rules.py).

-- One review per breached incident: the cause and who does what by when.
CREATE TABLE reviews (
    incident_id  bigint PRIMARY KEY REFERENCES incidents(id),
    cause        text NOT NULL CHECK (length(cause) > 0),
    author       text NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);

CREATE TABLE review_items (
    incident_id  bigint NOT NULL REFERENCES reviews(incident_id),
    n            integer NOT NULL CHECK (n >= 1),
    text         text NOT NULL,
    owner        text NOT NULL,  -- a technicians.id or account_people.id, checked on write
    due_at       timestamptz NOT NULL,
    done_at      timestamptz,
    PRIMARY KEY (incident_id, n)
);

CREATE TABLE claims (
    id                bigserial PRIMARY KEY,
    customer_id       text NOT NULL REFERENCES customers(id),
    incident_id       bigint REFERENCES incidents(id),
    text              text NOT NULL,
    state             text NOT NULL DEFAULT 'investigating' CHECK (state IN
                        ('investigating', 'plan_presented', 'plan_accepted', 'plan_rejected',
                         'resolved', 'notice_given', 'exited')),
    manager_id        text REFERENCES technicians(id),
    plan              integer NOT NULL DEFAULT 0,  -- the current plan's number (0: none yet)
    opened_at         timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    notice_at         timestamptz,
    notice_effective  timestamptz,
    CHECK ((notice_at IS NULL) = (notice_effective IS NULL))
);
CREATE INDEX claims_customer ON claims (customer_id, id DESC);
CREATE INDEX claims_open ON claims (id) WHERE state NOT IN ('resolved', 'exited');

-- Every plan ever presented stays, so a rejected plan is still on record.
CREATE TABLE claim_plan_items (
    claim_id  bigint NOT NULL REFERENCES claims(id),
    plan      integer NOT NULL CHECK (plan >= 1),
    n         integer NOT NULL CHECK (n >= 1),
    text      text NOT NULL,
    owner     text NOT NULL,  -- a technicians.id or account_people.id, checked on write
    due_at    timestamptz NOT NULL,
    done_at   timestamptz,
    PRIMARY KEY (claim_id, plan, n)
);

-- Append-only timeline of a claim, as incident_events is of an incident.
CREATE TABLE claim_events (
    id        bigserial PRIMARY KEY,
    claim_id  bigint NOT NULL REFERENCES claims(id),
    at        timestamptz NOT NULL,
    actor     text NOT NULL,
    kind      text NOT NULL,
    detail    jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX claim_events_claim ON claim_events (claim_id, at, id);

CREATE TABLE exit_surveys (
    claim_id  bigint PRIMARY KEY REFERENCES claims(id),
    score     integer NOT NULL CHECK (score BETWEEN 0 AND 10),
    comment   text,
    at        timestamptz NOT NULL
);

-- NPS by period reads surveys by time.
CREATE INDEX surveys_at ON surveys (at);

-- /ops asks for breached incidents still without a review; this keeps it off a full scan.
CREATE INDEX incidents_breached ON incidents (deadline)
    WHERE verified_at IS NULL OR verified_at > deadline;
