-- Facility scope: hosts name the PDU and the switch they hang on, and the host under which
-- the SNMP proxy publishes their BMC or enclosure manager (blades share one, so the chassis
-- serial cannot link them). A facility incident is then a rack, a PDU or a switch;
-- facility_incidents.scope mirrors schemas/states.py FacilityScope.

ALTER TABLE hosts
    ADD COLUMN pdu text,
    ADD COLUMN switch text,
    -- deferred: the fleet file may list a server before the BMC host it names
    ADD COLUMN bmc_host text REFERENCES hosts(id) DEFERRABLE INITIALLY DEFERRED,
    ADD CONSTRAINT hosts_bmc_not_self CHECK (bmc_host <> id);
CREATE INDEX hosts_pdu ON hosts (site_id, pdu) WHERE pdu IS NOT NULL;
CREATE INDEX hosts_switch ON hosts (site_id, switch) WHERE switch IS NOT NULL;
CREATE INDEX hosts_bmc_host ON hosts (bmc_host) WHERE bmc_host IS NOT NULL;

ALTER TABLE facility_incidents
    ADD COLUMN scope text NOT NULL DEFAULT 'rack' CHECK (scope IN ('rack', 'pdu', 'switch')),
    ADD COLUMN scope_id text;
UPDATE facility_incidents SET scope_id = rack WHERE scope_id IS NULL;
-- rack stays filled for readers of 009 (the rack of most linked hosts); only a PDU or a
-- switch whose hosts have no rack leaves it empty
ALTER TABLE facility_incidents
    ALTER COLUMN scope_id SET NOT NULL,
    ALTER COLUMN rack DROP NOT NULL,
    ADD CONSTRAINT facility_rack_scope CHECK (scope <> 'rack' OR rack = scope_id);

-- A writer of 009's shape (a rack, no scope) still works: its rack is the scope id.
CREATE FUNCTION facility_scope_default() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.scope_id IS NULL AND NEW.scope = 'rack' THEN
        NEW.scope_id := NEW.rack;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER facility_scope_default BEFORE INSERT ON facility_incidents
    FOR EACH ROW EXECUTE FUNCTION facility_scope_default();
COMMENT ON COLUMN facility_incidents.rack_hosts IS
    'hosts the scope (rack, PDU or switch) had when it went down';

-- One open facility incident per rack, PDU or switch.
DROP INDEX facility_one_open;
CREATE UNIQUE INDEX facility_one_open ON facility_incidents (site_id, scope, scope_id)
    WHERE state = 'open';
