"""Delivery on real servers: aiosmtpd for email, stdlib http.server for webhooks."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
import pytest
from aiosmtpd.controller import Controller

from dispatcher import delivery as notify
from dispatcher.store import outbox
from hourglass.config import NotifyConfig
from tests.conftest import free_port
from tests.dispatcher.world import T0


class Inbox:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        """Accept and keep one message."""
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    """A real SMTP server on a free port."""
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


class Hook(BaseHTTPRequestHandler):
    """Records each POST; answers the status the server's script says next."""

    def do_POST(self) -> None:  # noqa: N802
        """Keep the request, answer the next scripted status."""
        body = self.rfile.read(int(self.headers["Content-Length"]))
        server: Any = self.server
        server.seen.append((dict(self.headers), body))
        status = server.script.pop(0) if server.script else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def hook() -> Iterator[Any]:
    """A real HTTP server; `.script` lists the statuses to answer, then 200."""
    server: Any = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    server.seen, server.script = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def cfg(smtp_port: int, **kw: Any) -> NotifyConfig:
    """Settings pointing at the test's SMTP server."""
    return NotifyConfig(smtp_host="127.0.0.1", smtp_port=smtp_port, smtp_from="hg@example.net",
                        timeout_s=2.0, **kw)


def state(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    """(channel, state, attempts) of every outbox row."""
    return conn.execute("SELECT channel, state, attempts FROM outbox ORDER BY id").fetchall()


def attempts(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    """(attempt, outcome, status_code) of every delivery."""
    return conn.execute("SELECT attempt, outcome, status_code FROM deliveries"
                        " ORDER BY id").fetchall()


def test_email_and_webhook_are_delivered_and_recorded(
        pg_url: str, smtp: tuple[int, Inbox], hook: Any) -> None:
    port, inbox = smtp
    url = f"http://127.0.0.1:{hook.server_address[1]}/ana"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO contacts VALUES ('t-ana', 'email', 'ana@example.net'),"
                     " ('t-ana', 'webhook', %s)", (url,))
        outbox.enqueue(conn, recipient="t-ana", reason="dispatched", subject="Job 7",
                       body="Rack r12, unit 7", ref="incident:1:event:2", at=T0)
        assert notify.deliver_due(conn, cfg(port), lambda: T0, "w1") == 2
        assert state(conn) == [("email", "sent", 1), ("webhook", "sent", 1)]
        assert attempts(conn) == [(1, "sent", None), (1, "sent", 200)]
        (ms,) = conn.execute("SELECT min(duration_ms) FROM deliveries").fetchone() or (0,)
        assert ms > 0
        assert notify.deliver_due(conn, cfg(port), lambda: T0 + timedelta(hours=1), "w1") == 0
    [(sender, to, raw)] = inbox.messages
    mail = message_from_bytes(raw)
    assert (sender, to, mail["Subject"]) == ("hg@example.net", ["ana@example.net"], "Job 7")
    assert mail["X-Hourglass-Ref"] == "incident:1:event:2"
    assert "Rack r12, unit 7" in mail.get_payload()
    [(headers, body)] = hook.seen
    assert headers["Idempotency-Key"] == "incident:1:event:2:t-ana"
    doc = json.loads(body)
    assert (doc["recipient"], doc["reason"], doc["body"]) == ("t-ana", "dispatched",
                                                             "Rack r12, unit 7")


def test_dead_smtp_is_retried_with_backoff_then_marked_failed(pg_url: str) -> None:
    """Nothing listens: each attempt is recorded; doubling waits; 'failed' at the limit."""
    dead = free_port()
    settings = cfg(dead, max_attempts=3, backoff_base_s=30.0)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO contacts VALUES ('t-ana', 'email', 'ana@example.net')")
        outbox.enqueue(conn, recipient="t-ana", reason="dispatched", subject="s", body="b",
                       ref="r", at=T0)
        now = T0
        for wait_s in (15.0, 30.0):  # jitter 0: half of 30 s, then half of 60 s
            assert notify.deliver_due(conn, settings, lambda t=now: t, "w1", lambda: 0.0) == 1
            (due,) = conn.execute("SELECT due_at FROM outbox").fetchone() or (None,)
            assert due == now + timedelta(seconds=wait_s)
            # not due a moment before
            early = now + timedelta(seconds=wait_s - 1)
            assert notify.deliver_due(conn, settings, lambda t=early: t, "w1") == 0
            now = due
        assert notify.deliver_due(conn, settings, lambda: now, "w1", lambda: 0.0) == 1
        assert state(conn) == [("email", "failed", 3)]
        assert attempts(conn) == [(1, "retry", None), (2, "retry", None), (3, "failed", None)]
        (error,) = conn.execute("SELECT last_error FROM outbox").fetchone() or ("",)
        assert "ConnectionRefusedError" in error


def test_webhook_5xx_is_retried_and_then_sent(pg_url: str, hook: Any) -> None:
    hook.script = [503]
    url = f"http://127.0.0.1:{hook.server_address[1]}/maria"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO contacts VALUES ('t-maria', 'webhook', %s)", (url,))
        outbox.enqueue(conn, recipient="t-maria", reason="escalated", subject="s", body="b",
                       ref="r", at=T0)
        notify.deliver_due(conn, cfg(1), lambda: T0, "w1", lambda: 0.0)
        notify.deliver_due(conn, cfg(1), lambda: T0 + timedelta(seconds=15), "w1")
        assert attempts(conn) == [(1, "retry", 503), (2, "sent", 200)]
        assert state(conn) == [("webhook", "sent", 2)]


def test_a_claimed_row_is_leased_to_one_worker(pg_url: str) -> None:
    """Two workers at once: one takes the row; after the lease another may retry it."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO contacts VALUES ('t-ana', 'email', 'ana@example.net')")
        outbox.enqueue(conn, recipient="t-ana", reason="r", subject="s", body="b", ref="r",
                       at=T0)
        lease = timedelta(seconds=60)
        assert len(notify.claim(conn, T0, lease)) == 1
        assert notify.claim(conn, T0 + timedelta(seconds=59), lease) == []
        [again] = notify.claim(conn, T0 + timedelta(seconds=60), lease)  # the first died
        assert again.attempt == 2
