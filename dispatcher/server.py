"""Runs the dispatcher: the engine loop in a thread and the HTTP server in the main thread."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import uvicorn

from dispatcher.api import create_app
from dispatcher.domain.policy import TimerPolicy
from dispatcher.engine import Engine


def serve(url: str, host: str, port: int, tick_s: float,
          timer_policy: TimerPolicy | None = None) -> int:
    """Serve until SIGINT/SIGTERM (uvicorn handles the signals); stop the loop after."""
    engine = Engine(url, tick_s, timer_policy)
    thread = threading.Thread(target=engine.run, name="engine", daemon=True)
    thread.start()

    def alive() -> bool:
        last = engine.last_pass
        return last is not None and datetime.now(UTC) - last < timedelta(seconds=30 + tick_s)

    app = create_app(url, engine_alive=alive)
    uvicorn.run(app, host=host, port=port, log_level="warning")
    engine.stop.set()
    thread.join(timeout=5)
    return 0
