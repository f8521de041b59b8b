"""`hourglass credits export`: one month's ledger as CSV or JSON, from credits the engine issued."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from dispatcher.store.credits import month_range
from tests.dispatcher.world import heal, open_incident, setup_fleet, tick

NOV = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)


def export(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOURGLASS_DATABASE_URL": url}
    return subprocess.run([sys.executable, "-m", "hourglass.cli", "credits", "export", *args],
                          env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def ledger(pg_url: str) -> str:
    """Two late fixes: one credited on 30 November, one on 1 December (UTC)."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        setup_fleet(conn)
        late = open_incident(conn, NOV - timedelta(hours=2))  # due 21:00, fixed 21:30
        heal(conn, late, NOV - timedelta(minutes=30))
        tick(pg_url, NOV)
        later = open_incident(conn, NOV)  # due 23:00, fixed 3 h 00:01 after detection
        heal(conn, later, NOV + timedelta(hours=3, seconds=1))
        tick(pg_url, NOV + timedelta(hours=3, minutes=1))
    return pg_url


def test_csv_has_one_row_per_credit_of_the_month(ledger: str) -> None:
    out = export(ledger, "--month", "2026-11", "--format", "csv")
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert len(rows) == 1
    assert rows[0]["amount"] == "22.50"
    assert rows[0]["currency"] == "USD"
    assert rows[0]["percent"] == "5"
    assert rows[0]["deadline"] == "2026-11-30T21:00:00Z"
    assert rows[0]["verified_at"] == "2026-11-30T21:30:00Z"


def test_json_with_totals(ledger: str) -> None:
    out = export(ledger, "--month", "2026-12", "--format", "json")
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert body["month"] == "2026-12"
    assert [(i["amount"], i["periods"]) for i in body["items"]] == [("67.50", 3)]
    assert body["totals"] == {"USD": "67.50"}
    empty = json.loads(export(ledger, "--month", "2027-01", "--format", "json").stdout)
    assert empty == {"month": "2027-01", "items": [], "totals": {}}


@pytest.mark.parametrize("month", ["2026-13", "26-11", "2026-1", "november"])
def test_a_malformed_month_is_refused_plainly(pg_url: str, month: str) -> None:
    out = export(pg_url, "--month", month)
    assert out.returncode == 2
    assert "expected YYYY-MM" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(("month", "start", "end"), [
    ("2026-11", (2026, 11), (2026, 12)), ("2026-12", (2026, 12), (2027, 1))])
def test_month_range(month: str, start: tuple[int, int], end: tuple[int, int]) -> None:
    assert month_range(month) == (datetime(*start, 1, tzinfo=UTC), datetime(*end, 1, tzinfo=UTC))
