"""The signed credit webhook, end to end: a late fix, its credit, billing that fails twice."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
import pytest

from dispatcher import delivery as notify
from dispatcher.service.engine import run_pass
from hourglass.config import NotifyConfig
from tests.dispatcher.world import P, at, heal, open_incident, setup_fleet

SECRET = "s3cret-shared-with-billing"


class Billing(BaseHTTPRequestHandler):
    """Billing's endpoint: answers 500 twice, then 200; keeps every request."""

    def do_POST(self) -> None:  # noqa: N802
        """Keep the request; fail while the script says so."""
        server: Any = self.server
        body = self.rfile.read(int(self.headers["Content-Length"]))
        server.seen.append((dict(self.headers), body))
        self.send_response(500 if len(server.seen) <= 2 else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def billing() -> Iterator[Any]:
    """A real HTTP server in a thread."""
    server: Any = ThreadingHTTPServer(("127.0.0.1", 0), Billing)
    server.seen = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_credit_webhook_retried_until_2xx_signed_and_idempotent(pg_url: str,
                                                                 billing: Any) -> None:
    url = f"http://127.0.0.1:{billing.server_address[1]}/credits"
    cfg = NotifyConfig(billing_webhook_url=url, billing_webhook_secret=SECRET, timeout_s=5.0,
                       max_attempts=1)  # billing ignores the limit: at least once, until a 2xx
    with psycopg.connect(pg_url, autocommit=True) as db:
        setup_fleet(db)
        i = open_incident(db)
        run_pass(db, P, at(0), "test", billing_url=url)
        heal(db, i, at(61))  # fixed 1 min past the deadline: one period, 5 % of 450.00
        run_pass(db, P, at(62), "test", billing_url=url)
        run_pass(db, P, at(63), "test", billing_url=url)  # a second pass queues nothing more
        (credit,) = db.execute("SELECT id FROM credits WHERE incident_id = %s",
                               (i,)).fetchone() or (None,)
        assert credit is not None
        now = at(62)
        for _ in range(3):
            assert notify.deliver_due(db, cfg, lambda t=now: t, "w1", lambda: 0.0) == 1
            (due,) = db.execute("SELECT due_at FROM outbox WHERE channel = 'billing'"
                                ).fetchone() or (None,)
            now = due
        assert notify.deliver_due(db, cfg, lambda t=now: t, "w1") == 0  # delivered: done
        got = db.execute("SELECT attempt, outcome, status_code FROM deliveries ORDER BY id"
                         ).fetchall()
        assert got == [(1, "retry", 500), (2, "retry", 500), (3, "sent", 200)]
        assert db.execute("SELECT state, attempts FROM outbox WHERE channel = 'billing'"
                          ).fetchall() == [("sent", 3)]
    assert len(billing.seen) == 3
    bodies = {body for _, body in billing.seen}
    assert len(bodies) == 1  # the same bytes each time
    for headers, body in billing.seen:
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-Hourglass-Signature"], expected)
        assert headers["Idempotency-Key"] == f"credit-{credit}"
        doc = json.loads(body)
        assert (doc["id"], doc["incident"], doc["customer"], doc["host"]) == (
            credit, i, "acme", "web-01")
        assert (doc["amount"], doc["currency"], doc["percent"], doc["periods"]) == (
            "22.50", "USD", "5.000", 1)
        assert doc["late_seconds"] == timedelta(minutes=1).total_seconds()
