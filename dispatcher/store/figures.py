"""The managers' figures, read in SQL from the incident and job times (writes nothing).

Each measure is one query over its rows of the last 30 days: both periods by FILTER, every
group by GROUPING SETS (all, per site, per technician), medians and p90s by percentile_cont.
The times are the timeline's own columns: a job's dispatch and acknowledgement, the first
arrival of any job of the incident, the incident's detection and verified fix (pauses not
left out, like /metrics). The technician of a fix, a kept promise or a credit is the
incident's assignee at the fix. Sites are scoped by the caller (None: every site).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from psycopg.rows import tuple_row

from dispatcher.domain import figures as f
from dispatcher.store import Conn

SCOPE = "(%(sites)s::text[] IS NULL OR i.site_id = ANY(%(sites)s))"
_ROWS = {  # measure -> (site, tech, at, seconds, kept) rows of the last 30 days
    "fix": "SELECT i.site_id, coalesce(i.assignee, '(none)'), i.verified_at,"
           " date_part('epoch', i.verified_at - i.detected_at), i.verified_at <= i.deadline"
           " FROM incidents i WHERE i.verified_at >= %(d30)s AND i.verified_at <= %(now)s"
           f" AND {SCOPE}",
    "ack": "SELECT i.site_id, j.technician_id, j.acknowledged_at,"
           " date_part('epoch', j.acknowledged_at - j.dispatched_at), NULL::boolean"
           " FROM jobs j JOIN incidents i ON i.id = j.incident_id WHERE j.acknowledged_at"
           f" >= %(d30)s AND j.acknowledged_at <= %(now)s AND {SCOPE}",
    "arrive": "SELECT site, tech, at, v, NULL::boolean FROM (SELECT DISTINCT ON (i.id)"
              " i.site_id AS site, j.technician_id AS tech, j.on_site_at AS at,"
              " date_part('epoch', j.on_site_at - i.detected_at) AS v FROM incidents i"
              " JOIN jobs j ON j.incident_id = i.id WHERE j.on_site_at IS NOT NULL"
              f" AND {SCOPE} ORDER BY i.id, j.on_site_at) first"
              " WHERE at >= %(d30)s AND at <= %(now)s",
}
_SPREAD = ", ".join(
    f"count(*) FILTER (WHERE at >= %(d{d})s) AS n{d},"
    f" count(*) FILTER (WHERE at >= %(d{d})s AND kept) AS k{d},"
    f" percentile_cont(0.5) WITHIN GROUP (ORDER BY v) FILTER (WHERE at >= %(d{d})s) AS p50_{d},"
    f" percentile_cont(0.9) WITHIN GROUP (ORDER BY v) FILTER (WHERE at >= %(d{d})s) AS p90_{d}"
    for d in f.PERIODS)
_MEASURE = ("SELECT GROUPING(site, tech), site, tech, " + _SPREAD +
            " FROM ({rows}) AS x(site, tech, at, v, kept)"
            " GROUP BY GROUPING SETS ((), (site), (tech))")
_CREDITS = ("SELECT GROUPING(site, tech), site, tech, currency, count(*), sum(amount)"
            " FROM (SELECT i.site_id, coalesce(i.assignee, '(none)'), c.currency, c.amount"
            " FROM credits c JOIN incidents i ON i.id = c.incident_id WHERE c.issued_at >="
            f" %(month)s AND c.issued_at <= %(now)s AND {SCOPE}) AS x(site, tech, currency,"
            " amount) GROUP BY GROUPING SETS ((currency), (site, currency), (tech, currency))")
_DAILY = ("SELECT (i.verified_at AT TIME ZONE 'UTC')::date, count(*),"
          " count(*) FILTER (WHERE i.verified_at <= i.deadline) FROM incidents i"
          " WHERE i.verified_at >= %(day0)s AND i.verified_at <= %(now)s"
          f" AND {SCOPE} GROUP BY 1")

Group = tuple[str, str | None]  # (scope, key)


def _group(mask: int, site: str | None, tech: str | None) -> Group:
    """GROUPING(site, tech): 3 the whole scope, 1 one site, 2 one technician."""
    if mask == 3:
        return ("overall", None)
    return ("site", site) if mask == 1 else ("technician", tech)


def _params(now: datetime, sites: Sequence[str] | None) -> dict[str, Any]:
    days = f.days(now, {})
    day0 = datetime.combine(days[0].day, datetime.min.time(), now.tzinfo)
    return {"now": now, "sites": None if sites is None else list(sites), "day0": day0,
            "month": f.month_start(now), **{f"d{d}": f.since(now, d) for d in f.PERIODS}}


def rows(conn: Conn, now: datetime, sites: Sequence[str] | None) -> list[f.Row]:
    """Every group's figures over both periods, ordered for reading."""
    cur, p = conn.cursor(row_factory=tuple_row), _params(now, sites)
    spreads: dict[tuple[Group, int], dict[str, f.Spread]] = {}
    kept: dict[tuple[Group, int], tuple[int, int]] = {}
    for measure, inner in _ROWS.items():
        for r in cur.execute(_MEASURE.format(rows=inner), p).fetchall():
            g = _group(r[0], r[1], r[2])
            for n, d in enumerate(f.PERIODS):
                count, k, p50, p90 = r[3 + 4 * n: 7 + 4 * n]
                spreads.setdefault((g, d), {})[measure] = f.Spread(int(count), p50, p90)
                if measure == "fix":
                    kept[(g, d)] = (int(count), int(k))
    credits: dict[Group, tuple[int, dict[str, str]]] = {}
    for mask, site, tech, currency, count, amount in cur.execute(_CREDITS, p).fetchall():
        n, amounts = credits.get(_group(mask, site, tech), (0, {}))
        amounts[currency] = f"{amount:.2f}"
        credits[_group(mask, site, tech)] = (n + int(count), amounts)
    groups = {g for g, _ in spreads} | set(credits) | {("overall", None)}
    out = []
    for g in groups:
        for d in f.PERIODS:
            fixed, k = kept.get((g, d), (0, 0))
            n, amounts = credits.get(g, (0, {}))
            out.append(f.Row(g[0], g[1], d, fixed, k, spreads.get((g, d), {}), n, amounts))
    return f.order(out)


def daily(conn: Conn, now: datetime, sites: Sequence[str] | None) -> list[f.Day]:
    """Fixes and kept promises per UTC day, the last 30 days."""
    found: dict[date, tuple[int, int]] = {
        r[0]: (int(r[1]), int(r[2])) for r in conn.cursor(row_factory=tuple_row).execute(
            _DAILY, _params(now, sites))}
    return f.days(now, found)


def scope_of(conn: Conn, person: str | None) -> list[str] | None:
    """The sites a manager-token person oversees: all (None) for an executive, else the
    sites they manage or work at."""
    cur = conn.cursor(row_factory=tuple_row)
    row = cur.execute("SELECT role FROM technicians WHERE id = %s", (person,)).fetchone()
    if row is not None and row[0] == "executive":
        return None
    return [r[0] for r in cur.execute(
        "SELECT id FROM sites WHERE manager_id = %s UNION SELECT site_id FROM technicians"
        " WHERE id = %s AND role = 'manager' ORDER BY 1", (person, person))]
