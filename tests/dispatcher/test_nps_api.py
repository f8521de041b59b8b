"""NPS over a real HTTP server and PostgreSQL: figures by site, technician and customer, a
period, who may see what."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.dispatcher.test_api_permissions import call, who
from tests.web.conftest import Fleet

__all__ = ["who"]
Conn = psycopg.Connection[tuple[Any, ...]]
T0 = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)

# (host, technician, score, days after T0): acme on web-01 at iad1, globex on db-07 at lon1
ANSWERS = [("web-01", "t-ana", 10, 0), ("web-01", "t-ana", 9, 1), ("web-01", "t-bob", 3, 2),
           ("db-07", "t-bob", 8, 3), ("db-07", "t-bob", 6, 4), ("db-07", "t-bob", 10, 40)]


@pytest.fixture(scope="module")
def surveys(db: Conn, fleet: Fleet, who: dict[str, str | None]) -> None:
    """Closed incidents with their survey answers at known times."""
    db.execute("INSERT INTO sites (id, name) VALUES ('lon1', 'London 1')")
    db.execute("UPDATE hosts SET site_id = 'lon1' WHERE id = 'db-07'")
    for n, (host, tech, score, day) in enumerate(ANSWERS):
        at = T0 + timedelta(days=day)
        row = db.execute(
            "INSERT INTO incidents (host_id, site_id, customer_id, component, kind, failure,"
            " state, detected_at, deadline, sla_minutes, assignee, verified_at, closed_at)"
            " SELECT h.id, h.site_id, h.customer_id, %s, 'disk', 'smart_failed', 'closed', %s,"
            " %s, 60, %s, %s, %s FROM hosts h WHERE h.id = %s RETURNING id",
            (f"disk:nps{n}", at - timedelta(hours=2), at - timedelta(hours=1), tech,
             at - timedelta(hours=1), at, host)).fetchone()
        assert row is not None
        db.execute("INSERT INTO surveys (incident_id, score, at) VALUES (%s, %s, %s)",
                   (row[0], score, at))


def figures(r: Any) -> dict[str | None, tuple[float | None, int]]:
    """{key: (nps, responses)} of an answer, overall under None."""
    body = r.json()
    out = {x["key"]: (x["nps"], x["responses"]) for x in body["items"]}
    out[None] = (body["overall"]["nps"], body["overall"]["responses"])
    return out


@pytest.mark.parametrize(("query", "expected"), [
    ("by=site", {"iad1": (33.3, 3), "lon1": (0.0, 3), None: (16.7, 6)}),
    ("by=technician", {"t-ana": (100.0, 2), "t-bob": (-25.0, 4), None: (16.7, 6)}),
    ("by=customer", {"acme": (33.3, 3), "globex": (0.0, 3), None: (16.7, 6)}),
    ("by=customer&from=2026-10-01T12:00:00Z&to=2026-10-04T12:00:00Z",
     {"acme": (33.3, 3), None: (33.3, 3)}),  # [from, to): the answer at 'to' is left out
    ("by=site&from=2026-10-04T00:00:00Z&to=2026-11-01T00:00:00Z",
     {"lon1": (-50.0, 2), None: (-50.0, 2)}),  # an 8 and a 6; the 10 of day 40 is later
    ("by=site&from=2027-01-01T00:00:00Z", {None: (None, 0)}),
])
def test_nps_for_managers(base_url: str, fleet: Fleet, surveys: None, query: str,
                          expected: dict[str | None, tuple[float | None, int]]) -> None:
    r = call(base_url, fleet.manager, "GET", f"/api/v1/nps?{query}")
    assert r.status_code == 200, r.text
    assert figures(r) == expected


def test_a_customer_sees_only_its_own_figure(base_url: str, fleet: Fleet, surveys: None) -> None:
    r = call(base_url, fleet.acme, "GET", "/api/v1/nps")
    assert figures(r) == {"acme": (33.3, 3), None: (33.3, 3)}
    assert r.json()["by"] == "customer"
    assert figures(call(base_url, fleet.globex, "GET", "/api/v1/nps?by=customer")) == {
        "globex": (0.0, 3), None: (0.0, 3)}


@pytest.mark.parametrize(("caller", "query", "status"), [
    ("anonymous", "by=site", 401), ("owner", "by=site", 403), ("owner", "by=technician", 403),
    ("other_customer", "by=customer", 200), ("technician", "by=technician", 403),
    ("other_technician", "by=site", 403), ("manager", "by=technician", 200),
    ("admin", "by=customer", 200)])
def test_permission_matrix(base_url: str, who: dict[str, str | None], surveys: None,
                           caller: str, query: str, status: int) -> None:
    r = call(base_url, who[caller], "GET", f"/api/v1/nps?{query}")
    assert r.status_code == status, r.text
    if status >= 400:
        assert r.json()["detail"]


@pytest.mark.parametrize(("query", "words"), [
    ("by=team", "by"),
    ("from=2026-10-01T00:00:00", "from"),  # no zone: ambiguous
    ("from=yesterday", "from"),
    ("from=2026-10-02T00:00:00Z&to=2026-10-01T00:00:00Z", "before"),
])
def test_bad_queries_get_a_422(base_url: str, fleet: Fleet, query: str, words: str) -> None:
    r = call(base_url, fleet.manager, "GET", f"/api/v1/nps?{query}")
    assert r.status_code == 422
    assert words in r.json()["detail"]
