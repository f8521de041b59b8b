"""Wake-ups between the processes: a PostgreSQL NOTIFY on one channel, delivered at commit.

The collector and the dispatchers meet in the database; a NOTIFY tells a dispatcher (and
the live pages' streams) at once that something changed, instead of at its next tick.
The payload names what: ``incident:7``, ``facility:3``, ``proactive:12``, ``site:iad1``,
``ingest``, ``new`` (the outbox).
"""

from __future__ import annotations

from typing import Any

import psycopg

CHANNEL = "hourglass"


def wake(conn: psycopg.Connection[Any], what: str) -> None:
    """NOTIFY the listeners; delivered at commit, so after the change is visible."""
    conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, what))
