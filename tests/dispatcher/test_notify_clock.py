"""A wedged SMTP server never delays the clock, nor the webhooks: real threads, real time."""

from __future__ import annotations

import socket
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg

from dispatcher.delivery import start_workers
from dispatcher.domain import policy
from dispatcher.service.engine import Engine
from hourglass.config import NotifyConfig
from tests.conftest import eventually
from tests.dispatcher.world import open_incident, setup_fleet

ACK = timedelta(seconds=2)  # a short acknowledgement window, so the test runs in seconds
SMTP_TIMEOUT_S = 6.0  # the wedged server holds each attempt this long


class Hook(BaseHTTPRequestHandler):
    """A webhook receiver that keeps the bodies it gets."""

    def do_POST(self) -> None:  # noqa: N802
        """Keep the body, answer 204."""
        server: Any = self.server
        server.seen.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        """Quiet."""


def test_escalation_and_webhooks_go_on_while_smtp_hangs(pg_url: str) -> None:
    wedged = socket.socket()  # accepts connections, never speaks: smtplib waits its timeout
    wedged.bind(("127.0.0.1", 0))
    wedged.listen(16)
    hook: Any = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    hook.seen = []
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    cfg = NotifyConfig(smtp_host="127.0.0.1", smtp_port=wedged.getsockname()[1],
                       timeout_s=SMTP_TIMEOUT_S, poll_s=0.2)
    engine = Engine(pg_url, 0.2, policy.TimerPolicy(ack_window=ACK))
    with psycopg.connect(pg_url, autocommit=True) as db:
        setup_fleet(db)
        db.execute("INSERT INTO contacts (person_id, channel, address) SELECT id, 'email',"
                   " id || '@example.net' FROM technicians")
        db.execute("INSERT INTO contacts VALUES ('t-bob', 'webhook', %s)",
                   (f"http://127.0.0.1:{hook.server_address[1]}/bob",))
        incident = open_incident(db, detected=datetime.now(UTC))
        workers = start_workers(pg_url, cfg)
        clock = threading.Thread(target=engine.run, daemon=True)
        clock.start()
        try:
            eventually(lambda: db.execute("SELECT 1 FROM deliveries").fetchone() is None
                       and db.execute("SELECT 1 FROM outbox WHERE recipient = 't-ana'"
                                      " AND attempts = 1").fetchone(),
                       timeout=10, what="the email worker stuck on t-ana's email")
            fired: Any = eventually(lambda: db.execute(
                "SELECT fired_at, due_at, outcome FROM timers WHERE incident_id = %s"
                " AND kind = 'ack_timeout' AND fired_at IS NOT NULL", (incident,)).fetchone(),
                timeout=10, what="the acknowledgement timeout")
            eventually(lambda: hook.seen, timeout=5, what="t-bob's webhook")
            emails_done = db.execute("SELECT count(*) FROM deliveries d JOIN outbox o"
                                     " ON o.id = d.outbox_id WHERE o.channel = 'email'"
                                     ).fetchone()
        finally:
            engine.stop.set()
            for w in workers:
                w.stop.set()
            wedged.close()
            hook.shutdown()
            clock.join(timeout=5)
        lateness = (fired[0] - fired[1]).total_seconds()
        print(f"ack timeout fired {lateness:.3f} s after due while SMTP hung")
        assert fired[2] == "acted"
        assert lateness < 1.0, f"the timer fired {lateness:.2f} s late"
        assert emails_done == (0,)  # the first email had not even failed yet
        moved = db.execute("SELECT detail->>'to' FROM incident_events WHERE incident_id = %s"
                           " AND kind = 'reassigned'", (incident,)).fetchone()
        assert moved == ("t-bob",)
        assert b'"reason": "dispatched"' in hook.seen[0]
