-- Proactive contact and claims on /status (issue 16, item 4): each customer's maintenance
-- windows, the slot a proactive job is planned into and the customer's answer to it, and
-- the claim notice's end as a step recorded once.

-- A customer's maintenance windows: [{days: [tue, thu], start: "02:00", end: "05:00",
-- timezone: Europe/Berlin}] (dispatcher/domain/windows.py validates them). `windows` is what
-- the planner uses; `fleet_windows` the fleet file's value when last loaded, so a reload of an
-- unchanged file leaves a customer's own edit on /status in place, and a changed file wins.
CREATE TABLE maintenance_windows (
    customer_id    text PRIMARY KEY REFERENCES customers(id),
    windows        jsonb NOT NULL DEFAULT '[]',
    fleet_windows  jsonb,
    updated_at     timestamptz NOT NULL,
    updated_by     text NOT NULL  -- 'fleet' or customer:<id>
);

-- The replacement's slot inside a window (NULL: no window, done when a technician is free)
-- and the customer's answer: proposed until accepted or declined (moving keeps it proposed
-- until accepted). plan_state mirrors dispatcher/domain/windows.py PlanState.
ALTER TABLE proactive_jobs
    ADD COLUMN slot_start        timestamptz,
    ADD COLUMN slot_end          timestamptz,
    ADD COLUMN plan_state        text NOT NULL DEFAULT 'proposed'
                                   CHECK (plan_state IN ('proposed', 'accepted', 'declined')),
    ADD COLUMN plan_answered_at  timestamptz,
    ADD COLUMN plan_answered_by  text,
    ADD CHECK ((slot_start IS NULL) = (slot_end IS NULL));

-- The notice's end date arrived: recorded once (the dispatcher's pass sets it in the same
-- transaction as the claim event and its messages).
ALTER TABLE claims ADD COLUMN notice_ended_at timestamptz;
CREATE INDEX claims_notice_due ON claims (notice_effective)
    WHERE notice_effective IS NOT NULL AND notice_ended_at IS NULL;
