-- Customer self-service on /status: cage access where the contract asks for it, and the
-- customer's own contacts (who gets told) beside the staff's in `contacts`.

-- A contract's cage rule: 'always' (our technicians may enter the customer's cage without
-- asking: the default, as before) or 'ask' (the customer grants or denies it per incident).
ALTER TABLE customers ADD COLUMN cage_access text NOT NULL DEFAULT 'always'
    CHECK (cage_access IN ('always', 'ask'));

-- The customer's decision for one incident; the latest one counts (a denial can be turned
-- into a grant). Each decision is also an incident event ('cage_access') on the timeline.
CREATE TABLE cage_decisions (
    incident_id  bigint PRIMARY KEY REFERENCES incidents(id),
    decision     text NOT NULL CHECK (decision IN ('granted', 'denied')),
    decided_by   text NOT NULL,  -- the actor: customer:<id>, or customer:<id>:<email>
    decided_at   timestamptz NOT NULL
);

-- The customer's own contacts live in `contacts` too (the outbox reads only that table):
-- person_id is 'customer:<id>:email:<address>' (one row per address) or
-- 'customer:<id>:webhook' (one webhook per customer), and customer_id names whose they are;
-- staff and account people (the fleet file's) keep customer_id NULL. `id`: the API's handle.
ALTER TABLE contacts ADD COLUMN id bigserial UNIQUE;
ALTER TABLE contacts ADD COLUMN customer_id text REFERENCES customers(id);
ALTER TABLE contacts ADD COLUMN added_at timestamptz;
ALTER TABLE contacts ADD COLUMN added_by text;
CREATE INDEX contacts_customer ON contacts (customer_id) WHERE customer_id IS NOT NULL;
