"""The managers' figures against a world with known times (issue 16, item 6): the exact
medians, p90s and kept shares built in, the CSV, and who sees which sites. Real PostgreSQL
and a real HTTP server."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from dispatcher.store import tokens
from schemas.states import Role
from tests.web.conftest import Fleet

Conn = psycopg.Connection[tuple[Any, ...]]
NOW = datetime.now(UTC)
M = 60.0  # seconds in a minute


def _fixed(db: Conn, site: str, host: str, customer: str, tech: str, days_ago: float,
           fix: float, ack: float, arrive: float) -> int:
    """A verified incident: detected `days_ago`, acknowledged `ack` minutes after dispatch
    (at detection), on site `arrive` and verified `fix` minutes after detection."""
    detected = NOW - timedelta(days=days_ago)
    row = db.execute(
        "INSERT INTO incidents (host_id, site_id, customer_id, component, kind, failure, slot,"
        " serial, state, detected_at, deadline, sla_minutes, assignee, verified_at)"
        " VALUES (%s, %s, %s, 'disk:x', 'disk', 'smart_failed', 'sda', 'OLD', 'verified', %s,"
        " %s, 60, %s, %s) RETURNING id",
        (host, site, customer, detected, detected + timedelta(minutes=60), tech,
         detected + timedelta(minutes=fix))).fetchone()
    assert row is not None
    db.execute("INSERT INTO jobs (incident_id, technician_id, state, dispatched_at,"
               " acknowledged_at, on_site_at, replaced_at) VALUES (%s, %s, 'done', %s, %s, %s,"
               " %s)", (row[0], tech, detected, detected + timedelta(minutes=ack),
                        detected + timedelta(minutes=arrive),
                        detected + timedelta(minutes=fix - 1)))
    return int(row[0])


@pytest.fixture(scope="module")
def world(db: Conn, fleet: Fleet) -> dict[str, str]:
    """iad1 (t-maria's): five fixes by t-ana this week (20, 30, 40, 50 and 70 min: four
    kept, one credited), one by t-bob ten days ago (90 min); sfo1 (t-sam's): one 45 min."""
    db.execute("INSERT INTO sites (id, name, timezone, manager_id) VALUES"
               " ('sfo1', 'San Francisco 1', 'UTC', 't-sam')")
    db.execute("INSERT INTO technicians (id, name, site_id, role, skills) VALUES"
               " ('t-bob', 'Bob', 'iad1', 'technician', '{disk}'),"
               " ('t-sam', 'Sam', 'sfo1', 'manager', '{}'),"
               " ('t-kim', 'Kim', 'sfo1', 'technician', '{disk}'),"
               " ('t-eve', 'Eve', 'sfo1', 'executive', '{}')")
    db.execute("INSERT INTO hosts (id, customer_id, site_id, monthly_fee)"
               " VALUES ('sfo-01', 'globex', 'sfo1', 450.00)")
    for n, (fix, ack, arrive) in enumerate([(20, 1, 10), (30, 2, 12), (40, 3, 14),
                                            (50, 4, 16), (70, 10, 30)]):
        late = _fixed(db, "iad1", "web-01", "acme", "t-ana", 1 + n / 2, fix, ack, arrive)
    db.execute("INSERT INTO credits (incident_id, customer_id, amount, currency, percent,"
               " periods, late_seconds, policy, issued_at) VALUES (%s, 'acme', 22.50, 'USD',"
               " 5, 1, 600, '{}', %s)", (late, datetime.now(UTC)))
    _fixed(db, "iad1", "web-01", "acme", "t-bob", 10, 90, 20, 40)
    _fixed(db, "sfo1", "sfo-01", "globex", "t-kim", 2, 45, 5, 20)
    return {"manager": fleet.manager, "admin": tokens.create(db, Role.ADMIN, None, None),
            "executive": tokens.create(db, Role.MANAGER, None, "t-eve"),
            "technician": fleet.tech, "customer": fleet.acme}


def _get(base_url: str, token: str, path: str) -> httpx.Response:
    return httpx.get(base_url + path, headers={"Authorization": f"Bearer {token}"})


def _rows(doc: dict[str, Any]) -> dict[tuple[str, str | None, int], dict[str, Any]]:
    return {(r["scope"], r["key"], r["period_days"]): r for r in doc["rows"]}


def test_the_medians_p90s_and_kept_share_built_in(base_url: str, world: dict[str, str]) -> None:
    r = _get(base_url, world["manager"], "/api/v1/figures")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["sites"] == ["iad1"]
    rows = _rows(doc)
    week = rows[("site", "iad1", 7)]
    assert (week["fixed"], week["kept"], week["kept_share"]) == (5, 4, 0.8)
    # percentile_cont over 20, 30, 40, 50, 70: the median 40, the p90 50 + 0.6 * 20 = 62
    assert week["fix"] == {"n": 5, "p50_seconds": 40 * M, "p90_seconds": 62 * M}
    assert week["acknowledge"] == {"n": 5, "p50_seconds": 3 * M,
                                  "p90_seconds": pytest.approx(7.6 * M)}
    assert week["arrive"] == {"n": 5, "p50_seconds": 14 * M,
                             "p90_seconds": pytest.approx(24.4 * M)}
    month = rows[("site", "iad1", 30)]  # t-bob's 90 minutes too
    assert (month["fixed"], month["kept"], month["kept_share"]) == (6, 4, 0.6667)
    assert month["fix"]["p50_seconds"] == 45 * M
    assert rows[("overall", None, 7)]["fixed"] == 5  # sfo1 is not t-maria's
    assert rows[("technician", "t-ana", 7)]["credits_this_month"] == 1
    assert rows[("technician", "t-ana", 7)]["credit_amounts"] == {"USD": "22.50"}
    assert rows[("technician", "t-bob", 7)]["fixed"] == 0
    assert rows[("technician", "t-bob", 30)]["fix"]["p50_seconds"] == 90 * M
    assert len(doc["daily"]) == 30
    assert sum(d["fixed"] for d in doc["daily"]) == 6
    assert sum(d["kept"] for d in doc["daily"]) == 4


def test_admins_and_executives_see_every_site(base_url: str, world: dict[str, str]) -> None:
    for who in ("admin", "executive"):
        doc = _get(base_url, world[who], "/api/v1/figures").json()
        rows = _rows(doc)
        assert doc["sites"] is None
        assert rows[("overall", None, 7)]["fixed"] == 6, who
        assert rows[("site", "sfo1", 7)]["fix"]["p50_seconds"] == 45 * M
        assert rows[("technician", "t-kim", 30)]["kept_share"] == 1.0
    one = _get(base_url, world["admin"], "/api/v1/figures?site=sfo1").json()
    assert one["sites"] == ["sfo1"]
    assert _rows(one)[("overall", None, 30)]["fixed"] == 1


def test_others_are_refused_with_what_to_do(base_url: str, world: dict[str, str]) -> None:
    for who in ("technician", "customer"):
        for path in ("/api/v1/figures", "/api/v1/figures.csv"):
            r = _get(base_url, world[who], path)
            assert r.status_code == 403, r.text
            assert "managers" in r.json()["detail"]
    r = _get(base_url, world["manager"], "/api/v1/figures?site=sfo1")
    assert r.status_code == 404
    assert "leave out ?site=" in r.json()["detail"]
    r = _get(base_url, world["manager"], "/api/v1/figures?site=")
    assert r.status_code == 422
    assert "site" in r.json()["detail"]


def test_the_csv_has_a_header_and_one_row_per_group_and_period(
        base_url: str, world: dict[str, str]) -> None:
    r = _get(base_url, world["manager"], "/api/v1/figures.csv")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"].startswith(
        'attachment; filename="hourglass-figures-all-')
    lines = list(csv.DictReader(io.StringIO(r.text)))
    assert r.text.startswith("scope,key,period_days,fixed,kept,kept_share,ack_p50_seconds,")
    # overall, iad1, t-ana, t-bob (and t-ana of the dispatched incidents: none fixed)
    groups = [(x["scope"], x["key"], x["period_days"]) for x in lines]
    assert groups[:4] == [("overall", "", "7"), ("overall", "", "30"), ("site", "iad1", "7"),
                          ("site", "iad1", "30")]
    assert len(groups) == len(set(groups))
    iad1 = next(x for x in lines if x["key"] == "iad1" and x["period_days"] == "7")
    assert (iad1["fixed"], iad1["kept"], iad1["kept_share"]) == ("5", "4", "0.8000")
    assert (iad1["fix_p50_seconds"], iad1["fix_p90_seconds"]) == ("2400", "3720")
    assert iad1["credits_this_month"] == "1"
    assert iad1["credit_amounts"] == "USD 22.50"
    bob = next(x for x in lines if x["key"] == "t-bob" and x["period_days"] == "7")
    assert (bob["fixed"], bob["kept_share"], bob["fix_p50_seconds"]) == ("0", "", "")
