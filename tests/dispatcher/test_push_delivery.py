"""Web Push end to end: a real database, the real engine and delivery workers, and a local
push service (tests/dispatcher/push_endpoint.py) that checks VAPID and decrypts each push
with the device's own private key, as a browser's push service and the browser would.

Proves: a dispatch, a reassignment and an escalation each reach the right person's device
with the contract's content; a 410 removes the subscription and a 500 is retried, both in
the notification log with the push service's status; two first starts keep one VAPID key;
the time from the dispatch to the device (the figure in the closing report).
"""

from __future__ import annotations

import statistics
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg

from dispatcher import delivery
from dispatcher.http.app import create_app
from dispatcher.service.engine import Engine
from dispatcher.store import outbox, push, tokens
from hourglass.config import NotifyConfig, PushConfig
from schemas.states import Role
from tests.conftest import eventually
from tests.dispatcher.push_endpoint import PushEndpoint
from tests.dispatcher.world import P, open_incident, setup_fleet, tick
from tests.web.conftest import serving

SUBJECT = "mailto:ops@hourglass.example"
CFG = NotifyConfig(poll_s=0.2, timeout_s=5.0, backoff_base_s=30.0)
PUSH = PushConfig(subject=SUBJECT, allow_http_localhost=True)


def ready(conn: psycopg.Connection[Any], endpoint: PushEndpoint,
          *people: str) -> dict[str, str]:
    """The server's key made (as a first start does), and one device per person."""
    endpoint.vapid_public = push.ensure_key(conn, datetime.now(UTC)).public_key
    endpoint.subject = SUBJECT
    names = {}
    for person in people:
        d = endpoint.device(f"{person}-phone")
        s = d.subscription
        push.subscribe(conn, person, s["endpoint"], s["keys"]["p256dh"], s["keys"]["auth"],
                       "Pixel 8", datetime.now(UTC))
        names[person] = d.name
    return names


def deliver(conn: psycopg.Connection[Any], at: datetime) -> int:
    """One delivery batch of the push channel, as the push worker runs it, at `at`."""
    return delivery.deliver_due(conn, CFG, lambda: at, "test", lambda: 0.0,
                                channels=("push",), push_cfg=PUSH)


def event_id(conn: psycopg.Connection[Any], incident: int, kind: str) -> int:
    """The id of the incident's latest timeline entry of this kind."""
    row = conn.execute("SELECT max(id) FROM incident_events WHERE incident_id = %s"
                       " AND kind = %s", (incident, kind)).fetchone()
    assert row is not None
    assert row[0] is not None
    return int(row[0])


def live_job(conn: psycopg.Connection[Any], incident: int) -> tuple[int, str]:
    """The incident's newest job and its technician."""
    row = conn.execute("SELECT id, technician_id FROM jobs WHERE incident_id = %s"
                       " ORDER BY id DESC LIMIT 1", (incident,)).fetchone()
    assert row is not None
    return int(row[0]), str(row[1])


def test_dispatch_reassignment_and_escalation_each_reach_the_right_device(
        pg_url: str) -> None:
    with PushEndpoint() as endpoint, psycopg.connect(pg_url, autocommit=True) as conn:
        setup_fleet(conn)
        phones = ready(conn, endpoint, "t-ana", "t-bob", "t-cy", "t-maria")
        now = datetime.now(UTC).replace(microsecond=0)
        i = open_incident(conn, detected=now)
        tick(pg_url, now)
        job, tech = live_job(conn, i)
        assert deliver(conn, now) == 1  # one device: the technician's
        got = endpoint.of(phones[tech])
        assert [r.payload for r in got] == [{
            "kind": "job", "title": got[0].payload["title"], "body": got[0].payload["body"],
            "tag": f"job-{job}", "url": f"/tech#job-{job}", "incident": i, "job": job,
            "sent_at": now.isoformat().replace("+00:00", "Z"),
            "key": f"incident:{i}:event:{event_id(conn, i, 'dispatched')}",
            "actions": [
                {"action": "acknowledge", "title": "Acknowledge", "method": "POST",
                 "path": f"/api/v1/jobs/{job}/acknowledge", "body": None},
                {"action": "decline", "title": "Decline", "method": "POST",
                 "path": f"/api/v1/jobs/{job}/decline",
                 "body": {"reason": "Declined from the notification"}}]}]
        assert got[0].payload["title"].startswith(f"New job: incident {i}: ")
        assert "You are assigned" in got[0].payload["body"]
        assert got[0].claims["sub"] == SUBJECT
        assert got[0].headers["urgency"] == "high"

        # not acknowledged within 5 minutes: the one transfer, pushed to the new technician
        tick(pg_url, now + timedelta(minutes=6))
        job2, tech2 = live_job(conn, i)
        assert tech2 != tech
        assert deliver(conn, now + timedelta(minutes=7)) == 1
        moved = endpoint.of(phones[tech2])
        assert [(r.payload["kind"], r.payload["job"], r.payload["actions"][0]["path"])
                for r in moved] == [("reassigned", job2, f"/api/v1/jobs/{job2}/acknowledge")]

        # the second miss escalates to the site manager, with the escalation's own actions
        tick(pg_url, now + timedelta(minutes=12))
        assert deliver(conn, now + timedelta(minutes=13)) == 1
        told = endpoint.of(phones["t-maria"])
        assert [(r.payload["kind"], r.payload["incident"], r.payload["url"],
                 [a["path"] for a in r.payload["actions"]]) for r in told] == [
            ("escalation", i, f"/ops#incident-{i}",
             [f"/api/v1/incidents/{i}/escalation/acknowledge",
              f"/api/v1/incidents/{i}/escalation/decline"])]
        assert endpoint.problems == []
        assert len(endpoint.received) == 3  # no one else was pushed, nothing twice


