"""The whole path in one dispatcher process: incident → timeline → outbox → a real SMTP inbox."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from email import message_from_bytes
from typing import Any

import psycopg
from aiosmtpd.controller import Controller

from dispatcher.delivery import Deliverer
from dispatcher.service.engine import Engine
from hourglass.config import NotifyConfig
from tests.conftest import eventually, free_port
from tests.dispatcher.world import P, open_incident, setup_fleet


class Inbox:
    """An aiosmtpd handler that keeps (recipients, subject, arrival) of every message."""

    def __init__(self) -> None:
        self.got: list[tuple[list[str], str, float]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        """Accept and keep one message."""
        subject = str(message_from_bytes(envelope.content)["Subject"])
        self.got.append((list(envelope.rcpt_tos), subject, time.monotonic()))
        return "250 OK"


def test_dispatch_reaches_the_technician_and_the_account_team(pg_url: str) -> None:
    inbox, port = Inbox(), free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    engine = Engine(pg_url, 0.2, P)
    deliverer = Deliverer(pg_url, NotifyConfig(smtp_host="127.0.0.1", smtp_port=port,
                                               poll_s=0.2))
    threads = [threading.Thread(target=engine.run, daemon=True), deliverer.start()]
    threads[0].start()
    try:
        with psycopg.connect(pg_url, autocommit=True) as db:
            setup_fleet(db)
            db.execute("UPDATE customers SET account_manager = 'am-lee'")
            db.execute("INSERT INTO contacts (person_id, channel, address) VALUES"
                       " ('t-ana', 'email', 'ana@example.net'),"
                       " ('am-lee', 'email', 'lee@example.net')")
            opened = time.monotonic()
            i = open_incident(db, detected=datetime.now(UTC))
            eventually(lambda: len(inbox.got) >= 2, timeout=15,
                       what="the technician's and the account manager's emails")
            got = sorted((to[0], subject) for to, subject, _ in inbox.got)
            assert got == [
                ("ana@example.net", f"[Hourglass] dispatched: incident {i}: "
                                    f"{component(db, i)} on web-01"),
                ("lee@example.net", f"[Hourglass] incident_opened: incident {i}: "
                                    f"{component(db, i)} on web-01"),
            ]
            latency = max(at for _, _, at in inbox.got) - opened
            print(f"incident opened → both emails in the inbox: {latency:.2f} s")
            assert latency < 5.0
            sent = db.execute("SELECT count(*) FROM deliveries WHERE outcome = 'sent'").fetchone()
            assert sent == (2,)
    finally:
        engine.stop.set()
        deliverer.stop.set()
        for t in threads:
            t.join(timeout=5)
        smtp.stop()


def component(db: psycopg.Connection[Any], incident: int) -> str:
    """The incident's component id."""
    row = db.execute("SELECT component FROM incidents WHERE id = %s", (incident,)).fetchone()
    assert row is not None
    return str(row[0])
