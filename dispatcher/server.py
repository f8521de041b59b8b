"""Runs the dispatcher: the engine loop in a thread and the HTTP server in the main thread."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import uvicorn

from dispatcher.api import create_app
from dispatcher.domain.policy import TimerPolicy
from dispatcher.engine import Engine
from dispatcher.notify import Deliverer
from hourglass.config import NotifyConfig


def serve(url: str, host: str, port: int, tick_s: float,
          timer_policy: TimerPolicy | None = None, notify: NotifyConfig | None = None) -> int:
    """Serve until SIGINT/SIGTERM (uvicorn handles the signals); stop the loop after."""
    notify = notify or NotifyConfig()
    engine = Engine(url, tick_s, timer_policy, billing_url=notify.billing_webhook_url)
    thread = threading.Thread(target=engine.run, name="engine", daemon=True)
    thread.start()
    # Notifications go out from their own thread and connection: a dead SMTP server or a
    # slow webhook never delays the clock's loop.
    deliverer = Deliverer(url, notify)
    deliverer.start()

    def alive() -> bool:
        last = engine.last_pass
        return last is not None and datetime.now(UTC) - last < timedelta(seconds=30 + tick_s)

    app = create_app(url, engine_alive=alive)
    uvicorn.run(app, host=host, port=port, log_level="warning")
    engine.stop.set()
    deliverer.stop.set()
    thread.join(timeout=5)
    return 0
