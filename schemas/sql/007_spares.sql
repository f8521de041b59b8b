-- Spares: an append-only ledger of every stock change, one reservation per incident, and
-- low-stock alerts; plus the per-site numbers the assignment scores with.
-- `spares.count` is what stands on the shelf; available = count - live reservations.

-- Every change of a (site, part) count: import, adjust, consume. Never updated or deleted.
CREATE TABLE spare_movements (
    id           bigserial PRIMARY KEY,
    site_id      text NOT NULL REFERENCES sites(id),
    part         text NOT NULL,
    delta        integer NOT NULL,
    count_after  integer NOT NULL CHECK (count_after >= 0),
    reason       text NOT NULL,
    actor        text NOT NULL,
    incident_id  bigint REFERENCES incidents(id),
    at           timestamptz NOT NULL
);
CREATE INDEX spare_movements_part ON spare_movements (site_id, part, id);

CREATE FUNCTION spare_movements_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'spare_movements is append-only: record a new movement instead';
END $$;
CREATE TRIGGER spare_movements_no_change BEFORE UPDATE OR DELETE ON spare_movements
    FOR EACH ROW EXECUTE FUNCTION spare_movements_append_only();

-- A count changed outside dispatcher/spares.py (the fleet file's `spares:`, hand-written SQL)
-- is still a movement: the ledger cannot be bypassed. spares.py writes its own movements,
-- with reason and actor, and says so with the transaction-local setting hourglass.ledger.
CREATE FUNCTION spares_out_of_band() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('hourglass.ledger', true) IS DISTINCT FROM 'on'
       AND (TG_OP = 'INSERT' OR NEW.count <> OLD.count) THEN
        INSERT INTO spare_movements (site_id, part, delta, count_after, reason, actor, at)
        VALUES (NEW.site_id, NEW.part,
                NEW.count - CASE WHEN TG_OP = 'INSERT' THEN 0 ELSE OLD.count END,
                NEW.count, 'set outside the spares commands (fleet file or SQL)',
                current_user, now());
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER spares_ledger AFTER INSERT OR UPDATE OF count ON spares
    FOR EACH ROW EXECUTE FUNCTION spares_out_of_band();

-- The spare held for an incident from dispatch until the verified fix (consumed) or the
-- incident ends without it (released). One per incident, enforced by the key.
CREATE TABLE spare_reservations (
    incident_id  bigint PRIMARY KEY REFERENCES incidents(id),
    site_id      text NOT NULL,
    part         text NOT NULL,
    state        text NOT NULL DEFAULT 'reserved'
                   CHECK (state IN ('reserved', 'consumed', 'released')),
    reserved_at  timestamptz NOT NULL,
    ended_at     timestamptz,
    CHECK ((state = 'reserved') = (ended_at IS NULL)),
    FOREIGN KEY (site_id, part) REFERENCES spares (site_id, part)
);
CREATE INDEX spare_reservations_live ON spare_reservations (site_id, part)
    WHERE state = 'reserved';

-- A (site, part) whose available count fell to the site's threshold; one row per crossing.
CREATE TABLE spare_alerts (
    id         bigserial PRIMARY KEY,
    site_id    text NOT NULL REFERENCES sites(id),
    part       text NOT NULL,
    kind       text NOT NULL,
    available  integer NOT NULL,
    threshold  integer NOT NULL,
    at         timestamptz NOT NULL
);
CREATE INDEX spare_alerts_site ON spare_alerts (site_id, at DESC);

-- Per-site numbers of the scoring (set by the fleet file): walking minutes to a rack by
-- room ("*" for any other room), minutes to fetch a spare from the store room, and the
-- available count at which a part raises a low-stock alert.
ALTER TABLE sites ADD COLUMN walk_minutes jsonb NOT NULL DEFAULT '{}';
ALTER TABLE sites ADD COLUMN spare_pickup_minutes double precision NOT NULL DEFAULT 3
    CHECK (spare_pickup_minutes >= 0);
ALTER TABLE sites ADD COLUMN spares_low_stock integer NOT NULL DEFAULT 1
    CHECK (spares_low_stock >= 0);
