"""GET /api/v1/notifications on a real server: who sees what, attempts and failures visible."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from dispatcher.delivery import Claimed, Result, claim, record
from dispatcher.http.routes.notifications import OutboxState
from dispatcher.store import outbox, tokens
from hourglass.config import NotifyConfig
from schemas.states import Role
from tests.web.conftest import Fleet

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
Conn = psycopg.Connection[tuple[Any, ...]]


@pytest.fixture(scope="module")
def world(db: Conn, fleet: Fleet) -> dict[str, Any]:
    """Two messages to Ana (one sent, one failed after its last attempt), one to Maria."""
    db.execute("INSERT INTO contacts VALUES ('t-ana', 'email', 'ana@example.net'),"
               " ('t-maria', 'email', 'maria@example.net')")
    for person, ref in (("t-ana", "incident:1:event:1"), ("t-ana", "incident:1:event:2"),
                        ("t-maria", "incident:1:event:3")):
        outbox.enqueue(db, recipient=person, reason="dispatched", subject=f"about {ref}",
                       body="b", ref=ref, at=T0)
    cfg = NotifyConfig(max_attempts=1)
    batch: list[Claimed] = claim(db, T0, timedelta(seconds=60))
    for c in batch[:2]:
        ok = c.ref.endswith(":1")
        record(db, c, Result(ok, None, None if ok else "SMTPServerDisconnected: gone", 12.5),
               T0, T0 + timedelta(seconds=1), cfg, "w1", 0.0)
    return {"admin": tokens.create(db, Role.ADMIN, None, None)}


def get(base_url: str, token: str | None, path: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(base_url + path, headers=headers)


def test_anonymous_and_customers_are_refused(base_url: str, fleet: Fleet,
                                             world: dict[str, Any]) -> None:
    assert get(base_url, None, "/api/v1/notifications").status_code == 401
    r = get(base_url, fleet.acme, "/api/v1/notifications")
    assert r.status_code == 403
    assert "staff" in r.json()["detail"]


def test_managers_and_admins_see_all_with_attempts(base_url: str, fleet: Fleet,
                                                   world: dict[str, Any]) -> None:
    for token in (fleet.manager, world["admin"]):
        items = get(base_url, token, "/api/v1/notifications").json()["items"]
        assert [(i["recipient"], i["state"], i["attempts"]) for i in items] == [
            ("t-maria", "pending", 1), ("t-ana", "failed", 1), ("t-ana", "sent", 1)]
    failed = get(base_url, world["admin"], "/api/v1/notifications?state=failed").json()
    [item] = failed["items"]
    assert item["last_error"] == "SMTPServerDisconnected: gone"
    assert item["done_at"] == "2026-11-23T09:00:01Z"
    assert item["next_attempt_at"] is None
    assert item["deliveries"] == [{"attempt": 1, "at": "2026-11-23T09:00:00Z",
                                   "outcome": "failed", "status_code": None,
                                   "error": "SMTPServerDisconnected: gone",
                                   "duration_ms": 12.5}]


def test_a_technician_sees_only_their_own(base_url: str, fleet: Fleet,
                                          world: dict[str, Any]) -> None:
    items = get(base_url, fleet.tech, "/api/v1/notifications").json()["items"]
    assert {i["recipient"] for i in items} == {"t-ana"}
    r = get(base_url, fleet.tech, "/api/v1/notifications?recipient=t-maria")
    assert r.status_code == 403
    assert "your own id" in r.json()["detail"]


def test_pages_and_bad_filters(base_url: str, world: dict[str, Any]) -> None:
    first = get(base_url, world["admin"], "/api/v1/notifications?limit=2").json()
    assert len(first["items"]) == 2
    rest = get(base_url, world["admin"],
               f"/api/v1/notifications?limit=2&cursor={first['next']}").json()
    assert [i["recipient"] for i in rest["items"]] == ["t-ana"]
    assert rest["next"] is None
    r = get(base_url, world["admin"], "/api/v1/notifications?state=lost")
    assert r.status_code == 422
    assert r.json()["detail"]


def test_outbox_states_mirror_the_sql_check() -> None:
    sql = (Path(__file__).parents[2] / "schemas/sql/008_notifications.sql").read_text()
    check = re.search(r"state\s+text NOT NULL DEFAULT 'pending' CHECK \(state IN \(([^)]*)\)",
                      sql)
    assert check is not None
    assert {s.strip(" '") for s in check.group(1).split(",")} == {s.value for s in OutboxState}