def test_a_404_or_410_removes_the_device_and_a_500_is_retried_in_the_log(
        pg_url: str) -> None:
    with PushEndpoint() as endpoint, psycopg.connect(pg_url, autocommit=True) as conn:
        setup_fleet(conn)
        ready(conn, endpoint)
        devices = [endpoint.device(n) for n in ("gone", "lost", "flaky")]
        now = datetime.now(UTC)
        ids = {}
        for d in devices:
            s = d.subscription
            row, _ = push.subscribe(conn, "t-ana", s["endpoint"], s["keys"]["p256dh"],
                                    s["keys"]["auth"], d.name, now)
            ids[d.name] = row["id"]
        endpoint.answer("gone", 410)
        endpoint.answer("lost", 404)
        endpoint.answer("flaky", 500)
        # any notification to a staff person pushes: here one the outbox is handed directly
        outbox.enqueue(conn, recipient="t-ana", reason="low_spares", subject="[Hourglass] "
                       "low spares at iad1: ST8000", body="2 left", ref="spare_alert:9", at=now)
        assert deliver(conn, now) == 3
        assert push.target(conn, ids["gone"]) is None  # removed at the 410
        assert push.target(conn, ids["lost"]) is None  # and at the 404
        assert conn.execute("SELECT last_failure FROM push_subscriptions WHERE id = %s",
                            (ids["flaky"],)).fetchone() == ("HTTP 500 from the push service",)
        assert deliver(conn, now + timedelta(seconds=10)) == 0  # backing off: 15 s at least
        assert deliver(conn, now + timedelta(seconds=31)) == 1
        assert [r.payload["kind"] for r in endpoint.of("flaky")] == ["low_spares"]
        assert sorted(endpoint.attempts) == [("flaky", 201), ("flaky", 500), ("gone", 410),
                                             ("lost", 404)]

        manager = tokens.create(conn, Role.MANAGER, None, "t-maria")
        with serving(create_app(pg_url)) as base:
            log = httpx.get(f"{base}/api/v1/notifications?ref=spare_alert:9",
                            headers={"Authorization": f"Bearer {manager}"}).json()["items"]
        shown = {n["ref"]: (n["channel"], n["state"], [(d["outcome"], d["status_code"])
                                                       for d in n["deliveries"]])
                 for n in log}
        assert shown == {
            f"spare_alert:9:push:{ids['gone']}": ("push", "failed", [("failed", 410)]),
            f"spare_alert:9:push:{ids['lost']}": ("push", "failed", [("failed", 404)]),
            f"spare_alert:9:push:{ids['flaky']}": ("push", "sent",
                                                    [("retry", 500), ("sent", 201)])}


def test_two_first_starts_at_once_keep_one_vapid_key(pg_url: str) -> None:
    barrier, keys = threading.Barrier(2), []

    def start() -> None:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            barrier.wait()
            keys.append(push.ensure_key(conn, datetime.now(UTC)))

    threads = [threading.Thread(target=start) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM push_keys").fetchone() == (1,)
        assert len(keys) == 2
        assert keys[0] == keys[1]
        assert push.ensure_key(conn, datetime.now(UTC)) == keys[0]  # never regenerated


def test_time_from_dispatch_to_the_device(pg_url: str) -> None:
    """The production path (the engine, the four delivery workers, NOTIFY between them):
    20 incidents one after another, each timed from its dispatch (the timeline entry's time,
    taken inside the dispatching transaction, so at or before its commit) to the push
    service receiving the push."""
    with PushEndpoint() as endpoint, psycopg.connect(pg_url, autocommit=True) as conn:
        setup_fleet(conn)
        ready(conn, endpoint, "t-ana", "t-bob", "t-cy")
        engine = Engine(pg_url, 0.1, P)  # a tick bounds the open → dispatch wait, not timed
        thread = threading.Thread(target=engine.run, daemon=True)
        thread.start()
        workers = delivery.start_workers(pg_url, CFG, PUSH)
        try:
            lat = [one_dispatch(conn, endpoint) for _ in range(20)]
        finally:
            engine.stop.set()
            for w in workers:
                w.stop.set()
            thread.join(timeout=5)
        p50, worst = statistics.median(lat), max(lat)
        print(f"dispatch → push received over {len(lat)}: p50 {p50 * 1000:.0f} ms,"
              f" max {worst * 1000:.0f} ms")
        assert endpoint.problems == []
        assert worst < 5.0


def one_dispatch(conn: psycopg.Connection[Any], endpoint: PushEndpoint) -> float:
    """Open one incident; seconds from its dispatch to its push's arrival."""
    before = len(endpoint.received)
    i = open_incident(conn, detected=datetime.now(UTC))
    eventually(lambda: len(endpoint.received) > before, timeout=15,
               what=f"the push of incident {i}", interval=0.005)
    got = endpoint.received[before]
    assert got.payload["incident"] == i
    assert got.payload["kind"] == "job"
    row = conn.execute("SELECT at FROM incident_events WHERE id = %s",
                       (event_id(conn, i, "dispatched"),)).fetchone()
    assert row is not None
    return got.at - row[0].timestamp()
