"""Reads telemetry history: one component's metric, or all of a host's, over a time window.

Read-only, through the `telemetry` view (plain PostgreSQL: the wide rows of migrations
019/029 unpacked; TimescaleDB: the hypertable), so it answers the same on either path and
returns the values exactly as the agents sent them. The statements are the ones
bench/history times (p99 under 50 ms on 20 M values). The collector owns the writes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime

from dispatcher.store import Conn

#: At most this many values a query (a host's day of everything is 115,200): beyond it
#: the caller is told to narrow the window rather than fill a terminal or memory.
MAX_POINTS = 200_000

#: The window, by time and by UTC hour: the hour lets the wide rows' index (host, hour)
#: find only the hours asked for (migration 031); the time then picks the rows in them.
_WINDOW = (" AND time > %(since)s AND time <= %(until)s"
           " AND telemetry_hour(time) >= telemetry_hour(%(since)s)"
           " AND telemetry_hour(time) <= telemetry_hour(%(until)s)")
_SERIES = ("SELECT time, component, metric, value FROM telemetry WHERE host_id = %(host)s"
           " AND component = %(component)s AND metric = %(metric)s" + _WINDOW
           + " ORDER BY time LIMIT %(cap)s")
_COMPONENT = ("SELECT time, component, metric, value FROM telemetry WHERE host_id = %(host)s"
              " AND component = %(component)s" + _WINDOW + " ORDER BY time, metric LIMIT %(cap)s")
_HOST = ("SELECT time, component, metric, value FROM telemetry WHERE host_id = %(host)s"
         + _WINDOW + " ORDER BY time, component, metric LIMIT %(cap)s")


class HistoryError(ValueError):
    """A history question that cannot be answered; the message says what to ask instead."""


@dataclass(frozen=True)
class Point:
    """One stored value."""

    time: datetime
    component: str
    metric: str
    value: float


def points(conn: Conn, host: str, since: datetime, until: datetime,
           component: str | None = None, metric: str | None = None,
           limit: int = MAX_POINTS) -> list[Point]:
    """The host's values in (since, until], oldest first: one metric of one component,
    every metric of one component, or everything the host sent."""
    if since >= until:
        raise HistoryError(f"the window is empty: --since {since:%Y-%m-%dT%H:%M:%SZ} is not"
                           f" before --until {until:%Y-%m-%dT%H:%M:%SZ}")
    if metric is not None and component is None:
        raise HistoryError("a metric needs its component: HOST COMPONENT METRIC")
    cap = limit + 1  # one more, to tell a full answer from a cut one
    ask: dict[str, object] = {"host": host, "since": since, "until": until, "cap": cap}
    if metric is not None:
        rows = conn.execute(_SERIES, {**ask, "component": component, "metric": metric}).fetchall()
    elif component is not None:
        rows = conn.execute(_COMPONENT, {**ask, "component": component}).fetchall()
    else:
        rows = conn.execute(_HOST, ask).fetchall()
    if len(rows) > limit:
        raise HistoryError(f"more than {limit:,} values in that window: ask for one component"
                           " or metric, or a shorter --since/--until")
    if not rows:
        _explain_nothing(conn, host, since, until, component, metric)
    return [Point(r[0], r[1], r[2], r[3]) for r in rows]


def _explain_nothing(conn: Conn, host: str, since: datetime, until: datetime,
                     component: str | None, metric: str | None) -> None:
    """Raise what is wrong with a question that found no values (an unknown host,
    component or metric, or a quiet window); return when the window is simply empty."""
    known = conn.execute("SELECT EXISTS (SELECT 1 FROM hosts WHERE id = %s)",
                         (host,)).fetchone()
    if not (known and known[0]):
        raise HistoryError(f"no host {host!r} in the fleet (hourglass load FILE adds hosts;"
                           " the id is the fleet file's, e.g. web-01)")
    sent = conn.execute("SELECT DISTINCT component, metric FROM telemetry"
                        " WHERE host_id = %(host)s" + _WINDOW,
                        {"host": host, "since": since, "until": until}).fetchall()
    window = f"between {_iso(since)} and {_iso(until)}"
    if not sent:
        last = conn.execute("SELECT max(time) FROM telemetry WHERE host_id = %s AND time <= %s",
                            (host, until)).fetchone()
        when = f"; its last value is from {_iso(last[0])}" if last and last[0] else \
            "; it never sent any"
        raise HistoryError(f"host {host!r} sent no telemetry {window}{when}")
    components = sorted({c for c, _ in sent})
    if component is not None and component not in components:
        raise HistoryError(f"host {host!r} sent nothing for component {component!r} {window};"
                           f" its components then: {', '.join(components)}")
    metrics = sorted(m for c, m in sent if c == component)
    if metric is not None and metric not in metrics:
        raise HistoryError(f"component {component!r} of {host!r} sent no metric {metric!r}"
                           f" {window}; its metrics then: {', '.join(metrics)}")


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _number(v: float) -> str:
    """The value as sent: the shortest text that reads back as the same double."""
    return repr(v) if math.isfinite(v) else {"nan": "NaN", "inf": "Infinity",
                                             "-inf": "-Infinity"}[repr(v)]


def render_table(items: list[Point], one_series: bool) -> str:
    """A readable table, oldest first (time, then component and metric unless one series)."""
    head = ("TIME", "VALUE") if one_series else ("TIME", "COMPONENT", "METRIC", "VALUE")
    lines = [head] + [
        (_iso(p.time), _number(p.value)) if one_series
        else (_iso(p.time), p.component, p.metric, _number(p.value)) for p in items]
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return "".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
                   + "\n" for line in lines)


def render_json(items: list[Point], host: str, since: datetime, until: datetime) -> str:
    """One JSON object: the question (host, since, until) and its points, oldest first;
    times RFC 3339 UTC, values numbers (NaN and the infinities, which JSON lacks, as
    strings)."""
    return json.dumps({
        "host": host, "since": _rfc3339(since), "until": _rfc3339(until),
        "points": [{"time": _rfc3339(p.time), "component": p.component, "metric": p.metric,
                    "value": p.value if math.isfinite(p.value) else _number(p.value)}
                   for p in items]}) + "\n"


def _rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")
