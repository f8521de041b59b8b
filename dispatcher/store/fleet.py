"""Writes a parsed Fleet to PostgreSQL: one transaction of upserts, safe to run again.

Nothing is deleted: a person, host or spare missing from the file keeps its row (incidents
and jobs refer to them). `active` on technicians is left to whoever manages it.
"""

from __future__ import annotations

from datetime import time
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from dispatcher.fleet import END_OF_DAY, AccountPerson, Fleet, Technician

_SITES = (
    "INSERT INTO sites (id, name, timezone, manager_id, walk_minutes, spare_pickup_minutes,"
    " spares_low_stock) VALUES (%s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, timezone = EXCLUDED.timezone,"
    " manager_id = EXCLUDED.manager_id, walk_minutes = EXCLUDED.walk_minutes,"
    " spare_pickup_minutes = EXCLUDED.spare_pickup_minutes,"
    " spares_low_stock = EXCLUDED.spares_low_stock"
)
_TECHNICIANS = (
    "INSERT INTO technicians (id, name, site_id, role, skills, shift_start, shift_end)"
    " VALUES (%s, %s, %s, %s, %s, %s::time, %s::time)"
    " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, site_id = EXCLUDED.site_id,"
    " role = EXCLUDED.role, skills = EXCLUDED.skills, shift_start = EXCLUDED.shift_start,"
    " shift_end = EXCLUDED.shift_end"
)
_CUSTOMERS = (
    "INSERT INTO customers (id, name, account_manager, sla_minutes, credit_percent,"
    " credit_period_minutes, credit_cap_percent, cage_access)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, cage_access = EXCLUDED.cage_access,"
    " account_manager = EXCLUDED.account_manager, sla_minutes = EXCLUDED.sla_minutes,"
    " credit_percent = EXCLUDED.credit_percent,"
    " credit_period_minutes = EXCLUDED.credit_period_minutes,"
    " credit_cap_percent = EXCLUDED.credit_cap_percent"
)
_HOSTS = (
    "INSERT INTO hosts (id, customer_id, site_id, room, rack, unit, monthly_fee, currency,"
    " pdu, switch, bmc_host) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (id) DO UPDATE SET customer_id = EXCLUDED.customer_id,"
    " site_id = EXCLUDED.site_id, room = EXCLUDED.room, rack = EXCLUDED.rack,"
    " unit = EXCLUDED.unit, monthly_fee = EXCLUDED.monthly_fee, currency = EXCLUDED.currency,"
    " pdu = EXCLUDED.pdu, switch = EXCLUDED.switch, bmc_host = EXCLUDED.bmc_host"
)
_SPARES = (
    "INSERT INTO spares (site_id, part, kind, count, location) VALUES (%s, %s, %s, %s, %s)"
    " ON CONFLICT (site_id, part) DO UPDATE SET kind = EXCLUDED.kind, count = EXCLUDED.count,"
    # a location the file leaves out stays as `hourglass spares locate` set it
    " location = coalesce(EXCLUDED.location, spares.location)"
)


def pg_time(value: time) -> str:
    """A shift bound as PostgreSQL text; END_OF_DAY becomes '24:00' (Python has no 24:00)."""
    return "24:00" if value == END_OF_DAY else value.isoformat(timespec="minutes")


def apply_fleet(conn: psycopg.Connection[Any], fleet: Fleet) -> dict[str, int]:
    """Upsert the whole fleet in one transaction; return the rows written per table."""
    rows: dict[str, tuple[str, list[tuple[Any, ...]]]] = {
        # Order follows the foreign keys: technicians and hosts need sites, hosts customers.
        "sites": (_SITES, [(s.id, s.name, s.timezone, s.manager, Jsonb(dict(s.walk_minutes)),
                            s.spare_pickup_minutes, s.spares_low_stock) for s in fleet.sites]),
        "technicians": (_TECHNICIANS, [
            (t.id, t.name, t.site, t.role.value, list(t.skills), pg_time(t.shift_start),
             pg_time(t.shift_end)) for t in fleet.technicians]),
        "customers": (_CUSTOMERS, [
            (c.id, c.name, c.account_manager, c.contract.sla_minutes, c.contract.credit_percent,
             c.contract.credit_period_minutes, c.contract.credit_cap_percent,
             c.contract.cage_access) for c in fleet.customers]),
        "hosts": (_HOSTS, [
            (h.id, h.customer, h.site, h.room, h.rack, h.unit, h.monthly_fee, h.currency,
             h.pdu, h.switch, h.bmc) for h in fleet.hosts]),
        "spares": (_SPARES, [(p.site, p.part, p.kind, p.count, p.location)
                              for p in fleet.spares]),
    }
    with conn.transaction(), conn.cursor() as cur:
        for sql, params in rows.values():
            if params:
                cur.executemany(sql, params)
        people = _apply_people(cur, fleet)
        people["maintenance_windows"] = _apply_windows(cur, fleet)
    return {**{table: len(params) for table, (_, params) in rows.items()}, **people}


def _apply_windows(cur: psycopg.Cursor[Any], fleet: Fleet) -> int:
    """Each customer's maintenance windows the file declares. A reload of the same file keeps
    what the customer set on /status since; a file whose windows changed replaces them."""
    rows = [(c.id, Jsonb([w.as_json() for w in c.maintenance_windows]))
            for c in fleet.customers if c.maintenance_windows is not None]
    cur.executemany(
        "INSERT INTO maintenance_windows (customer_id, windows, fleet_windows, updated_at,"
        " updated_by) VALUES (%s, %s, %s, now(), 'fleet') ON CONFLICT (customer_id) DO UPDATE"
        " SET windows = EXCLUDED.windows, fleet_windows = EXCLUDED.fleet_windows,"
        " updated_at = EXCLUDED.updated_at, updated_by = 'fleet'"
        " WHERE maintenance_windows.fleet_windows IS DISTINCT FROM EXCLUDED.fleet_windows",
        [(c, w, w) for c, w in rows])
    return len(rows)


def _apply_people(cur: psycopg.Cursor[Any], fleet: Fleet) -> dict[str, int]:
    """Account people, contact channels and account teams: the file is the truth for each
    person and customer it declares (a channel or team member it drops is removed)."""
    cur.executemany("INSERT INTO account_people (id, name) VALUES (%s, %s)"
                    " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name",
                    [(a.id, a.name) for a in fleet.account_people])
    persons: list[Technician | AccountPerson] = [*fleet.technicians, *fleet.account_people]
    channels = [(p.id, channel, address) for p in persons
                for channel, address in (("email", p.email), ("webhook", p.webhook)) if address]
    cur.execute("DELETE FROM contacts WHERE person_id = ANY(%s)", ([p.id for p in persons],))
    cur.executemany("INSERT INTO contacts (person_id, channel, address) VALUES (%s, %s, %s)",
                    channels)
    team = [(c.id, member) for c in fleet.customers for member in c.account_team]
    cur.execute("DELETE FROM account_team WHERE customer_id = ANY(%s)",
                ([c.id for c in fleet.customers],))
    cur.executemany("INSERT INTO account_team (customer_id, person_id) VALUES (%s, %s)"
                    " ON CONFLICT DO NOTHING", team)
    return {"account_people": len(fleet.account_people), "contacts": len(channels),
            "account_team": len(team)}
