"""A wedged SMTP server never delays the clock: real engine and delivery threads, real time."""

from __future__ import annotations

import socket
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from dispatcher.domain import policy
from dispatcher.engine import Engine
from dispatcher.notify import Deliverer
from hourglass.config import NotifyConfig
from tests.conftest import eventually
from tests.dispatcher.world import open_incident, setup_fleet

ACK = timedelta(seconds=2)  # a short acknowledgement window, so the test runs in seconds
SMTP_TIMEOUT_S = 6.0  # the wedged server holds each attempt this long


def test_escalation_fires_on_time_while_smtp_hangs(pg_url: str) -> None:
    wedged = socket.socket()  # accepts connections, never speaks: smtplib waits its timeout
    wedged.bind(("127.0.0.1", 0))
    wedged.listen(16)
    cfg = NotifyConfig(smtp_host="127.0.0.1", smtp_port=wedged.getsockname()[1],
                       timeout_s=SMTP_TIMEOUT_S, poll_s=0.2)
    engine = Engine(pg_url, 0.2, policy.TimerPolicy(ack_window=ACK))
    deliverer = Deliverer(pg_url, cfg)
    with psycopg.connect(pg_url, autocommit=True) as db:
        setup_fleet(db)
        db.execute("INSERT INTO contacts (person_id, channel, address) SELECT id, 'email',"
                   " id || '@example.net' FROM technicians")
        incident = open_incident(db, detected=datetime.now(UTC))
        threads = [deliverer.start(), threading.Thread(target=engine.run, daemon=True)]
        threads[1].start()
        try:
            eventually(lambda: db.execute("SELECT 1 FROM deliveries").fetchone() is None
                       and db.execute("SELECT 1 FROM outbox WHERE recipient = 't-ana'"
                                      " AND attempts = 1").fetchone(),
                       timeout=10, what="the delivery worker stuck on t-ana's email")
            fired: Any = eventually(lambda: db.execute(
                "SELECT fired_at, due_at, outcome FROM timers WHERE incident_id = %s"
                " AND kind = 'ack_timeout' AND fired_at IS NOT NULL", (incident,)).fetchone(),
                timeout=10, what="the acknowledgement timeout")
            stuck = db.execute("SELECT count(*) FROM deliveries").fetchone()
        finally:
            engine.stop.set()
            deliverer.stop.set()
            wedged.close()
            for t in threads:
                t.join(timeout=SMTP_TIMEOUT_S + 2)
        lateness = (fired[0] - fired[1]).total_seconds()
        assert fired[2] == "acted"
        assert lateness < 1.0, f"the timer fired {lateness:.2f} s late"
        assert stuck == (0,)  # the email attempt had not even finished when the timer fired
        moved = db.execute("SELECT detail->>'to' FROM incident_events WHERE incident_id = %s"
                           " AND kind = 'reassigned'", (incident,)).fetchone()
        assert moved == ("t-bob",)
