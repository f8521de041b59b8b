"""A permission matrix per route (anonymous, other customer, technician, manager, admin),
and bad requests answered with a 4xx and a readable detail, never a 500. Real HTTP server."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg
import pytest

from dispatcher.store import tokens
from schemas.states import Role
from tests.web.conftest import Fleet, OpenIncident


@pytest.fixture(scope="module")
def who(db: psycopg.Connection[tuple[Any, ...]], fleet: Fleet) -> dict[str, str | None]:
    db.execute("INSERT INTO technicians (id, name, site_id, role, skills) VALUES"
               " ('t-bob', 'Bob', 'iad1', 'technician', '{disk}') ON CONFLICT DO NOTHING")
    return {"anonymous": None, "owner": fleet.acme, "other_customer": fleet.globex,
            "technician": fleet.tech, "other_technician": tokens.create(
                db, Role.TECHNICIAN, None, "t-bob"),
            "manager": fleet.manager, "admin": tokens.create(db, Role.ADMIN, None, None)}


def call(base_url: str, token: str | None, method: str, path: str,
         **kw: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.request(method, base_url + path, headers=headers, **kw)


# (route, expected status per caller); {i} is an open acme incident, {j} its job (t-ana's).
MATRIX = [
    ("GET /api/v1/incidents", dict(anonymous=401, owner=200, other_customer=200, technician=200,
                                   other_technician=200, manager=200, admin=200)),
    ("GET /api/v1/incidents/{i}", dict(anonymous=401, owner=200, other_customer=404,
                                       technician=200, other_technician=200, manager=200,
                                       admin=200)),
    ("GET /api/v1/jobs?mine=true", dict(anonymous=401, owner=403, other_customer=403,
                                        technician=200, other_technician=200, manager=200,
                                        admin=200)),
    ("POST /api/v1/jobs/{j}/acknowledge", dict(anonymous=401, owner=403, other_customer=403,
                                               other_technician=403, manager=403,
                                               technician=200)),
    ("POST /api/v1/incidents/{i}/confirm", dict(anonymous=401, other_customer=404,
                                                technician=403, manager=403, admin=403,
                                                owner=409)),
    ("GET /api/v1/credits", dict(anonymous=401, technician=403, manager=403, admin=200,
                                 owner=200, other_customer=200)),
]


@pytest.mark.parametrize(("route", "expected"), MATRIX, ids=[r for r, _ in MATRIX])
def test_permission_matrix(base_url: str, who: dict[str, str | None],
                           open_incident: OpenIncident, route: str,
                           expected: dict[str, int]) -> None:
    for caller, status in expected.items():
        opened = open_incident()
        method, path = route.split(" ")
        path = path.format(i=opened.incident, j=opened.job)
        r = call(base_url, who[caller], method, path)
        assert r.status_code == status, f"{caller}: {route} -> {r.status_code} {r.text}"
        if status >= 400:
            assert isinstance(r.json()["detail"], str)
            assert r.json()["detail"]


def test_customer_lists_only_its_own(base_url: str, who: dict[str, str | None],
                                     open_incident: OpenIncident) -> None:
    mine, theirs = open_incident("web-01"), open_incident("db-07")
    ids = {i["id"] for i in call(base_url, who["owner"], "GET", "/api/v1/incidents?limit=200")
           .json()["items"]}
    assert mine.incident in ids
    assert theirs.incident not in ids
    # asking for another customer by filter does not widen the scope
    other = call(base_url, who["owner"], "GET", "/api/v1/incidents?customer=globex").json()
    assert {i["customer"] for i in other["items"]} <= {"acme"}


def test_technician_sees_only_own_jobs(base_url: str, who: dict[str, str | None],
                                       open_incident: OpenIncident) -> None:
    open_incident()
    assert call(base_url, who["other_technician"], "GET", "/api/v1/jobs").json()["items"] == []


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "words"),
    [
        ("GET", "/api/v1/incidents?state=exploded", None, 422, "state"),
        ("GET", "/api/v1/incidents?limit=0", None, 422, "limit"),
        ("GET", "/api/v1/incidents/not-a-number", None, 422, "incident_id"),
        ("GET", "/api/v1/incidents/999999", None, 404, "no incident"),
        ("GET", "/api/v1/credits?month=2026-13", None, 422, "month"),
        ("POST", "/api/v1/jobs/{j}/replaced", {"serial": ""}, 422, "serial"),
        ("POST", "/api/v1/jobs/{j}/replaced", {}, 422, "serial"),
        ("POST", "/api/v1/jobs/{j}/decline", {"reason": 5}, 422, "reason"),
        ("POST", "/api/v1/jobs/{j}/replaced", {"serial": "NEW1"}, 409, "applies to"),
        ("POST", "/api/v1/jobs/999999/acknowledge", None, 404, "no job"),
    ],
)
def test_bad_requests_get_a_4xx_with_a_message(
    base_url: str, who: dict[str, str | None], open_incident: OpenIncident, method: str,
    path: str, body: dict[str, Any] | None, status: int, words: str,
) -> None:
    opened = open_incident()
    r = call(base_url, who["technician"], method, path.format(j=opened.job), json=body)
    assert r.status_code == status, r.text
    assert words in r.json()["detail"]


def test_malformed_token_header(base_url: str) -> None:
    r = httpx.get(base_url + "/api/v1/incidents", headers={"Authorization": "Basic abc"})
    assert r.status_code == 401
    assert "Bearer" in r.json()["detail"]
