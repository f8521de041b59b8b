"""Runs the dispatcher: the engine loop in a thread and the HTTP server in the main thread."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import uvicorn

from dispatcher.delivery import start_workers
from dispatcher.domain.policy import TimerPolicy
from dispatcher.http.app import create_app
from dispatcher.service.engine import Engine
from hourglass.config import AuthConfig, NotifyConfig


def serve(url: str, host: str, port: int, tick_s: float,
          timer_policy: TimerPolicy | None = None, notify: NotifyConfig | None = None,
          auth: AuthConfig | None = None) -> int:
    """Serve until SIGINT/SIGTERM (uvicorn handles the signals); stop the loop after."""
    notify = notify or NotifyConfig()
    engine = Engine(url, tick_s, timer_policy)
    thread = threading.Thread(target=engine.run, name="engine", daemon=True)
    thread.start()
    # Notifications are queued and sent from their own threads and connections: a backlog of
    # events, a dead SMTP server or a slow webhook never delays the clock's loop.
    workers = start_workers(url, notify)

    def alive() -> bool:
        last = engine.last_pass
        return last is not None and datetime.now(UTC) - last < timedelta(seconds=30 + tick_s)

    app = create_app(url, engine_alive=alive, auth=auth, local_webhooks=notify.local_webhooks)
    uvicorn.run(app, host=host, port=port, log_level="warning")
    engine.stop.set()
    for w in workers:
        w.stop.set()
    thread.join(timeout=5)
    return 0
