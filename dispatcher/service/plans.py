"""A site as scoring sees it: the layout (walking and pickup minutes), the technicians'
profiles (learned repair times, when each is free of their live jobs), the zone and the
manager. Read for the assignment's bursts, a timer's reassignment and a manager's."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from dispatcher.domain import score
from dispatcher.store import LIVE_JOB, Conn, technicians, tz

HISTORY = 25  # the latest jobs per technician and kind that the repair median learns from


@dataclass(frozen=True)
class SitePlan:
    """What scoring a site's jobs needs: its layout, people, zone and manager."""

    site: str
    layout: score.Layout
    profiles: list[score.Profile]
    zone: Any
    manager: str | None


def site_plan(conn: Conn, site: str, now: datetime) -> SitePlan | None:
    """The site's layout and technicians' profiles at `now`; None for an unknown site."""
    info = conn.execute("SELECT timezone, manager_id, walk_minutes, spare_pickup_minutes"
                        " FROM sites WHERE id = %s", (site,)).fetchone()
    if info is None:
        return None
    zone, manager, walk, pickup = tz(info[0]), info[1], info[2] or {}, float(info[3])
    layout = score.Layout({str(k): float(v) for k, v in walk.items()}, pickup)
    return SitePlan(site, layout, profiles(conn, site, layout, now, zone), zone, manager)


def profiles(conn: Conn, site: str, layout: score.Layout, now: datetime,
             zone: Any) -> list[score.Profile]:
    """The site's technicians with learned repair times and when they are free."""
    techs = technicians(conn, site)
    samples: dict[tuple[str, str], list[timedelta]] = {}
    for tid, kind, took in conn.execute(
            "SELECT technician_id, kind, took FROM (SELECT j.technician_id, i.kind,"
            " j.replaced_at - j.on_site_at AS took, row_number() OVER (PARTITION BY"
            " j.technician_id, i.kind ORDER BY j.replaced_at DESC) AS n FROM jobs j JOIN"
            " incidents i ON i.id = j.incident_id WHERE i.site_id = %s AND j.replaced_at >"
            " j.on_site_at) t WHERE n <= %s", (site, HISTORY)):
        samples.setdefault((tid, kind), []).append(took)
    live: dict[str, list[tuple[str, str, datetime, str | None]]] = {}
    for tid, kind, state, since, room in conn.execute(
            "SELECT j.technician_id, i.kind, j.state, j.dispatched_at, h.room FROM jobs j"
            " JOIN incidents i ON i.id = j.incident_id JOIN hosts h ON h.id = i.host_id"
            f" WHERE i.site_id = %s AND j.state IN {LIVE_JOB}", (site,)):
        live.setdefault(tid, []).append((kind, state, since, room))
    out = []
    for t in techs:
        learned = {k: v for (tid, k), s in samples.items() if tid == t.id
                   if (v := score.learned(s, k)) is not None}
        p = score.Profile(t, now, learned, score.shift_end(t, now, zone))
        left = sum((score.remaining(k, st, since, p, layout, room, now)
                    for k, st, since, room in live.get(t.id, [])), timedelta(0))
        out.append(replace(p, busy_until=now + left))
    return out


