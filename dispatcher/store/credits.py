"""The credit ledger of one month for billing, as CSV or JSON (money as decimal strings)."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from dispatcher.views import money, ts

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
COLUMNS = ("credit", "incident", "customer", "host", "amount", "currency", "percent",
           "periods", "late_seconds", "detected_at", "deadline", "verified_at", "issued_at",
           # A facility credit (a rack's power or network, per host) has no incident: its
           # facility incident instead, and verified_at is when the host was back.
           "source", "facility_incident")


def month_range(month: str) -> tuple[datetime, datetime]:
    """[first instant, first instant of the next month) in UTC; ValueError if malformed."""
    m = MONTH.match(month)
    if not m:
        raise ValueError(f"--month {month!r}: expected YYYY-MM, e.g. 2026-11")
    year, mon = int(m[1]), int(m[2])
    start = datetime(year, mon, 1, tzinfo=UTC)
    end = datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=UTC)
    return start, end


def rows(conn: Any, month: str) -> list[dict[str, Any]]:
    """The credits issued in `month` (UTC), hardware and facility, oldest first."""
    start, end = month_range(month)
    out = []
    for r in conn.execute(
            "SELECT c.id, c.incident_id, c.customer_id, i.host_id, c.amount, c.currency,"
            " c.percent, c.periods, c.late_seconds, i.detected_at, i.deadline, i.verified_at,"
            " c.issued_at, 'hardware', NULL::bigint FROM credits c"
            " JOIN incidents i ON i.id = c.incident_id"
            " WHERE c.issued_at >= %(start)s AND c.issued_at < %(end)s"
            " UNION ALL SELECT fc.id, NULL, fc.customer_id, fc.host_id, fc.amount, fc.currency,"
            " fc.percent, fc.periods, fc.late_seconds, f.detected_at, f.deadline,"
            " fc.restored_at, fc.issued_at, 'facility', fc.facility_id FROM facility_credits fc"
            " JOIN facility_incidents f ON f.id = fc.facility_id"
            " WHERE fc.issued_at >= %(start)s AND fc.issued_at < %(end)s"
            " ORDER BY 13, 14 DESC, 1", {"start": start, "end": end}):
        out.append(dict(zip(COLUMNS, (
            r[0], r[1], r[2], r[3], money(r[4]), r[5], f"{Decimal(r[6]).normalize():f}",
            r[7], r[8], ts(r[9]), ts(r[10]), ts(r[11]), ts(r[12]), r[13], r[14]),
            strict=True)))
    return out


def render(items: list[dict[str, Any]], month: str, fmt: str) -> str:
    """CSV with a header row, or JSON with per-currency totals."""
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(items)
        return buf.getvalue()
    totals: dict[str, Decimal] = {}
    for it in items:
        totals[it["currency"]] = totals.get(it["currency"], Decimal(0)) + Decimal(it["amount"])
    return json.dumps({"month": month, "items": items,
                       "totals": {k: money(v) for k, v in sorted(totals.items())}},
                      indent=2) + "\n"
